"""Random images with random labels, for benchmarks and speed tests (nothing to learn)."""

from __future__ import annotations

import torch

from .bundle import DataBundle
from .config import DataConfig
from .digits import carved_bundle

CONTENT_SEED = 0  # fixed: split_seed changes the split, never the images


def load_synthetic_bundle(cfg: DataConfig) -> DataBundle:
    """``synthetic_images`` uint8 RGB images of side ``image_size``; CIFAR-like augmentation."""
    gen = torch.Generator().manual_seed(CONTENT_SEED)
    n, s = cfg.synthetic_images, cfg.image_size
    images = torch.randint(0, 256, (n, 3, s, s), generator=gen, dtype=torch.uint8)
    labels = torch.randint(0, cfg.synthetic_classes, (n,), generator=gen)
    return carved_bundle(cfg, images, labels, num_classes=cfg.synthetic_classes, flip=True)
