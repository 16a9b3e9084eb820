"""The data layer: digits, CIFAR-10/100, ImageNet and synthetic images behind one interface.

``load_data(cfg)`` gives a :class:`DataBundle` (splits, normalisation, augmentation settings,
the saved held-out split); ``iterate_batches`` is the only way training and evaluation read it.
"""

from .arrays import ArraySplit, augment_batch, normalize
from .bundle import DataBundle, iterate_batches, split_sizes
from .config import DataConfig
from .load import load_data

__all__ = [
    "ArraySplit", "DataBundle", "DataConfig", "augment_batch", "iterate_batches", "load_data",
    "normalize", "split_sizes",
]
