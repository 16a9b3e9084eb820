"""CIFAR-10/100 from the python-pickle files, as torchvision's downloader lays them out.

``root/cifar10/cifar-10-batches-py/{data_batch_1..5, test_batch}`` and
``root/cifar100/cifar-100-python/{train, test}``: each a pickled dict with ``b"data"`` (uint8
``[N, 3072]``: the red, green and blue 32x32 planes, row-major) and ``b"labels"`` (CIFAR-10) or
``b"fine_labels"`` (CIFAR-100). Our own reader: torchvision's dataset classes also check md5
sums, which small test fixtures cannot satisfy.

Normalisation: per-channel mean/std computed exactly from the training split actually trained
on (after the hold-out), not the usual published constants, unless ``data.mean``/``data.std``
fix them.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..core.errors import DataError
from .arrays import ArraySplit, channel_stats
from .bundle import DataBundle
from .config import DataConfig
from .splits import authors_split, fixed_split, resolve_count

DEFAULT_VAL = 5000
NO_DOWNLOAD_ENV = "MSDNET_NO_DOWNLOAD"
URL = "https://www.cs.toronto.edu/~kriz/cifar.html"


@dataclass(frozen=True)
class _Layout:
    folder: str
    archive: str
    train_files: tuple[str, ...]
    test_file: str
    label_key: bytes
    num_classes: int


LAYOUTS = {
    "cifar10": _Layout("cifar-10-batches-py", "cifar-10-python.tar.gz",
                       tuple(f"data_batch_{i}" for i in range(1, 6)), "test_batch", b"labels", 10),
    "cifar100": _Layout("cifar-100-python", "cifar-100-python.tar.gz",
                        ("train",), "test", b"fine_labels", 100),
}


def _missing(folder: Path, layout: _Layout) -> Path | None:
    """The first expected path that does not exist (the folder itself when it is absent)."""
    if not folder.is_dir():
        return folder
    for name in (*layout.train_files, layout.test_file):
        if not (folder / name).is_file():
            return folder / name
    return None


def _download(name: str, target: Path) -> str:
    """Try torchvision's downloader; return why it failed ('' on success)."""
    if os.environ.get(NO_DOWNLOAD_ENV, "") not in ("", "0"):
        return f"downloads disabled by {NO_DOWNLOAD_ENV}"
    try:
        from torchvision import datasets

        cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
        cls(root=str(target), train=True, download=True)
    except Exception as exc:  # noqa: BLE001 - any failure becomes one DataError line below
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return f"{type(exc).__name__}: {first_line}" if first_line else type(exc).__name__
    return ""


# What a CIFAR python batch may name when unpickled: numpy's array reconstruction (old and new
# module paths) and nothing else; dicts, lists, bytes, str and ints need no global at all.
# Anything else (os.system, builtins.open, eval, ...) is refused before it is called.
_CIFAR_GLOBALS = {
    (mod, name)
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray")
    for name in ("_reconstruct", "scalar")
} | {(mod, "_frombuffer") for mod in ("numpy.core.numeric", "numpy._core.numeric")} | {
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}


class _RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only :data:`_CIFAR_GLOBALS`; a pickle naming any other
    callable or class (one that would run code when loaded) raises ``UnpicklingError``."""

    def find_class(self, module: str, name: str):
        if (module, name) in _CIFAR_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused to load {module}.{name}")


def restricted_load(f, encoding: str = "bytes"):
    """``pickle.load`` that builds only plain data and numpy arrays (a CIFAR batch's content)."""
    return _RestrictedUnpickler(f, encoding=encoding).load()


def _read_batch(path: Path, label_key: bytes, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    fix = f"delete {path.parent} and download the data set again"
    try:
        with open(path, "rb") as f:
            obj = restricted_load(f, encoding="bytes")
    except pickle.UnpicklingError as exc:
        if str(exc).startswith("refused to load "):
            raise DataError(f"{path}: not a CIFAR batch: its pickle would {exc} (it could run "
                            f"code), which msdnet refuses; {fix}") from None
        raise DataError(f"{path}: corrupt or unreadable CIFAR batch (UnpicklingError); {fix}") from None
    except Exception as exc:  # noqa: BLE001 - unpickling can fail in many ways
        raise DataError(f"{path}: corrupt or unreadable CIFAR batch ({type(exc).__name__}); {fix}") from None
    data = obj.get(b"data") if isinstance(obj, dict) else None
    labels = obj.get(label_key) if isinstance(obj, dict) else None
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise DataError(f"{path}: no uint8 [N, 3072] array under b'data'; {fix}")
    labels = np.asarray(labels if labels is not None else [], dtype=np.int64)
    in_range = labels.size == 0 or 0 <= labels.min() <= labels.max() < num_classes
    if labels.shape != (data.shape[0],) or not in_range:
        raise DataError(f"{path}: {label_key!r} is not {data.shape[0]} labels in 0..{num_classes - 1}; {fix}")
    images = torch.from_numpy(data.reshape(-1, 3, 32, 32).copy())
    return images, torch.from_numpy(labels)


def _read_all(folder: Path, files: tuple[str, ...], layout: _Layout) -> tuple[torch.Tensor, torch.Tensor]:
    parts = [_read_batch(folder / f, layout.label_key, layout.num_classes) for f in files]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def load_cifar_bundle(cfg: DataConfig) -> DataBundle:
    """CIFAR-10 or CIFAR-100 with a seeded held-out split (default 5000) of the training set."""
    layout = LAYOUTS[cfg.name]
    target = Path(cfg.root) / cfg.name
    folder = target / layout.folder
    if _missing(folder, layout) is not None:
        reason = _download(cfg.name, target)
        missing = _missing(folder, layout)
        if missing is not None:
            raise DataError(
                f"{missing} not found and could not be downloaded ({reason or 'download incomplete'}); "
                f"download {layout.archive} from {URL} and extract it into {target}/"
            )
    train_images, train_labels = _read_all(folder, layout.train_files, layout)
    test_images, test_labels = _read_all(folder, (layout.test_file,), layout)
    n_val = resolve_count(cfg.val_size, len(train_labels), DEFAULT_VAL, "val_size")
    idx = (authors_split(cfg.holdout_indices, len(train_labels), n_val) if cfg.holdout_indices
           else fixed_split(cfg.root, cfg.name, cfg.split_seed, len(train_labels), n_val))
    train = ArraySplit.take(train_images, train_labels, idx.train)
    mean, std = (tuple(cfg.mean), tuple(cfg.std)) if cfg.mean is not None else channel_stats(train.images)
    return DataBundle(
        name=cfg.name,
        num_classes=layout.num_classes,
        input_size=(3, 32, 32),
        mean=mean,
        std=std,
        crop_pad=4,
        flip=True,
        train=train,
        val=ArraySplit.take(train_images, train_labels, idx.val) if n_val else None,
        test=ArraySplit(test_images, test_labels, torch.arange(len(test_labels))),
        split_file=idx.file,
        augment_val=cfg.augment_holdout,
    )
