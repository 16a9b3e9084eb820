"""Every architecture is registered by name and built from its config: ``build(config)``.

A family registers a typed config dataclass (torch-free, :mod:`msdnet.models.configs`) and a
builder::

    @register("msdnet", MSDNetConfig)
    def _build_msdnet(cfg: MSDNetConfig) -> MultiExitModel: ...

``build({"arch": "msdnet", ...}, source="config/models/x.yaml")`` validates the keys strictly
(unknown keys and wrong types name the key and the file) and returns the model.

Validating (:func:`parse`, :func:`load_config`, :func:`families`) imports no torch: the config
classes come from :data:`msdnet.models.configs.CONFIGS`; the family modules (which register the
builders) are imported on the first :func:`build`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from ..core.config import from_dict, load_yaml
from ..core.errors import ConfigError
from .configs import CONFIGS

if TYPE_CHECKING:
    from .base import MultiExitModel


@dataclass(frozen=True)
class Family:
    name: str
    config_cls: type
    builder: Callable[[Any], MultiExitModel]


_REGISTRY: dict[str, Family] = {}


def register(name: str, config_cls: type) -> Callable[[Callable], Callable]:
    def deco(fn: Callable[[Any], MultiExitModel]) -> Callable[[Any], MultiExitModel]:
        if name in _REGISTRY:
            raise ValueError(f"architecture {name!r} is already registered")
        _REGISTRY[name] = Family(name, config_cls, fn)
        return fn
    return deco


def families() -> list[str]:
    return sorted(set(CONFIGS) | set(_REGISTRY))


def _config_cls(arch: str) -> type:
    return _REGISTRY[arch].config_cls if arch in _REGISTRY else CONFIGS[arch]


def _family(arch: str) -> Family:
    """The registered builder of ``arch``, importing the family modules the first time."""
    if arch not in _REGISTRY:
        # importing a family module registers its builder (torch)
        from . import densenet, fractalnet, imagenet, msdnet, resnet, wide_resnet  # noqa: F401
    return _REGISTRY[arch]


def parse(config: Mapping[str, Any], source: str = "<config>") -> Any:
    """Validate a model config mapping and return the family's typed config."""
    if "arch" not in config:
        raise ConfigError(f"{source}: missing key 'arch' (one of: {', '.join(families())})")
    arch = config["arch"]
    if arch not in families():
        raise ConfigError(f"{source}: unknown arch {arch!r} (one of: {', '.join(families())})")
    body = {k: v for k, v in config.items() if k != "arch"}
    return from_dict(_config_cls(arch), body, source)


def build(config: Mapping[str, Any], source: str = "<config>") -> MultiExitModel:
    """Build a MultiExitModel from a model config mapping with an ``arch`` key.

    An absurdly large config (too deep, too many parameters; :mod:`msdnet.models.size`) is a
    ConfigError naming its size knobs, raised before anything is allocated.
    """
    from .size import check_size         # torch

    cfg = parse(config, source)
    family = _family(config["arch"])
    check_size(family.name, cfg, dict(config), family.builder, source)
    return family.builder(cfg)


def load_config(path: str | Path) -> dict[str, Any]:
    """Read and validate a model config file; returns the mapping (with ``arch``)."""
    data = load_yaml(path)
    parse(data, str(path))
    return data


def build_from_file(path: str | Path) -> MultiExitModel:
    return build(load_yaml(path), str(path))
