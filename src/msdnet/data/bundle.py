"""A loaded data set (:class:`DataBundle`) and the one way to iterate over it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from ..errors import DataError
from .arrays import ArraySplit, augment_batch, normalize

SPLITS = ("train", "val", "test")
Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # (x, y, ids)


@dataclass
class DataBundle:
    """Everything a run needs to know about its data.

    Attributes:
        name: the data set.
        num_classes: number of classes.
        input_size: ``(C, H, W)`` the network sees.
        mean, std: per-channel normalisation on the [0, 1] scale.
        crop_pad: random-crop padding of the training augmentation (0 = none).
        flip: random horizontal flip in the training augmentation.
        train, val, test: the splits: :class:`ArraySplit` (in memory, augmented in
            :func:`iterate_batches` with ``crop_pad``/``flip``) or a ``Dataset`` (ImageNet:
            its transforms augment and normalise, ``crop_pad``/``flip`` only describe them).
            ``val`` is None when there is no held-out split.
        split_file: where the held-out split was saved (None when there is none).
        train_plain: Dataset bundles only: the training split with the test transform, used
            for passes over the training images without augmentation.
    """

    name: str
    num_classes: int
    input_size: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    crop_pad: int
    flip: bool
    train: ArraySplit | Dataset
    val: ArraySplit | Dataset | None
    test: ArraySplit | Dataset
    split_file: str | None
    train_plain: Dataset | None = field(default=None, repr=False)
    _on_device: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def split(self, split: str) -> ArraySplit | Dataset:
        """The split called ``split``; a missing validation split is a ``DataError``."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
        data = getattr(self, split)
        if data is None:
            raise DataError(
                f"data set '{self.name}' has no validation split (val_size is 0); "
                f"set data.val_size > 0 to hold out training images for validation"
            )
        return data

    def arrays_on(self, split: str, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 images and labels of an ArraySplit on ``device``, copied there once and cached."""
        key = (split, str(device))
        if key not in self._on_device:
            data = self.split(split)
            self._on_device[key] = (data.images.to(device), data.labels.to(device))
        return self._on_device[key]


def split_sizes(bundle: DataBundle) -> dict[str, int]:
    """Number of images per split (``val`` is 0 when there is no held-out split)."""
    return {s: 0 if getattr(bundle, s) is None else len(getattr(bundle, s)) for s in SPLITS}


class WithIds(Dataset):
    """A dataset whose items are ``(x, y, id)``, id = the index in the underlying source dataset.

    Nested ``Subset``s are resolved, so the id of an ImageNet image is its ImageFolder index.
    """

    def __init__(self, dataset: Dataset) -> None:
        ids = list(range(len(dataset)))
        while isinstance(dataset, Subset):
            ids = [int(dataset.indices[i]) for i in ids]
            dataset = dataset.dataset
        self.source, self.ids = dataset, ids

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int]:
        x, y = self.source[self.ids[i]]
        return x, y, self.ids[i]


def iterate_batches(
    bundle: DataBundle, split: str, batch_size: int, *, shuffle: bool = False, augment: bool = False,
    generator: torch.Generator | None = None, device: torch.device | str = "cpu",
    drop_last: bool = False, num_workers: int = 0,
) -> Iterator[Batch]:
    """An iterator over ``(x, y, ids)`` batches of one split for one epoch.

    ``x`` is normalised float32 ``[B, C, H, W]`` and ``y`` int64, both on ``device``; ``ids``
    are int64 source indices on the CPU. Without ``drop_last`` every image appears exactly once.

    ArraySplit: the uint8 images go to ``device`` once (cached on the bundle); batches are
    slices of ``torch.randperm(n, generator=generator)`` (or of ``0..n-1`` without shuffle),
    augmented with :func:`augment_batch` on the device when ``augment``, then normalised;
    ``num_workers`` is unused. Dataset splits (ImageNet): a ``DataLoader`` with
    ``num_workers``, ``pin_memory`` on CUDA and shuffling from ``generator``; its transforms
    augment (train) and normalise. Validation and test data are never augmented: ``augment``
    on them is a ``ValueError``. Arguments are checked when called, before iteration starts.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    data = bundle.split(split)
    if augment and split != "train":
        raise ValueError(f"augment=True on the '{split}' split; only training data is augmented")
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:  # one cache entry per physical device
        device = torch.device("cuda", torch.cuda.current_device())
    if isinstance(data, ArraySplit):
        return _array_batches(bundle, split, batch_size, shuffle, augment, generator, device, drop_last)
    if split == "train" and not augment:
        if bundle.train_plain is None:
            raise ValueError(f"data set '{bundle.name}' has no unaugmented view of its training split")
        data = bundle.train_plain
    loader = DataLoader(
        WithIds(data), batch_size=batch_size, shuffle=shuffle, generator=generator,
        num_workers=num_workers, pin_memory=device.type == "cuda", drop_last=drop_last,
    )
    return _to_device(loader, device)


def _to_device(loader: DataLoader, device: torch.device) -> Iterator[Batch]:
    for x, y, ids in loader:
        yield x.to(device, non_blocking=True), y.to(device, non_blocking=True), ids


def _array_batches(bundle: DataBundle, split: str, batch_size: int, shuffle: bool, augment: bool,
                   generator: torch.Generator | None, device: torch.device,
                   drop_last: bool) -> Iterator[Batch]:
    ids = bundle.split(split).ids
    images, labels = bundle.arrays_on(split, device)
    n = len(ids)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    order_dev = order.to(device)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        idx = order_dev[start:start + batch_size]
        x = images[idx]
        if augment:
            x = augment_batch(x, bundle.crop_pad, bundle.flip, generator)
        yield normalize(x, bundle.mean, bundle.std), labels[idx], ids[order[start:start + batch_size]]
