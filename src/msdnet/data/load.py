"""``load_data``: one entry point for every data set."""

from __future__ import annotations

from ..core.errors import ConfigError
from .bundle import DataBundle
from .config import DataConfig


def load_data(cfg: DataConfig, check_images: bool = False) -> DataBundle:
    """Load the data set ``cfg`` names, with its fixed held-out split.

    ``check_images``: for a data set read image by image (ImageNet), open every image's header
    now, so a bad file is named here rather than met mid-training (``msdnet data`` does).

    Raises ``ConfigError`` for an invalid config and ``DataError`` (one line naming the path and
    the fix) for missing or corrupt data or a split file that does not match.
    """
    try:
        cfg.validate()
    except ValueError as exc:
        raise ConfigError(f"data: {exc}") from None
    if cfg.name == "digits":
        from .digits import load_digits_bundle
        return load_digits_bundle(cfg)
    if cfg.name == "digits-hard":
        from .digits_hard import load_digits_hard_bundle
        return load_digits_hard_bundle(cfg)
    if cfg.name == "synthetic":
        from .synthetic import load_synthetic_bundle
        return load_synthetic_bundle(cfg)
    if cfg.name == "imagenet":
        from .imagenet import load_imagenet_bundle
        return load_imagenet_bundle(cfg, check=check_images)
    from .cifar import load_cifar_bundle
    return load_cifar_bundle(cfg)
