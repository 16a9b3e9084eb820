"""``load_data``: one entry point for every data set."""

from __future__ import annotations

from ..core.errors import ConfigError
from .bundle import DataBundle
from .config import DataConfig


def load_data(cfg: DataConfig) -> DataBundle:
    """Load the data set ``cfg`` names, with its fixed held-out split.

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
        return load_imagenet_bundle(cfg)
    from .cifar import load_cifar_bundle
    return load_cifar_bundle(cfg)
