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


class LazyPreprocess:
    """A :class:`Preprocess` resolved on first use (``mean``, ``std``, a call): a checkpoint
    normalised with its training split's statistics reads its data only when asked, and a
    checkpoint without a data config loads (only its preprocessing then says what is missing)."""

    def __init__(self, ckpt: dict[str, Any], path: str | Path, input_size, data_root: str | None):
        self._args = (ckpt, path, input_size, data_root)
        self._resolved: Preprocess | None = None
        self.input_size = tuple(int(v) for v in input_size)

    def resolve(self) -> Preprocess:
        if self._resolved is None:
            self._resolved = preprocess_of(*self._args)
            self._args = None                      # the checkpoint's tensors are not kept
        return self._resolved

    @property
    def mean(self) -> tuple[float, ...]:
        return self.resolve().mean

    @property
    def std(self) -> tuple[float, ...]:
        return self.resolve().std

    @property
    def crop(self) -> float:
        return self.resolve().crop

    def __call__(self, images: Any):
        return self.resolve()(images)

    def __repr__(self) -> str:
        return repr(self._resolved) if self._resolved is not None else \
            f"LazyPreprocess(input_size={self.input_size}, unresolved)"


def load_model(path: str | Path, device: str = "cpu", data_root: str | None = None):
    """A trained network in eval mode that carries its preprocessing (module docstring)."""
    from ..models.cost import count_costs
    from ..training.checkpoint import load_checkpoint
    from ..training.gpu_slots import resolve_device
    from .predict import model_from_checkpoint

    dev = resolve_device(str(device))
    ckpt = load_checkpoint(path, map_location=dev)
    model = model_from_checkpoint(ckpt, path)
    # only what the preprocessing needs (the data config), not the weights
    meta = {k: ckpt[k] for k in ("config", "preprocess") if k in ckpt}
    model.preprocess = LazyPreprocess(meta, path, model.input_size, data_root)
    model.transforms = types.MethodType(lambda self: self.preprocess, model)
    model.exit_macs = [c.macs for c in count_costs(model, lazy=True)]
    model.num_classes = (ckpt.get("config") or {}).get("model", {}).get("num_classes")
    return model.to(dev).eval()
