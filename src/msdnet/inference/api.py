"""``msdnet.load_model``: a trained network that carries its preprocessing.

The model comes back in eval mode with ``model.transforms()`` (a
:class:`msdnet.data.preprocess.Preprocess`: raw images or uint8 tensors to the normalised batch
it expects), ``model.preprocess`` (the same object), ``model.exit_macs`` (cumulative MACs per
exit, lazy evaluation) and ``model.num_classes``.

The normalisation constants come from the checkpoint when it records them (``preprocess``), else
from its data config: fixed constants (CIFAR with the authors' ``mean``/``std``, ImageNet) or,
for data sets normalised with their training split's statistics (digits, CIFAR by default),
computed from that split as training did (the data must be where the config says, or at
``data_root``).
"""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any

from ..core.errors import MsdnetError
from ..data.preprocess import Preprocess


def preprocess_of(ckpt: dict[str, Any], path: str | Path, input_size, data_root: str | None = None) -> Preprocess:
    """The :class:`Preprocess` of a checkpoint (see the module docstring)."""
    from .predict import checkpoint_data_config

    data_cfg = checkpoint_data_config(ckpt, path, {"root": data_root} if data_root else None)
    crop = 224 / 256 if data_cfg.name == "imagenet" else 1.0
    recorded = ckpt.get("preprocess")
    if isinstance(recorded, dict) and "mean" in recorded and "std" in recorded:
        mean, std = tuple(recorded["mean"]), tuple(recorded["std"])
    elif data_cfg.mean is not None:
        mean, std = tuple(data_cfg.mean), tuple(data_cfg.std)
    elif data_cfg.name == "imagenet":
        from ..data.imagenet import MEAN, STD
        mean, std = MEAN, STD
    else:
        from ..data import load_data
        try:
            bundle = load_data(data_cfg)
        except MsdnetError as exc:
            raise MsdnetError(f"{path}: its normalisation is the statistics of its training split, "
                              f"which needs the data ({exc}); pass data_root=DIR") from None
        mean, std = tuple(bundle.mean), tuple(bundle.std)
    return Preprocess(mean=tuple(float(v) for v in mean), std=tuple(float(v) for v in std),
                      input_size=tuple(int(v) for v in input_size), crop=crop)


def load_model(path: str | Path, device: str = "cpu", data_root: str | None = None):
    """A trained network in eval mode that carries its preprocessing (module docstring)."""
    from ..models.cost import count_costs
    from ..training.checkpoint import load_checkpoint
    from ..training.gpu_slots import resolve_device
    from .predict import model_from_checkpoint

    dev = resolve_device(str(device))
    ckpt = load_checkpoint(path, map_location=dev)
    model = model_from_checkpoint(ckpt, path)
    pre = preprocess_of(ckpt, path, model.input_size, data_root)
    model.preprocess = pre
    model.transforms = types.MethodType(lambda self: self.preprocess, model)
    model.exit_macs = [c.macs for c in count_costs(model, lazy=True)]
    model.num_classes = ckpt["config"]["model"].get("num_classes")
    return model.to(dev).eval()
