"""MSDNet: a reference reproduction of Multi-Scale Dense Networks (Huang et al., ICLR 2018).

One subpackage per layer; a module imports its own layer and the layers below it only
(``tests/test_layers.py``):

    core        errors, io, config (typed config parsing), kernels (the CPU kernel pin)
    models      the networks, their torch-free configs (models.configs), cost (MAC counting)
    data        the data sets (data.config: the torch-free DataConfig)
    training    config (torch-free run config), checkpoint, train (the trainer), precision,
                distributed, gpu_slots
    inference   predictions (the file format), scores, predict, early_exit, fast_exit, authors
    evaluation  analysis/*, tables, images (test images), notebooks (the notebooks' helpers)
    figures     one module per figure; registry (torch- and matplotlib-free)
    planning    runs (run keys), workflow (the job planner), notebooks, cluster: torch-free
    commands    the ``msdnet`` subcommands (``cli`` dispatches them)

``models`` and ``data`` sit side by side (neither imports the other). ``import msdnet`` and
``msdnet --help`` import no torch.
"""

__version__ = "0.1.0"
__all__ = ["early_exit", "load_model"]


def load_model(path, device="cpu", data_root=None):
    """A trained network, ready to use, that carries its preprocessing.

    ``path`` is a run's ``checkpoint.pt``, the final artifact of ``msdnet train --final`` (the
    workflow's ``model.pt``) or a checkpoint imported with ``msdnet import-authors``; ``device``
    is where the weights go (``"cpu"`` unless told otherwise, e.g. ``"cuda"``). The model is a
    :class:`msdnet.models.MultiExitModel` in eval mode; calling it on a normalised batch
    ``[B, C, H, W]`` returns one logits tensor ``[B, classes]`` per exit, the first exit first.
    ``model.transforms()`` turns raw images (uint8 tensors ``[B, C, H, W]``, PIL images, a list
    of them) into that batch: resized to its input size, normalised as in training (mean, std
    and input size: ``model.preprocess``). ``model.exit_macs``: cumulative MACs per exit. When
    the normalisation is the training split's statistics and the checkpoint does not record
    them, they are computed from the data (``data_root``: where it lives, if moved). The file is
    read with ``torch.load(weights_only=True)``; a file that is not such a checkpoint is an
    :class:`msdnet.core.errors.MsdnetError` naming it.

    >>> model = msdnet.load_model("results/mini/runs/msdnet/<key>/seed0/model.pt")
    >>> logits = model(model.transforms()(images))   # list: one [B, classes] tensor per exit
    """
    # imported here, so that `import msdnet` (and the CLI's start) does not import torch
    from .inference.api import load_model as _load

    return _load(path, device=device, data_root=data_root)


def early_exit(model, images, *, thresholds=None, budget=None, val=None, labels=None, lazy=True,
               confidence="max_prob", batch_size=256):
    """Early exit on a batch: each image leaves at the first exit whose confidence reaches its
    threshold. Give ``thresholds`` (one value, or one per exit but the last) or ``budget``
    (average MACs per image) with ``val`` (the run's validation predictions, val.npz, on which
    the thresholds are chosen as in the paper's budgeted batch classification). ``images``:
    the normalised batch (``model.transforms()(raw)``). Returns an
    :class:`msdnet.inference.early_exit.EarlyExitResult`: ``predictions``, ``exits`` (0-based)
    and ``macs`` per image, ``accuracy`` (with ``labels``), ``expected_macs_per_image``.

    >>> out = msdnet.early_exit(model, x, budget=2e6, val="results/mini/predictions/.../val.npz")
    """
    from .evaluation.api import early_exit as _early_exit

    return _early_exit(model, images, thresholds=thresholds, budget=budget, val=val, labels=labels,
                       lazy=lazy, confidence=confidence, batch_size=batch_size)
