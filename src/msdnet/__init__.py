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
__all__ = ["load_model"]


def load_model(path, device="cpu"):
    """A trained network, ready to use: the :class:`msdnet.models.MultiExitModel` in eval mode.

    ``path`` is a run's ``checkpoint.pt``, the final artifact of ``msdnet train --final`` (the
    workflow's ``model.pt``) or a checkpoint imported with ``msdnet import-authors``; ``device``
    is where the weights go (``"cpu"`` unless told otherwise, e.g. ``"cuda"``). Calling the model
    on a batch ``[B, C, H, W]`` (normalised as in training) returns one logits tensor
    ``[B, classes]`` per exit, the first exit first. The file is read with
    ``torch.load(weights_only=True)``; a file that is not such a checkpoint is an
    :class:`msdnet.core.errors.MsdnetError` naming it.

    >>> model = msdnet.load_model("results/mini/runs/msdnet/<key>/seed0/model.pt")
    >>> logits = model(images)          # list: one [B, classes] tensor per exit
    """
    # imported here, so that `import msdnet` (and the CLI's start) does not import torch
    from .inference.predict import model_from_checkpoint
    from .training.checkpoint import load_checkpoint
    from .training.gpu_slots import resolve_device

    dev = resolve_device(str(device))
    model = model_from_checkpoint(load_checkpoint(path, map_location=dev), path)
    return model.to(dev).eval()
