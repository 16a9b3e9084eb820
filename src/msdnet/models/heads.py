"""Classifier heads shared by the baselines, so that exits are comparable across families.

Two designs (the config key ``head`` picks the intermediate one; the final classifier is always
each network's own, which is ``PoolHead``):

- ``ConvHead`` (``head: conv``, the default): MSDNet's CIFAR classifier (Huang et al. 2018, §4 and
  the authors' code): two 3x3 stride-2 conv-BN-ReLU with 128 channels, average pooling, a linear
  layer. Using MSDNet's own head for ResNet^MC / DenseNet^MC / DenseNet* keeps the comparison about
  the trunk, not the head. MSDNet's heads always read its coarsest scale (8x8 on CIFAR); a
  baseline's exit may sit on a 32x32 or 16x16 map, so the head first average-pools a larger map
  to ``resolution`` x ``resolution`` (8 by default; key ``head_resolution``) and then is exactly
  MSDNet's head. Why: without that pooling a head on a 32x32 map with 16 channels costs ~14.2M
  MACs (more than the four residual blocks before it); with it every head costs 0.9M to 3M MACs,
  which is what the published cost axes imply (ResNet^MC: first exit ~21M MACs = 4 blocks + head;
  the average cost never exceeds ~1.39e8, about the trunk alone). Final global pooling: equal to
  MSDNet's 2x2 average pool on its 2x2 map.
- ``PoolHead`` (``head: pool``): [BN-ReLU if the network is pre-activation] -> global average
  pooling -> linear: the final classifier of He et al. / Huang et al. (2017), nearly free
  (MACs ~ C * classes), but weak on early, fine-scale features.

``preact=True`` prepends BN-ReLU: the features of pre-activation networks (DenseNet, Wide ResNet,
FractalNet's joins) are raw conv outputs or means, while post-activation ResNet features already
went through BN-ReLU.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn


__all__ = ["ConvHead", "PoolHead", "make_head", "HeadKind"]

HeadKind = Literal["conv", "pool"]


def _conv_bn_relu(in_channels: int, out_channels: int) -> list[nn.Module]:
    return [nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1, bias=False),
            *_bn_relu(out_channels)]


def _bn_relu(channels: int) -> list[nn.Module]:
    return [nn.BatchNorm2d(channels), nn.ReLU(inplace=True)]


class _PoolTo(nn.Module):
    """Average-pool a map larger than ``size`` x ``size`` down to it; smaller maps pass."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2] <= self.size and x.shape[-1] <= self.size:
            return x
        return F.adaptive_avg_pool2d(x, (min(self.size, x.shape[-2]), min(self.size, x.shape[-1])))

    def extra_repr(self) -> str:
        return f"size={self.size}"


class ConvHead(nn.Sequential):
    """MSDNet's CIFAR classifier: 2 x (3x3 conv stride 2 -> BN -> ReLU), avg-pool, linear.

    Args:
        in_channels: channels of the feature map the exit reads.
        num_classes: outputs of the linear layer.
        channels: width of both convolutions (128 in MSDNet).
        preact: prepend BN-ReLU (for pre-activation networks).
        resolution: average-pool maps larger than this to ``resolution`` x ``resolution`` first
            (None: no pooling).
    """

    def __init__(self, in_channels: int, num_classes: int, *, channels: int = 128,
                 preact: bool = False, resolution: int | None = 8) -> None:
        layers: list[nn.Module] = _bn_relu(in_channels) if preact else []
        if resolution is not None:
            layers.append(_PoolTo(resolution))
        layers += [*_conv_bn_relu(in_channels, channels), *_conv_bn_relu(channels, channels),
                   nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(channels, num_classes)]
        super().__init__(*layers)


class PoolHead(nn.Sequential):
    """[BN-ReLU ->] global average pooling -> linear (the networks' own final classifier)."""

    def __init__(self, in_channels: int, num_classes: int, *, preact: bool = False) -> None:
        layers: list[nn.Module] = _bn_relu(in_channels) if preact else []
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(in_channels, num_classes)]
        super().__init__(*layers)


def make_head(kind: HeadKind, in_channels: int, num_classes: int, *, channels: int = 128,
              preact: bool = False, resolution: int | None = 8) -> nn.Module:
    """Build an intermediate classifier of design ``kind`` (``conv`` or ``pool``)."""
    if kind == "conv":
        return ConvHead(in_channels, num_classes, channels=channels, preact=preact,
                        resolution=resolution)
    if kind == "pool":
        return PoolHead(in_channels, num_classes, preact=preact)
    raise ValueError(f"unknown head kind {kind!r} (conv | pool)")
