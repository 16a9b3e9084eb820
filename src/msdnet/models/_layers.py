"""Helpers shared by the baseline families (ResNet, Wide ResNet, DenseNet, FractalNet).

- typed conv helpers (``conv3x3``, ``conv1x1``), bias-free as in every original code base;
- ``init_weights``: the original papers' init (He et al. 2015 normal for convs with
  ``std = sqrt(2 / (k_h k_w C_out))``, the "MSR init" of fb.resnet.torch which the ResNet,
  Stochastic Depth, Wide ResNet and DenseNet code bases all use; BN weight 1 and bias 0; linear
  bias 0);
- ``BaselineConfig``: the keys every CIFAR baseline shares (``num_classes``, ``input_size`` and the
  placement of intermediate classifiers: ``exits`` or ``exit_locations``, ``head``,
  ``head_channels``);
- ``split_units``: cut a chain of units into the segments of a ``SegmentedMultiExit``.

Exit placement, the same for every family. A network is a chain of *units* (a ResNet's residual
blocks, a DenseNet's dense layers, a FractalNet's fractal blocks), numbered 1..N from the input.
``exits: [b1, b2, ...]`` puts an intermediate classifier right after unit b (1 <= b < N, strictly
increasing); the final classifier after unit N is always there. ``exit_locations: [r, ...]``
gives the same by relative depth r in (0, 1): r maps to the nearest unit boundary,
``b = floor(r * N + 0.5)`` clamped to [1, N-1] (so r = 0.25 in a 30-block ResNet sits after block
8). Units are the family's repeating layers, so relative depth in units is relative depth in
layers up to the stem and transitions. Use one of the two keys, not both. The staircase figure
(one intermediate classifier at several depths) is one config per depth that differs only in
``exit_locations: [r]``: ``config/models/{resnet,densenet}-staircase-{10,30,50,70,90}-*.yaml``;
another depth is a copy with that one key changed (or ``build({**load_yaml(f),
"exit_locations": [r]})`` in code). The right panel's reference is the same trunk with no key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from .heads import make_head

__all__ = ["conv3x3", "conv1x1", "init_weights", "BaselineConfig", "split_units", "exit_boundaries"]


def conv3x3(in_channels: int, out_channels: int, *, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution with padding 1 and no bias (a BN follows or precedes it)."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_channels: int, out_channels: int, *, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution without bias."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False)


def init_weights(module: nn.Module) -> None:
    """He normal init (fan-out) for convs, BN weight 1 / bias 0, linear bias 0 (in place)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            # weight: PyTorch's default (uniform, fan-in), as Torch7's nn.Linear; bias 0 as in
            # fb.resnet.torch / the DenseNet code.
            nn.init.zeros_(m.bias)


def exit_boundaries(exits: list[int], exit_locations: list[float], num_units: int) -> list[int]:
    """The unit indices (1-based) after which an intermediate classifier sits (see module doc)."""
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


def split_units(units: list[tuple[nn.Module, bool]], boundaries: list[int]) -> list[nn.Sequential]:
    """Cut a chain into segments: one segment ends right after each counted unit in ``boundaries``.

    ``units`` are ``(module, counted)`` pairs in forward order; uncounted modules (stem,
    transitions, pooling) join the segment they sit in. Returns ``len(boundaries) + 1`` segments.
    """
    segments: list[list[nn.Module]] = [[]]
    cut = set(boundaries)
    count = 0
    for module, counted in units:
        segments[-1].append(module)
        if counted:
            count += 1
            if count in cut:
                segments.append([])
    if len(segments) != len(boundaries) + 1:
        raise ValueError(f"exit boundaries {boundaries} do not fit a chain of {count} units")
    return [nn.Sequential(*mods) for mods in segments]


def stochastic_gate(survival: float, training: bool) -> bool:
    """Whether a residual branch runs this mini-batch (Huang et al. 2016: one draw a batch)."""
    return not training or survival >= 1.0 or bool(torch.rand(()) < survival)
