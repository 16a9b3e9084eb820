"""A loaded data set (:class:`DataBundle`) and the one way to iterate over it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from ..core.errors import DataError
from .arrays import ArraySplit, crop_flip_nhwc, draw_crops_flips, normalize_nhwc, pad_values

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
        class_names: the name of every class, for figures (None: unnamed, "class k").
        augment_val: the held-out split is read with the training augmentation
            (``data.augment_holdout``): :func:`iterate_batches` crops and flips an ArraySplit's
            val images (seeded with 0 unless a generator is given); a Dataset's val split
            carries the training transform itself.
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
    class_names: tuple[str, ...] | None = None
    augment_val: bool = False
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

    def normalized_on(self, split: str, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """An ArraySplit on ``device``, normalised once and cached: float32 images stored NHWC
        (``[N, H, W, C]``, see :func:`normalize_nhwc`) and int64 labels.

        The uint8 images travel to the device (a quarter of the float32 bytes) and are
        normalised there.
        """
        key = (split, str(device))
        if key not in self._on_device:
            data = self.split(split)
            images = normalize_nhwc(data.images.to(device), self.mean, self.std)
            self._on_device[key] = (images, data.labels.to(device))
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
    memory_format: torch.memory_format = torch.contiguous_format,
) -> Iterator[Batch]:
    """An iterator over ``(x, y, ids)`` batches of one split for one epoch.

    ``x`` is normalised float32 ``[B, C, H, W]`` and ``y`` int64, both on ``device``; ``ids``
    are int64 source indices on the CPU. Without ``drop_last`` every image appears exactly once.

    ArraySplit (the GPU-resident path): the images go to ``device`` once and are normalised
    there once (:meth:`DataBundle.normalized_on`). An epoch is ``torch.randperm(n,
    generator=generator)`` (or ``0..n-1`` without shuffle) cut into batches; when ``augment``,
    every batch's crop offsets and flips are drawn up front, in batch order, exactly as
    :func:`augment_batch` would draw them, and travel to the device in one copy. Then chunks
    of ~64 MB of images are gathered, cropped and flipped on the device
    (:func:`crop_flip_nhwc`, one gather per chunk) and the batches are views of a chunk: no
    per-batch kernels for the data and no host synchronisation in the epoch.
    ``memory_format`` is the layout of ``x`` (``torch.channels_last`` costs nothing, the data
    is stored NHWC; the default costs one copy per batch). ``num_workers`` is unused. Dataset splits (ImageNet): a ``DataLoader`` with
    ``num_workers``, ``pin_memory`` on CUDA and shuffling from ``generator``; its transforms
    augment (train) and normalise. Validation and test data are never augmented: ``augment``
    on them is a ``ValueError`` (a bundle with ``augment_val`` augments its val split itself). Arguments are checked when called, before iteration starts.
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
        if split == "val" and bundle.augment_val:          # data.augment_holdout
            augment = True
            generator = generator if generator is not None else torch.Generator().manual_seed(0)
        return _array_batches(bundle, split, batch_size, shuffle, augment, generator, device, drop_last,
                              memory_format)
    if split == "train" and not augment:
        if bundle.train_plain is None:
            raise ValueError(f"data set '{bundle.name}' has no unaugmented view of its training split")
        data = bundle.train_plain
    loader = DataLoader(
        WithIds(data), batch_size=batch_size, shuffle=shuffle, generator=generator,
        num_workers=num_workers, pin_memory=device.type == "cuda", drop_last=drop_last,
    )
    return _to_device(loader, device, memory_format)


def _to_device(loader: DataLoader, device: torch.device,
               memory_format: torch.memory_format) -> Iterator[Batch]:
    for x, y, ids in loader:
        x = x.to(device, non_blocking=True).contiguous(memory_format=memory_format)
        yield x, y.to(device, non_blocking=True), ids


CHUNK_BYTES = 64 << 20     # images gathered per device op in _array_batches


def _array_batches(bundle: DataBundle, split: str, batch_size: int, shuffle: bool, augment: bool,
                   generator: torch.Generator | None, device: torch.device, drop_last: bool,
                   memory_format: torch.memory_format) -> Iterator[Batch]:
    ids = bundle.split(split).ids
    data, labels = bundle.normalized_on(split, device)
    n = len(ids)
    order = torch.randperm(n, generator=generator) if shuffle else None
    stop = n - n % batch_size if drop_last else n
    epoch_ids = ids[order] if order is not None else ids
    augment = augment and (bundle.crop_pad > 0 or bundle.flip) and stop > 0
    if augment:                          # the same draws, in the same order, as augment_batch
        draws = [draw_crops_flips(min(batch_size, stop - s), bundle.crop_pad, bundle.flip, generator)
                 for s in range(0, stop, batch_size)]
        offsets = torch.cat([d[0] for d in draws], 1).to(device)
        mirrored = torch.cat([d[1] for d in draws]).to(device)
        pad = pad_values(bundle.mean, bundle.std).to(device)
    order_dev = order.to(device) if order is not None else None
    per_batch = batch_size * data[0].numel() * data.element_size()
    chunk = batch_size * max(1, CHUNK_BYTES // per_batch)
    for c0 in range(0, stop, chunk):
        c1 = min(c0 + chunk, stop)
        if order_dev is None and not augment:
            xs, ys = data[c0:c1].permute(0, 3, 1, 2), labels[c0:c1]   # NCHW views, NHWC memory
        else:
            index = order_dev[c0:c1] if order_dev is not None else torch.arange(c0, c1, device=device)
            ys = labels[index]
            if augment:
                xs = crop_flip_nhwc(data, index, offsets[:, c0:c1], mirrored[c0:c1], bundle.crop_pad, pad)
            else:
                xs = data[index].permute(0, 3, 1, 2)
        for s in range(c0, c1, batch_size):
            x = xs[s - c0:s - c0 + batch_size]
            if memory_format != torch.channels_last:
                x = x.contiguous(memory_format=memory_format)
            yield x, ys[s - c0:s - c0 + batch_size], epoch_ids[s:s + batch_size]
