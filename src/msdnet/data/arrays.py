"""In-memory splits and the tensor ops used on them: augmentation, normalisation, statistics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F


@dataclass
class ArraySplit:
    """A whole split in memory.

    Attributes:
        images: uint8 ``[N, C, H, W]``.
        labels: int64 ``[N]``.
        ids: int64 ``[N]``: index of each image in its source set (the training set for
            train/val, the test set for test; for digits/synthetic the whole generated set).
    """

    images: torch.Tensor
    labels: torch.Tensor
    ids: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @classmethod
    def take(cls, images: torch.Tensor, labels: torch.Tensor, index: torch.Tensor) -> "ArraySplit":
        """The images at ``index`` of a source set; their ids are ``index``."""
        return cls(images[index].contiguous(), labels[index].contiguous(), index.clone())


def normalize(x_uint8: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """``(x / 255 - mean) / std`` per channel, as float32 (``[C, H, W]`` or ``[B, C, H, W]``)."""
    m = torch.as_tensor(mean, dtype=torch.float32, device=x_uint8.device).view(-1, 1, 1)
    s = torch.as_tensor(std, dtype=torch.float32, device=x_uint8.device).view(-1, 1, 1)
    return (x_uint8.to(torch.float32) / 255.0 - m) / s


def augment_batch(x: torch.Tensor, crop_pad: int, flip: bool,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Random crop after zero padding by ``crop_pad`` and random horizontal flip, per image.

    ``x`` is ``[B, C, H, W]`` of any dtype on any device; the output has the same shape, dtype
    and device. The offsets (uniform in ``0..2*crop_pad``) and flips (probability 1/2) are drawn
    on the CPU from ``generator`` (the global CPU generator when None), offsets first, so the
    result is a deterministic function of the generator state. Vectorised: the batch is padded
    once and every crop is gathered with per-image row/column indices; a flip reverses the
    column indices of the crop window. With ``crop_pad == 0`` and ``flip`` false it returns ``x``.
    """
    if crop_pad < 0:
        raise ValueError(f"crop_pad must be >= 0, got {crop_pad}")
    if x.dim() != 4:
        raise ValueError(f"augment_batch expects [B, C, H, W], got shape {tuple(x.shape)}")
    if crop_pad == 0 and not flip:
        return x
    b, c, h, w = x.shape
    if crop_pad:
        offsets = torch.randint(0, 2 * crop_pad + 1, (2, b), generator=generator)
    else:
        offsets = torch.zeros(2, b, dtype=torch.int64)
    mirrored = torch.rand(b, generator=generator) < 0.5 if flip else torch.zeros(b, dtype=torch.bool)
    offsets, mirrored = offsets.to(x.device), mirrored.to(x.device)
    rows = offsets[0, :, None] + torch.arange(h, device=x.device)               # [B, H]
    steps = torch.arange(w, device=x.device).expand(b, w)
    cols = offsets[1, :, None] + torch.where(mirrored[:, None], w - 1 - steps, steps)  # [B, W]
    padded = F.pad(x, (crop_pad,) * 4) if crop_pad else x
    batch = torch.arange(b, device=x.device).view(b, 1, 1, 1)
    chan = torch.arange(c, device=x.device).view(1, c, 1, 1)
    return padded[batch, chan, rows[:, None, :, None], cols[:, None, None, :]]


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Exact per-channel mean and (population) std of uint8 ``[N, C, H, W]`` on the [0, 1] scale.

    Computed from per-channel histograms of the 256 byte values, so the result does not depend
    on summation order (deterministic) and needs no float copy of the images. A channel with
    zero spread gets std 1.
    """
    values = torch.arange(256, dtype=torch.float64) / 255.0
    means, stds = [], []
    for ch in range(images.shape[1]):
        counts = torch.bincount(images[:, ch].reshape(-1), minlength=256).to(torch.float64)
        p = counts / counts.sum()
        mean = float((p * values).sum())
        var = float((p * (values - mean) ** 2).sum())
        means.append(mean)
        stds.append(var ** 0.5 if var > 0 else 1.0)
    return tuple(means), tuple(stds)
