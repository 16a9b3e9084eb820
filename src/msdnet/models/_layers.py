"""Helpers shared by the baseline families (ResNet, Wide ResNet, DenseNet, FractalNet).

- typed conv helpers (``conv3x3``, ``conv1x1``), bias-free as in every original code base;
- ``init_weights``: the original papers' init (He et al. 2015 normal for convs with
  ``std = sqrt(2 / (k_h k_w C_out))``, the "MSR init" of fb.resnet.torch which the ResNet,
  Stochastic Depth, Wide ResNet and DenseNet code bases all use; BN weight 1 and bias 0; linear
  bias 0);
- ``BaselineConfig``: the keys every CIFAR baseline shares (``num_classes``, ``input_size`` and the
  placement of intermediate classifiers: ``exits`` or ``exit_locations``, ``head``,
  ``head_channels``; defined, torch-free, in :mod:`msdnet.models.configs`);
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

import torch
from torch import nn

from .configs import BaselineConfig, exit_boundaries

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
