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


def normalize(x_uint8: torch.Tensor, mean: Sequence[float], std: Sequence[float],
              channel_dim: int = -3) -> torch.Tensor:
    """``(x / 255 - mean) / std`` per channel, as float32 (``[C, H, W]`` or ``[B, C, H, W]``;
    ``channel_dim=-1`` for channels-last ``[..., H, W, C]``)."""
    shape = (-1,) + (1,) * (-1 - channel_dim)
    m = torch.as_tensor(mean, dtype=torch.float32, device=x_uint8.device).view(shape)
    s = torch.as_tensor(std, dtype=torch.float32, device=x_uint8.device).view(shape)
    return (x_uint8.to(torch.float32) / 255.0 - m) / s


def pad_values(mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """The normalised value of a black (0) pixel per channel: what zero padding becomes."""
    return -torch.as_tensor(mean, dtype=torch.float32) / torch.as_tensor(std, dtype=torch.float32)


def normalize_nhwc(x_uint8: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """:func:`normalize` of uint8 ``[N, C, H, W]``, stored as a contiguous ``[N, H, W, C]`` tensor.

    ``out.permute(0, 3, 1, 2)`` is then an ``[N, C, H, W]`` view in channels_last memory format.
    Element for element the same float32 values as :func:`normalize`.
    """
    return normalize(x_uint8.permute(0, 2, 3, 1), mean, std, channel_dim=-1).contiguous()


def draw_crops_flips(b: int, crop_pad: int, flip: bool,
                     generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The random draws of one augmented batch of ``b`` images, on the CPU from ``generator``.

    Returns ``offsets`` int64 ``[2, b]`` (row and column offset of each crop window in the
    padded image, uniform in ``0..2*crop_pad``; drawn first, only when ``crop_pad`` > 0) and
    ``mirrored`` bool ``[b]`` (probability 1/2; drawn only when ``flip``).
    """
    if crop_pad < 0:
        raise ValueError(f"crop_pad must be >= 0, got {crop_pad}")
    if crop_pad:
        offsets = torch.randint(0, 2 * crop_pad + 1, (2, b), generator=generator)
    else:
        offsets = torch.zeros(2, b, dtype=torch.int64)
    mirrored = torch.rand(b, generator=generator) < 0.5 if flip else torch.zeros(b, dtype=torch.bool)
    return offsets, mirrored


def _windows(offsets: torch.Tensor, mirrored: torch.Tensor, crop_pad: int, h: int,
             w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Source row ``[B, H]`` and column ``[B, W]`` of every output pixel, in unpadded coordinates
    (out of range = padding); a flip reverses the columns of the crop window."""
    device = offsets.device
    rows = offsets[0, :, None] - crop_pad + torch.arange(h, device=device)
    steps = torch.arange(w, device=device).expand(len(mirrored), w)
    cols = offsets[1, :, None] - crop_pad + torch.where(mirrored[:, None], w - 1 - steps, steps)
    return rows, cols


def augment_batch(x: torch.Tensor, crop_pad: int, flip: bool,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Random crop after zero padding by ``crop_pad`` and random horizontal flip, per image.

    ``x`` is ``[B, C, H, W]`` of any dtype on any device; the output has the same shape, dtype
    and device. The draws come from :func:`draw_crops_flips` (on the CPU, from ``generator``;
    the global CPU generator when None), so the result is a deterministic function of the
    generator state. Vectorised: the batch is padded once and every crop is gathered with
    per-image row/column indices. With ``crop_pad == 0`` and ``flip`` false it returns ``x``.
    :func:`crop_flip_nhwc` does the same on data that is already normalised.
    """
    if x.dim() != 4:
        raise ValueError(f"augment_batch expects [B, C, H, W], got shape {tuple(x.shape)}")
    offsets, mirrored = draw_crops_flips(x.shape[0], crop_pad, flip, generator)
    if crop_pad == 0 and not flip:
        return x
    b, c, h, w = x.shape
    rows, cols = _windows(offsets.to(x.device), mirrored.to(x.device), 0, h, w)
    padded = F.pad(x, (crop_pad,) * 4) if crop_pad else x
    batch = torch.arange(b, device=x.device).view(b, 1, 1, 1)
    chan = torch.arange(c, device=x.device).view(1, c, 1, 1)
    return padded[batch, chan, rows[:, None, :, None], cols[:, None, None, :]]


def crop_flip_nhwc(data: torch.Tensor, index: torch.Tensor, offsets: torch.Tensor,
                   mirrored: torch.Tensor, crop_pad: int, pad: torch.Tensor) -> torch.Tensor:
    """Images ``index`` of normalised NHWC ``data``, cropped and flipped: ``[B, C, H, W]`` channels_last.

    ``offsets`` / ``mirrored`` as from :func:`draw_crops_flips` and ``pad`` (``[C]``) all on
    ``data``'s device; pixels of the window that fall outside the image take the per-channel
    value ``pad`` (the normalised black, :func:`pad_values`), which is what zero padding before normalisation
    gives. Equal to ``normalize(augment_batch(...))`` with the same draws, and one gather for
    the whole ``index``: no padded copy, no host synchronisation.
    """
    _, h, w, _ = data.shape
    rows, cols = _windows(offsets, mirrored, crop_pad, h, w)
    inside = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]
    got = data[index[:, None, None], rows.clamp(0, h - 1)[:, :, None], cols.clamp(0, w - 1)[:, None, :]]
    return torch.where(inside[..., None], got, pad).permute(0, 3, 1, 2)


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
