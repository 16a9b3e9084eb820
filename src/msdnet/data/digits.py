"""Small data sets generated in memory: scikit-learn's digits, and the carving they share.

Digits and synthetic have no official test split: one seeded permutation of all images picks
the test split (``test_size``) and then the held-out validation split (``val_size``) from the
rest. ``ids`` index the whole generated set.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .arrays import ArraySplit, channel_stats
from .bundle import DataBundle
from .config import DataConfig
from .splits import fixed_split, resolve_count

DEFAULT_VAL_SHARE = 0.2


def carved_bundle(cfg: DataConfig, images: torch.Tensor, labels: torch.Tensor, num_classes: int,
                  flip: bool) -> DataBundle:
    """Split uint8 ``images`` ``[N, C, H, W]`` into test, val and train; statistics from train."""
    n_total = len(labels)
    n_test = resolve_count(cfg.test_size, n_total, cfg.test_size, "test_size")
    n_val = resolve_count(cfg.val_size, n_total - n_test, DEFAULT_VAL_SHARE, "val_size")
    idx = fixed_split(cfg.root, cfg.name, cfg.split_seed, n_total, n_val, n_test)
    train = ArraySplit.take(images, labels, idx.train)
    mean, std = channel_stats(train.images)
    return DataBundle(
        name=cfg.name,
        num_classes=num_classes,
        input_size=tuple(images.shape[1:]),
        mean=mean,
        std=std,
        crop_pad=cfg.image_size // 8,
        flip=flip,
        train=train,
        val=ArraySplit.take(images, labels, idx.val) if n_val else None,
        test=ArraySplit.take(images, labels, idx.test),
        split_file=idx.file,
    )


def digit_images(image_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """All 1797 digits as uint8 ``[N, 3, S, S]`` (0..16 scaled to 0..255, bilinear upsampling)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.as_tensor(digits.images, dtype=torch.float32).unsqueeze(1) * (255.0 / 16.0)
    x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False)
    x = x.round().clamp(0, 255).to(torch.uint8).expand(-1, 3, -1, -1).contiguous()
    return x, torch.as_tensor(digits.target, dtype=torch.int64)


def load_digits_bundle(cfg: DataConfig) -> DataBundle:
    """Digits: 10 classes, 3 replicated channels; no flip (digits are not mirror-symmetric)."""
    images, labels = digit_images(cfg.image_size)
    return carved_bundle(cfg, images, labels, num_classes=10, flip=False)
