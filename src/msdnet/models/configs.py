"""The typed config of every model family, torch-free: validating a model config (and so a
preset, a run key) never imports torch. The builders (``msdnet.models.<family>``) register
themselves with :func:`msdnet.models.registry.register` against these classes;
:data:`CONFIGS` maps each ``arch`` to its config class.

- ``BaselineConfig``: the keys every CIFAR baseline shares (exit placement: see
  :mod:`msdnet.models._layers`), and ``exit_boundaries``;
- ``MSDNetConfig`` (arch ``msdnet``), ``ResNetConfig`` (``resnet``), ``WideResNetConfig``
  (``wide_resnet``), ``DenseNetConfig`` (``densenet``), ``FractalNetConfig`` (``fractalnet``),
  ``TorchvisionConfig`` (``torchvision``); each family module documents its knobs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from torch import nn

__all__ = ["CONFIGS", "BaselineConfig", "DenseNetConfig", "FractalNetConfig", "MSDNetConfig",
           "ResNetConfig", "TorchvisionConfig", "WideResNetConfig", "exit_boundaries"]


def exit_boundaries(exits: list[int], exit_locations: list[float], num_units: int) -> list[int]:
    """The unit indices (1-based) after which an intermediate classifier sits (see
    :mod:`msdnet.models._layers`)."""
    if exits:
        return list(exits)
    out = [min(max(math.floor(r * num_units + 0.5), 1), num_units - 1) for r in exit_locations]
    return out


@dataclass(frozen=True, kw_only=True)
class BaselineConfig:
    """Keys shared by every CIFAR baseline.

    Attributes:
        num_classes: classes of the data set (10 or 100 for CIFAR).
        input_size: [C, H, W] the network is built for (costs are counted at this size).
        exits: units (1-based: residual blocks / dense layers / fractal blocks) after which an
            intermediate classifier sits; the final classifier is always there.
        exit_locations: the same by relative depth in (0, 1), mapped to the nearest unit boundary.
        head: intermediate classifier design, see ``heads.py``: ``conv`` (MSDNet's CIFAR head:
            two 3x3 stride-2 conv-BN-ReLU, average pooling, linear) or ``pool`` (BN-ReLU where the
            network is pre-activation, global average pooling, linear: the final classifier's).
        head_channels: channels of the ``conv`` head's convolutions (128 in MSDNet).
        head_resolution: the ``conv`` head average-pools larger maps to this size first (8: the
            coarsest CIFAR scale, which MSDNet's heads read); null = no pooling.
    """

    num_classes: int
    input_size: list[int]
    exits: list[int] = field(default_factory=list)
    exit_locations: list[float] = field(default_factory=list)
    head: Literal["conv", "pool"] = "conv"
    head_channels: int = 128
    head_resolution: int | None = 8

    def num_units(self) -> int:
        """N: how many units (exit positions) the network has; each family's config defines it."""
        raise TypeError(f"{type(self).__name__} must define num_units()")

    def boundaries(self) -> list[int]:
        return exit_boundaries(self.exits, self.exit_locations, self.num_units())

    def validate(self) -> None:
        if len(self.input_size) != 3 or any(s <= 0 for s in self.input_size):
            raise ValueError(f"key 'input_size': expected [C, H, W] of positive ints, "
                             f"got {self.input_size}")
        if self.num_classes < 1:
            raise ValueError(f"key 'num_classes': must be >= 1, got {self.num_classes}")
        if self.head_channels < 1:
            raise ValueError(f"key 'head_channels': must be >= 1, got {self.head_channels}")
        if self.head_resolution is not None and self.head_resolution < 1:
            raise ValueError(f"key 'head_resolution': must be >= 1 or null, "
                             f"got {self.head_resolution}")
        self._validate_exits()

    def make_head(self, in_channels: int, *, preact: bool) -> nn.Module:
        """The intermediate classifier this config asks for, reading ``in_channels`` maps."""
        from .heads import make_head      # torch: imported when a model is built

        return make_head(self.head, in_channels, self.num_classes, channels=self.head_channels,
                         preact=preact, resolution=self.head_resolution)

    def _validate_exits(self) -> None:
        n = self.num_units()
        if self.exits and self.exit_locations:
            raise ValueError("give 'exits' or 'exit_locations', not both")
        if any(not 1 <= b < n for b in self.exits):
            raise ValueError(f"key 'exits': unit indices must lie in 1..{n - 1} (the final "
                             f"classifier after unit {n} is always there), got {self.exits}")
        if any(not 0.0 < r < 1.0 for r in self.exit_locations):
            raise ValueError(f"key 'exit_locations': relative depths must lie in (0, 1), "
                             f"got {self.exit_locations}")
        b = self.boundaries()
        if any(x >= y for x, y in zip(b, b[1:])):
            key = "exits" if self.exits else "exit_locations"
            raise ValueError(f"key '{key}': exits must be strictly increasing and distinct "
                             f"(unit boundaries {b} of {n})")


@dataclass(frozen=True)
class MSDNetConfig:
    """MSDNet's knobs, named after the paper's (and the authors' code's) hyperparameters.

    num_classes: number of classes.
    input_size: [C, H, W] of the input image.
    n_blocks: number of blocks; one classifier after each block (``nBlocks``).
    step_mode: ``even`` (every later block has ``step`` layers) or ``lin_grow`` (block i >= 1
        has ``step * i + 1`` layers).
    step: layers per block after the first (``step``); base: layers in block 1 (``base``).
    n_channels: channels of the first layer at the finest scale, before ``gr_factor`` (``nChannels``).
    growth_rate: new channels per layer at the finest scale (``k`` / ``growthRate``).
    gr_factor: channel multiplier per scale; its length is the number of scales S.
    bn_factor: bottleneck width multiplier per scale (bottleneck = min(C_in, bn_factor * C_out)).
    bottleneck: use the 1x1 bottleneck conv before each 3x3 conv.
    prune: ``max`` (drop the finest scale as depth grows; transitions where a scale is dropped)
        or ``min`` (drop scales only in the last layers; transitions at 1/3 and 2/3 depth).
    reduction: transition compression (``reduction``), 0 disables transitions.
    stem: ``cifar`` (3x3 conv) or ``imagenet`` (7x7/2 conv + 3x3/2 max-pool).
    head: classifier head type; defaults to ``stem``. ``cifar``: two 3x3/2 convs to
        ``head_channels``; ``imagenet``: the same keeping the input channels.
    head_channels: width of the CIFAR head (128 in the paper).
    dense: ablation switch. False: a layer passes on only its new features, not the
        concatenation with its input (no dense connectivity).
    multi_scale: ablation switch. False: a single scale (the finest; gr_factor[0]).
    intermediate_classifiers: ablation switch. False: only the final classifier.
    exit_blocks: 1-based blocks that carry a classifier (the last block always does). Overrides
        ``intermediate_classifiers``; e.g. [3, 7] gives one intermediate classifier after block 3.
    init: ``paper``: the paper's init (the Lua code's) on every module; ``pytorch``: PyTorch's
        default init of each module, what the authors' PyTorch port ends up with (its
        ``_init_weights`` only reaches whole layers, never a convolution).
    """

    num_classes: int
    input_size: list[int]
    n_blocks: int = 7
    step_mode: Literal["even", "lin_grow"] = "even"
    step: int = 2
    base: int = 4
    n_channels: int = 16
    growth_rate: int = 6
    gr_factor: list[int] = field(default_factory=lambda: [1, 2, 4])
    bn_factor: list[int] = field(default_factory=lambda: [1, 2, 4])
    bottleneck: bool = True
    prune: Literal["min", "max"] = "max"
    reduction: float = 0.5
    stem: Literal["cifar", "imagenet"] = "cifar"
    head: Literal["cifar", "imagenet"] | None = None
    head_channels: int = 128
    dense: bool = True
    multi_scale: bool = True
    intermediate_classifiers: bool = True
    exit_blocks: list[int] | None = None
    init: Literal["paper", "pytorch"] = "paper"

    def validate(self) -> None:
        if len(self.input_size) != 3 or min(self.input_size) < 1:
            raise ValueError(f"input_size must be [C, H, W] with positive entries, got {self.input_size}")
        for key in ("num_classes", "n_blocks", "base", "n_channels", "growth_rate", "head_channels"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be >= 1, got {getattr(self, key)}")
        if self.step < 0 or (self.step_mode == "even" and self.n_blocks > 1 and self.step < 1):
            raise ValueError(f"step must be >= 1, got {self.step}")
        if not self.gr_factor or len(self.gr_factor) != len(self.bn_factor):
            raise ValueError("gr_factor and bn_factor must be non-empty lists of the same length "
                             f"(one entry per scale), got {self.gr_factor} and {self.bn_factor}")
        if any(g < 1 for g in self.gr_factor) or any(b < 1 for b in self.bn_factor):
            raise ValueError("gr_factor and bn_factor entries must be >= 1")
        for s in range(1, self.num_scales):
            if (self.growth_rate * self.gr_factor[s]) % 2:
                raise ValueError(f"growth_rate * gr_factor[{s}] must be even (two branches of half "
                                 f"width each), got {self.growth_rate} * {self.gr_factor[s]}")
        if not 0.0 <= self.reduction <= 1.0:
            raise ValueError(f"reduction must be in [0, 1], got {self.reduction}")
        if self.exit_blocks is not None:
            if not self.exit_blocks or sorted(set(self.exit_blocks)) != list(self.exit_blocks):
                raise ValueError(f"exit_blocks must be a strictly increasing list, got {self.exit_blocks}")
            if self.exit_blocks[0] < 1 or self.exit_blocks[-1] != self.n_blocks:
                raise ValueError(f"exit_blocks must lie in 1..{self.n_blocks} and end with the last "
                                 f"block {self.n_blocks}, got {self.exit_blocks}")
        side = min(self.input_size[1:])
        stem_stride = 4 if self.stem == "imagenet" else 1
        if side < stem_stride * 2 ** (self.num_scales - 1):
            raise ValueError(f"input_size {self.input_size} is too small for {self.num_scales} scales")

    @property
    def num_scales(self) -> int:
        return len(self.gr_factor) if self.multi_scale else 1

    @property
    def scale_factors(self) -> list[int]:
        return list(self.gr_factor[: self.num_scales])

    @property
    def bn_factors(self) -> list[int]:
        return list(self.bn_factor[: self.num_scales])

    @property
    def steps(self) -> list[int]:
        """Number of MSDN layers in each block."""
        steps = [self.base]
        for i in range(1, self.n_blocks):
            steps.append(self.step if self.step_mode == "even" else self.step * i + 1)
        return steps

    @property
    def exits(self) -> list[int]:
        """1-based blocks with a classifier."""
        if self.exit_blocks is not None:
            return list(self.exit_blocks)
        if not self.intermediate_classifiers:
            return [self.n_blocks]
        return list(range(1, self.n_blocks + 1))


@dataclass(frozen=True, kw_only=True)
class ResNetConfig(BaselineConfig):
    """Config of arch ``resnet``.

    Attributes:
        depth: 6n + 2 (20, 32, 44, 56, 110, ...); n basic blocks per stage.
        widths: channels of the three stages (16, 32, 64 in He et al.); the stem has widths[0].
        shortcut: ``A`` (zero-padding identity, default) or ``B`` (1x1 projection).
        stochastic_depth: p_L, survival probability of the last block (1.0 = off, 0.5 in
            Huang et al. 2016); linear decay from the input.
    """

    depth: int
    widths: list[int] = field(default_factory=lambda: [16, 32, 64])
    shortcut: Literal["A", "B"] = "A"
    stochastic_depth: float = 1.0

    def num_units(self) -> int:
        return 3 * ((self.depth - 2) // 6)

    def validate(self) -> None:
        if self.depth < 8 or (self.depth - 2) % 6:
            raise ValueError(f"key 'depth': a CIFAR ResNet has 6n + 2 layers (8, 14, 20, 32, "
                             f"..., 110), got {self.depth}")
        if len(self.widths) != 3 or any(w < 1 for w in self.widths):
            raise ValueError(f"key 'widths': expected 3 positive stage widths, got {self.widths}")
        if not 0.0 < self.stochastic_depth <= 1.0:
            raise ValueError(f"key 'stochastic_depth': final survival probability must lie in "
                             f"(0, 1], got {self.stochastic_depth}")
        super().validate()


@dataclass(frozen=True, kw_only=True)
class WideResNetConfig(BaselineConfig):
    """Config of arch ``wide_resnet``.

    Attributes:
        depth: d = 6n + 4 (40 in WRN-40-k); n blocks per group.
        widen_factor: k, multiplies the widths 16, 32, 64 of the three groups.
        dropout: dropout probability inside every block (0 = off).
    """

    depth: int
    widen_factor: int
    dropout: float = 0.0

    def num_units(self) -> int:
        return 3 * ((self.depth - 4) // 6)

    def validate(self) -> None:
        if self.depth < 10 or (self.depth - 4) % 6:
            raise ValueError(f"key 'depth': a WRN has 6n + 4 layers (10, 16, 22, 28, 40, ...), "
                             f"got {self.depth}")
        if self.widen_factor < 1:
            raise ValueError(f"key 'widen_factor': must be >= 1, got {self.widen_factor}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"key 'dropout': must lie in [0, 1), got {self.dropout}")
        super().validate()


@dataclass(frozen=True, kw_only=True)
class DenseNetConfig(BaselineConfig):
    """Config of arch ``densenet``.

    Attributes:
        depth: L; 6n + 4 with bottlenecks (100 for DenseNet-BC-100), 3n + 4 without.
        growth_rate: k, maps each layer adds (in the first block).
        bottleneck: 1x1 bottleneck to 4k maps before each 3x3 conv (DenseNet-B).
        compression: theta, a transition keeps floor(theta * m) of its m maps (0.5 = "C").
        growth_multipliers: k of block j is ``growth_rate * growth_multipliers[j]``;
            [1, 2, 4] is the MSDNet appendix's DenseNet*.
        dropout: dropout after each conv (0 = off).
    """

    depth: int
    growth_rate: int
    bottleneck: bool = True
    compression: float = 0.5
    growth_multipliers: list[int] = field(default_factory=lambda: [1, 1, 1])
    dropout: float = 0.0

    def layers_per_block(self) -> int:
        return (self.depth - 4) // (6 if self.bottleneck else 3)

    def num_units(self) -> int:
        return 3 * self.layers_per_block()

    def validate(self) -> None:
        per = 6 if self.bottleneck else 3
        if (self.depth - 4) % per or self.depth < 4 + per:
            raise ValueError(f"key 'depth': a DenseNet{'-BC' if self.bottleneck else ''} has "
                             f"{per}n + 4 layers, got {self.depth}")
        if self.growth_rate < 1:
            raise ValueError(f"key 'growth_rate': must be >= 1, got {self.growth_rate}")
        if not 0.0 < self.compression <= 1.0:
            raise ValueError(f"key 'compression': must lie in (0, 1], got {self.compression}")
        if len(self.growth_multipliers) != 3 or any(g < 1 for g in self.growth_multipliers):
            raise ValueError(f"key 'growth_multipliers': expected 3 positive ints (one per dense "
                             f"block), got {self.growth_multipliers}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"key 'dropout': must lie in [0, 1), got {self.dropout}")
        super().validate()


@dataclass(frozen=True, kw_only=True)
class FractalNetConfig(BaselineConfig):
    """Config of arch ``fractalnet``.

    Attributes:
        columns: C, the fractal expansion (3: the paper's 20-layer CIFAR net; 4: 40 layers).
        widths: channels of each block; B = len(widths) blocks, each halving the resolution.
        local_drop: local drop-path probability of a join input (0.15 in the paper).
        global_drop: share of mini-batches trained with global drop-path (0.5 in the paper).
        dropout: dropout rate per block after each conv (empty = none; paper: 0, .1, .2, .3, .4).
        column_exits: exit k is column k alone (FractalNet's anytime mode; C exits); excludes
            ``exits`` / ``exit_locations``.
    """

    columns: int = 3
    widths: list[int] = field(default_factory=lambda: [64, 128, 256, 512, 512])
    local_drop: float = 0.15
    global_drop: float = 0.5
    dropout: list[float] = field(default_factory=list)
    column_exits: bool = False

    def num_units(self) -> int:
        return len(self.widths)

    def validate(self) -> None:
        if self.columns < 1:
            raise ValueError(f"key 'columns': must be >= 1, got {self.columns}")
        if not self.widths or any(w < 1 for w in self.widths):
            raise ValueError(f"key 'widths': expected positive block widths, got {self.widths}")
        if not 0.0 <= self.local_drop < 1.0 or not 0.0 <= self.global_drop <= 1.0:
            raise ValueError(f"keys 'local_drop' / 'global_drop': probabilities in [0, 1), "
                             f"[0, 1], got {self.local_drop} / {self.global_drop}")
        if self.dropout and (len(self.dropout) != len(self.widths)
                             or any(not 0.0 <= d < 1.0 for d in self.dropout)):
            raise ValueError(f"key 'dropout': one rate in [0, 1) per block ({len(self.widths)}), "
                             f"or empty, got {self.dropout}")
        if self.column_exits and (self.exits or self.exit_locations):
            raise ValueError("key 'column_exits': the exits are the columns; drop 'exits' / "
                             "'exit_locations'")
        side = 2 ** len(self.widths)
        if len(self.input_size) == 3 and min(self.input_size[1:]) < side:
            raise ValueError(f"key 'input_size': {len(self.widths)} blocks halve the "
                             f"resolution {len(self.widths)} times; need H, W >= {side}, "
                             f"got {self.input_size}")
        super().validate()


Name = Literal["resnet10", "resnet18", "resnet26", "resnet34", "resnet50", "resnet101",
               "resnet152", "densenet36", "densenet121", "densenet169", "densenet201",
               "alexnet", "googlenet", "resnet_basic", "resnet_bottleneck", "densenet"]


_CUSTOM = ("resnet_basic", "resnet_bottleneck", "densenet")


@dataclass(frozen=True, kw_only=True)
class TorchvisionConfig:
    """Config of arch ``torchvision``.

    Attributes:
        name: the network (see the module doc).
        num_classes: outputs of the classifier (1000 for ImageNet).
        input_size: [C, H, W]; [3, 224, 224] for ImageNet.
        layers: blocks per stage for ``resnet_basic`` / ``resnet_bottleneck`` (4 numbers) or
            block_config for ``densenet`` (4 numbers); must be empty for the named networks.
        pretrained_weights: local state-dict file to load, or null (random init).
    """

    name: Name
    num_classes: int
    input_size: list[int]
    layers: list[int] = field(default_factory=list)
    pretrained_weights: str | None = None

    def validate(self) -> None:
        if len(self.input_size) != 3 or any(s <= 0 for s in self.input_size):
            raise ValueError(f"key 'input_size': expected [C, H, W] of positive ints, "
                             f"got {self.input_size}")
        if self.input_size[0] != 3:
            raise ValueError(f"key 'input_size': torchvision's networks take 3 channels, "
                             f"got {self.input_size}")
        if self.num_classes < 1:
            raise ValueError(f"key 'num_classes': must be >= 1, got {self.num_classes}")
        if self.name in _CUSTOM:
            if len(self.layers) != 4 or any(n < 1 for n in self.layers):
                raise ValueError(f"key 'layers': name {self.name!r} needs 4 positive block counts, "
                                 f"got {self.layers}")
        elif self.layers:
            raise ValueError(f"key 'layers': only for {', '.join(_CUSTOM)}; {self.name!r} is fixed")


# arch -> config class (the builders register against the same names).
CONFIGS: dict[str, type] = {
    "msdnet": MSDNetConfig,
    "resnet": ResNetConfig,
    "wide_resnet": WideResNetConfig,
    "densenet": DenseNetConfig,
    "fractalnet": FractalNetConfig,
    "torchvision": TorchvisionConfig,
}
