"""Wide ResNets for CIFAR (Zagoruyko & Komodakis, BMVC 2016), WRN-d-k, as MultiExitModels.

Layout: 3x3 conv (16) -> three groups of n pre-activation basic blocks with 16k, 32k, 64k
channels (stride 2 at the start of groups 2 and 3) -> BN-ReLU -> global average pooling ->
linear; depth d = 6n + 4, widen factor k. A block is
``conv(dropout(relu(bn(conv(relu(bn(x)))))))`` plus the shortcut: the identity, or, where the
width or resolution changes, a 1x1 conv of the pre-activated input (as in the authors' code).

Exact parameter counts (this implementation):

========= ============ ============ ==========
 network   CIFAR-10     CIFAR-100    published
========= ============ ============ ==========
 WRN-40-4  8,949,210    8,972,340    8.9M
 WRN-40-1    563,930      569,780    0.6M
========= ============ ============ ==========

Note for the MSDNet figures: the paper's "WideResNet-40" point (83.8M MACs; 93.15 % on CIFAR-10,
69.11 % on CIFAR-100, the WRN paper's numbers for WRN-40-1) is WRN-40-1, not WRN-40-4
(1.30e9 MACs); ``wrn-40-1-cifar100.yaml`` is that network (83.7M MACs here).

Exits: units are the 3n blocks; heads get BN-ReLU first (pre-activation features).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._layers import conv1x1, conv3x3, init_weights, split_units
from .base import MultiExitModel, SegmentedMultiExit
from .configs import WideResNetConfig
from .heads import PoolHead
from .registry import register

__all__ = ["WideResNetConfig", "WideBasicBlock", "wide_resnet"]


class WideBasicBlock(nn.Module):
    """Pre-activation basic block with optional dropout between the two 3x3 convs.

    Args:
        in_channels / out_channels: block widths.
        stride: stride of the first conv and of the projection shortcut.
        dropout: drop probability between the convs (0.3 in WRN's CIFAR runs with dropout).
    """

    def __init__(self, in_channels: int, out_channels: int, *, stride: int = 1,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = conv3x3(in_channels, out_channels, stride=stride)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv2 = conv3x3(out_channels, out_channels)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.project = (conv1x1(in_channels, out_channels, stride=stride)
                        if stride != 1 or in_channels != out_channels else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o = F.relu(self.bn1(x))
        shortcut = x if self.project is None else self.project(o)
        out = self.conv1(o)
        out = self.conv2(self.dropout(F.relu(self.bn2(out))))
        return out + shortcut


def wide_resnet(cfg: WideResNetConfig) -> SegmentedMultiExit:
    """Build WRN-d-k with the exits ``cfg`` asks for."""
    n = (cfg.depth - 4) // 6
    widths = [16 * cfg.widen_factor, 32 * cfg.widen_factor, 64 * cfg.widen_factor]
    units: list[tuple[nn.Module, bool]] = [(conv3x3(cfg.input_size[0], 16), False)]
    channels_after: list[int] = []
    in_ch = 16
    for group, width in enumerate(widths):
        for i in range(n):
            stride = 2 if group > 0 and i == 0 else 1
            units.append((WideBasicBlock(in_ch, width, stride=stride, dropout=cfg.dropout), True))
            in_ch = width
            channels_after.append(width)
    bounds = cfg.boundaries()
    heads: list[nn.Module] = [cfg.make_head(channels_after[b - 1], preact=True) for b in bounds]
    heads.append(PoolHead(in_ch, cfg.num_classes, preact=True))
    model = SegmentedMultiExit(split_units(units, bounds), heads, tuple(cfg.input_size))
    init_weights(model)
    return model


@register("wide_resnet", WideResNetConfig)
def _build_wide_resnet(cfg: WideResNetConfig) -> MultiExitModel:
    return wide_resnet(cfg)
