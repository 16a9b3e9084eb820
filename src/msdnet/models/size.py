"""A model's size, checked before it is built: an absurd config is one line, not an hour of swap.

:func:`check_size` runs in :func:`msdnet.models.registry.build` before the real build, so every
entry point (train, predict, infer, cost, ...) refuses the same configs:

1. the input: ``C * H * W`` of ``input_size`` at most :data:`MAX_INPUT_ELEMENTS`;
2. the depth, computed from the config alone (nothing is built): the layers on the longest path
   at most :data:`MAX_LAYERS`;
3. the parameters: the family builds the model on the ``meta`` device (shapes only, no memory,
   no initialisation work), counting every parameter as it is registered and stopping at once
   above :data:`MAX_PARAMETERS` parameters or :data:`MAX_PARAMETER_TENSORS` parameter tensors
   (the largest shipped config has fewer than 1,000).

The RNG states are restored afterwards, so the real build that follows draws the same weights
as it would without the check. The error names the config's size knobs and their values.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import random
from typing import Any, Callable, Iterator

import numpy as np
import torch

from ..core.errors import ConfigError

MAX_PARAMETERS = 2_000_000_000
MAX_PARAMETER_TENSORS = 3_000
MAX_LAYERS = 1_000
MAX_INPUT_ELEMENTS = 1 << 26          # 3 x 4729 x 4729; ImageNet's 3 x 224 x 224 is 150,528

# The keys that make a family's model deep (first) or wide, named in the error message.
DEPTH_KNOBS = {
    "msdnet": ("n_blocks", "step", "base"),
    "resnet": ("depth",),
    "densenet": ("depth",),
    "wide_resnet": ("depth",),
    "fractalnet": ("columns", "widths"),
    "torchvision": ("layers",),
}
WIDTH_KNOBS = {
    "msdnet": ("n_channels", "growth_rate", "gr_factor", "bn_factor", "head_channels"),
    "resnet": ("widths", "head_channels"),
    "densenet": ("growth_rate", "growth_multipliers", "head_channels"),
    "wide_resnet": ("widen_factor", "head_channels"),
    "fractalnet": ("widths", "head_channels"),
    "torchvision": ("name",),
}


class _TooLarge(BaseException):
    """Raised from the parameter hook; a BaseException so that no builder's ``except`` eats it."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


def depth(arch: str, cfg: Any) -> int | None:
    """Layers on the longest path of ``cfg`` (a family's typed config), from the config alone."""
    if arch == "msdnet":
        n, base, step = int(cfg.n_blocks), int(cfg.base), int(cfg.step)
        if cfg.step_mode == "even":
            return base + (n - 1) * step
        return base + step * (n - 1) * n // 2 + (n - 1)       # block i >= 1 has step * i + 1 layers
    if arch in ("resnet", "densenet", "wide_resnet"):
        return int(cfg.depth)
    if arch == "fractalnet":
        columns = int(cfg.columns)
        if columns > 64:
            return 2 ** 64
        return 2 ** max(columns - 1, 0) * max(len(cfg.widths), 1)
    if arch == "torchvision":
        return sum(int(v) for v in cfg.layers) if cfg.layers else None
    return None


def _knobs(config: dict[str, Any], arch: str, which: tuple[str, ...]) -> str:
    shown = []
    for key in which:
        if key in config:
            value = config[key]
            text = repr(value) if not isinstance(value, (list, tuple)) or len(value) <= 8 else \
                f"[{', '.join(map(str, value[:8]))}, ...]"
            shown.append(f"{key}: {text}")
    return ", ".join(shown) if shown else ", ".join(which)


@contextlib.contextmanager
def _rng_kept() -> Iterator[None]:
    torch_state = torch.get_rng_state()
    np_state = np.random.get_state()
    py_state = random.getstate()
    try:
        yield
    finally:
        torch.set_rng_state(torch_state)
        np.random.set_state(np_state)
        random.setstate(py_state)


@contextlib.contextmanager
def _meta_init() -> Iterator[None]:
    """Make ``Tensor.normal_`` a no-op on meta tensors: its meta kernel lives in Python and its
    first use imports torch's meta registrations (about 1.5 s); shapes are all we need."""
    original = torch.Tensor.normal_

    def normal_(self, *args, **kwargs):
        return self if self.is_meta else original(self, *args, **kwargs)

    torch.Tensor.normal_ = normal_
    try:
        yield
    finally:
        torch.Tensor.normal_ = original


def count_parameters(builder: Callable[[Any], torch.nn.Module], cfg: Any,
                     max_parameters: int = MAX_PARAMETERS,
                     max_tensors: int = MAX_PARAMETER_TENSORS) -> int:
    """Parameters of ``builder(cfg)`` built on the meta device; raises :class:`_TooLarge` as soon as
    either limit is passed."""
    total = [0, 0]

    def hook(module, name, param):
        if param is not None:
            total[0] += param.numel()
            total[1] += 1
            if total[0] > max_parameters:
                raise _TooLarge("parameters")
            if total[1] > max_tensors:
                raise _TooLarge("tensors")
        return None

    handle = torch.nn.modules.module.register_module_parameter_registration_hook(hook)
    try:
        with _rng_kept(), _meta_init(), torch.device("meta"):
            builder(cfg)
    finally:
        handle.remove()
    return total[0]


def check_size(arch: str, cfg: Any, config: dict[str, Any], builder: Callable[[Any], torch.nn.Module],
               source: str) -> int:
    """Refuse a config whose model would be absurdly large (see the module docstring); returns
    its parameter count."""
    size = getattr(cfg, "input_size", None)
    if size is not None and math.prod(int(v) for v in size) > MAX_INPUT_ELEMENTS:
        raise ConfigError(f"{source}: input_size {list(size)} has more than {MAX_INPUT_ELEMENTS:,} values "
                          "per image; lower input_size")
    deep = DEPTH_KNOBS.get(arch, ())
    wide = WIDTH_KNOBS.get(arch, ())
    layers = depth(arch, cfg)
    if layers is not None and layers > MAX_LAYERS:
        raise ConfigError(f"{source}: this {arch} has {layers:,} layers on its longest path, more than "
                          f"the limit of {MAX_LAYERS:,}; lower {_knobs(config, arch, deep)}")
    if dataclasses.is_dataclass(cfg) and getattr(cfg, "pretrained_weights", None) is not None:
        cfg = dataclasses.replace(cfg, pretrained_weights=None)   # shapes only: no file to read
    try:
        return count_parameters(builder, cfg)
    except _TooLarge as exc:
        if exc.what == "parameters":
            raise ConfigError(f"{source}: this {arch} has more than {MAX_PARAMETERS:,} parameters; lower "
                              f"{_knobs(config, arch, wide + deep)}") from None
        raise ConfigError(f"{source}: this {arch} has more than {MAX_PARAMETER_TENSORS:,} weight tensors "
                          f"(layers); lower {_knobs(config, arch, deep + wide)}") from None
