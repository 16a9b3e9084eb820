"""The data layer: digits, CIFAR-10/100, ImageNet and synthetic images behind one interface.

``load_data(cfg)`` gives a :class:`DataBundle` (splits, normalisation, augmentation settings,
the saved held-out split); ``iterate_batches`` is the only way training and evaluation read it.

The names below are imported on first use, so ``msdnet.data.config`` (the torch-free
``DataConfig``, which the planner reads) imports no torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ArraySplit": "arrays", "augment_batch": "arrays", "normalize": "arrays",
    "DataBundle": "bundle", "iterate_batches": "bundle", "split_sizes": "bundle",
    "DataConfig": "config", "load_data": "load",
}

__all__ = [
    "ArraySplit", "DataBundle", "DataConfig", "augment_batch", "iterate_batches", "load_data",
    "normalize", "split_sizes",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
