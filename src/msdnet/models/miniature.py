"""The miniature rule: one transformation from a paper network to the embedded default's.

The default preset (``config/config.yaml``) trains the paper's CIFAR-100 networks made small, not
networks of its own design. Every one of its model configs is a ``paper-cifar100`` config passed
through :func:`miniature`, the same rule for every family:

- every width is divided by :data:`RULE` ``width_divisor`` (MSDNet ``n_channels`` and
  ``growth_rate``, ResNet ``widths``, DenseNet ``growth_rate``, FractalNet ``widths``);
- the input becomes the digits images (``input_size``) and their ``num_classes``;
- the intermediate classifiers get ``head_channels`` channels, and a baseline's conv head pools
  to the coarsest scale of the smaller input (``head_resolution`` scaled with the input side);
- everything else (depth, blocks, step, base, exit placement, ablation switches) stays as in the
  paper's file.

``msdnet miniature`` writes the configs; a test regenerates them and compares, so the files under
``config/models/mini/`` are never edited by hand. ``docs/miniature.md`` tabulates the result.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping

import yaml

from ..core.errors import ConfigError

__all__ = ["RULE", "SOURCES", "miniature", "miniature_yaml", "target_path"]

# The rule's parameters: the same for every family.
RULE: dict[str, Any] = {
    "width_divisor": 2,
    "input_size": [3, 8, 8],
    "num_classes": 10,
    "head_channels": 32,
}

# Width knobs of each family (list-valued knobs are divided element by element).
WIDTH_KEYS: dict[str, tuple[str, ...]] = {
    "msdnet": ("n_channels", "growth_rate"),
    "resnet": ("widths",),
    "densenet": ("growth_rate",),
    "fractalnet": ("widths",),
}

# The paper configs the default preset draws on (config/models/<name>-cifar100.yaml), each
# written to config/models/mini/<name>.yaml.
SOURCES: tuple[str, ...] = (
    "msdnet-anytime", "msdnet-budgeted-b4",
    "resnet-mc", "densenet-mc", "densenet-star",
    "resnet20", "resnet32", "resnet44", "resnet56", "resnet62", "resnet110",
    "resnet110-stochastic-depth",
    "densenet-bc-16-k12", "densenet-bc-28-k12", "densenet-bc-40-k12", "densenet-bc-52-k12",
    "resnet-staircase-50", "densenet-staircase-50",
)
# Not in the miniature: FractalNet (its five pooling blocks need 32x32 inputs) and WRN-40-1 (its
# width is a multiplier of 16, so half of it is not a config the family can express).

_BASE_SIDE = 32   # the CIFAR side the paper configs are built for


def source_path(name: str, root: str | Path = "config/models") -> Path:
    return Path(root) / f"{name}-cifar100.yaml"


def target_path(name: str, root: str | Path = "config/models") -> Path:
    return Path(root) / "mini" / f"{name}.yaml"


def _divide(value: Any, divisor: int, where: str) -> Any:
    if isinstance(value, list):
        return [_divide(v, divisor, where) for v in value]
    if value % divisor:
        raise ConfigError(f"{where}: {value} is not divisible by the rule's width divisor {divisor}")
    return value // divisor


def _family_defaults(config_cls: type) -> dict[str, Any]:
    """The defaults of a family's typed config (what a paper file leaves out)."""
    out = {}
    for f in dataclasses.fields(config_cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


def miniature(config: Mapping[str, Any], source: str = "<config>", rule: Mapping[str, Any] = RULE) -> dict[str, Any]:
    """The miniature of a paper model config (a mapping with ``arch``), by :data:`RULE`."""
    from .registry import parse

    typed = parse(config, source)
    arch = config["arch"]
    if arch not in WIDTH_KEYS:
        raise ConfigError(f"{source}: the miniature rule has no width knobs for arch {arch!r} "
                          f"(it covers {', '.join(sorted(WIDTH_KEYS))})")
    defaults = _family_defaults(type(typed))
    out = dict(config)
    for key in WIDTH_KEYS[arch]:
        out[key] = _divide(out.get(key, defaults.get(key)), rule["width_divisor"], f"{source}: key '{key}'")
    side = rule["input_size"][1]
    out["input_size"] = list(rule["input_size"])
    out["num_classes"] = rule["num_classes"]
    out["head_channels"] = rule["head_channels"]
    if "head_resolution" in defaults:
        res = out.get("head_resolution", defaults["head_resolution"])
        if res is not None:
            out["head_resolution"] = max(1, round(res * side / _BASE_SIDE))
    parse(out, f"{source} (miniature)")
    return out


def miniature_yaml(name: str, root: str | Path = "config/models") -> str:
    """The text of ``config/models/mini/<name>.yaml``: a header, then the miniature config."""
    from ..core.config import load_yaml

    src = source_path(name, root)
    mini = miniature(load_yaml(src), str(src))
    rule = ", ".join(f"{k} {v}" for k, v in RULE.items())
    header = (f"# Generated by `msdnet miniature` from config/models/{src.name} by the miniature\n"
              f"# rule ({rule}; docs/miniature.md).\n"
              "# Do not edit: change the rule or the paper config.\n")
    return header + yaml.safe_dump(mini, sort_keys=False, default_flow_style=None)
