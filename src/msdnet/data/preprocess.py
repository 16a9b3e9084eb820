"""The preprocessing a trained network expects, as one callable (torchvision weights'
``transforms()`` for this package): raw images in, the normalised ``[B, C, H, W]`` float32
batch the network was trained on out.

:class:`Preprocess` takes a uint8 tensor ``[B, C, H, W]`` or ``[C, H, W]`` (values 0-255), a
float tensor on the [0, 1] scale, a PIL image, an ``[H, W]`` / ``[H, W, C]`` uint8 NumPy array,
or a list of those. Images of another size are resized (ImageNet: shorter side to 256/224 of the
input, then the centre crop, as the test transform); grey images are repeated to three channels
and colour ones averaged to one, as the network needs. Normalisation is
:func:`msdnet.data.arrays.normalize`, so an image of the data set itself gives, element for
element, the batch :func:`msdnet.data.iterate_batches` gives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .arrays import normalize


@dataclass(frozen=True)
class Preprocess:
    """mean, std: per channel on the [0, 1] scale; input_size: the network's ``(C, H, W)``;
    crop: the share of the resized image kept by the centre crop (ImageNet 224/256, else 1)."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    input_size: tuple[int, int, int]
    crop: float = 1.0

    def __call__(self, images: Any) -> torch.Tensor:
        if isinstance(images, (list, tuple)):
            return torch.cat([self(im) for im in images]) if images else \
                torch.zeros((0, *self.input_size), dtype=torch.float32)
        x = _as_uint8_batch(images)
        x = self._channels(x)
        x = self._resize(x)
        return normalize(x, self.mean, self.std)

    def _channels(self, x: torch.Tensor) -> torch.Tensor:
        want = self.input_size[0]
        if x.shape[1] == want:
            return x
        if x.shape[1] == 1:
            return x.expand(-1, want, -1, -1).contiguous()
        if want == 1:
            return x.to(torch.float32).mean(dim=1, keepdim=True).round().to(torch.uint8)
        if x.shape[1] == 4 and want == 3:                     # RGBA: drop alpha
            return x[:, :3].contiguous()
        raise ValueError(f"images with {x.shape[1]} channels; the network takes {want}")

    def _resize(self, x: torch.Tensor) -> torch.Tensor:
        _, h, w = self.input_size
        if tuple(x.shape[-2:]) == (h, w):
            return x
        if self.crop < 1.0:                                  # shorter side, then the centre crop
            side = round(min(h, w) / self.crop)
            scale = side / min(x.shape[-2:])
            size = (max(h, round(x.shape[-2] * scale)), max(w, round(x.shape[-1] * scale)))
        else:
            size = (h, w)
        y = F.interpolate(x.to(torch.float32), size=size, mode="bilinear", align_corners=False,
                          antialias=True).round().clamp(0, 255).to(torch.uint8)
        top, left = (y.shape[-2] - h) // 2, (y.shape[-1] - w) // 2
        return y[..., top:top + h, left:left + w].contiguous()


def _as_uint8_batch(images: Any) -> torch.Tensor:
    """uint8 ``[B, C, H, W]`` from one of the inputs :class:`Preprocess` takes."""
    if not isinstance(images, (torch.Tensor, np.ndarray)):
        try:                                                  # a PIL image
            images = np.asarray(images)
        except Exception:
            raise TypeError(f"cannot read images from {type(images).__name__}") from None
        if images.ndim == 2:
            images = images[:, :, None]
        if images.ndim != 3:
            raise TypeError("cannot read images from this object; give uint8 tensors or PIL images")
        images = torch.from_numpy(np.array(images, copy=True)).permute(2, 0, 1)
    elif isinstance(images, np.ndarray):
        arr = images[:, :, None] if images.ndim == 2 else images
        if arr.ndim == 3 and arr.shape[-1] in (1, 3, 4) and arr.shape[0] not in (1, 3, 4):
            arr = arr.transpose(2, 0, 1)                     # [H, W, C] -> [C, H, W]
        images = torch.from_numpy(np.array(arr, copy=True))
    x = images.detach().cpu()
    if x.dim() == 2:
        x = x[None]
    if x.dim() == 3:
        x = x[None]
    if x.dim() != 4:
        raise ValueError(f"images of shape {tuple(x.shape)}; expected [B, C, H, W] or [C, H, W]")
    if x.dtype.is_floating_point:
        x = (x.clamp(0, 1) * 255).round()
    return x.to(torch.uint8)
