"""CIFAR DenseNets (Huang et al., CVPR 2017), DenseNet-BC and the MSDNet paper's DenseNet*
(appendix: the growth rate doubles after each transition), with intermediate classifiers
(DenseNet^MC), as MultiExitModels.

Layout: 3x3 conv (2k channels for DenseNet-BC, 16 otherwise) -> three dense blocks of n layers
with transitions between them -> BN-ReLU -> global average pooling -> linear.

- dense layer (``bottleneck: true``, the "B"): BN-ReLU-1x1 conv (4k)-BN-ReLU-3x3 conv (k); without
  bottleneck: BN-ReLU-3x3 conv (k). Its k new maps are concatenated to its input.
- transition: BN-ReLU-1x1 conv to floor(theta * m) channels (compression theta, the "C": 0.5)
  -> 2x2 average pooling.
- depth L = 6n + 4 with bottlenecks (two convs a layer), 3n + 4 without.
- growth rate of block j: ``growth_rate * growth_multipliers[j]``: [1, 1, 1] is DenseNet,
  [1, 2, 4] is DenseNet* (k, 2k, 4k). The stem uses 2 * growth_rate (DenseNet-BC's rule with the
  first block's k).

Exact parameter counts of DenseNet-BC (L=100, k=12) (published: 0.8M): 769,162 on CIFAR-10,
800,032 on CIFAR-100 (linear layer 342 * 90 + 90 larger). DenseNet-BC-100 costs 292.4M MACs at
32x32.

Exits: units are the 3n dense layers (numbered across blocks); a classifier after the last layer
of a block reads the block output before the transition. Heads get BN-ReLU first (the
concatenated maps are raw conv outputs).
"""

from __future__ import annotations

import torch
from torch import nn

from ._layers import conv1x1, conv3x3, init_weights, split_units
from .base import MultiExitModel, SegmentedMultiExit
from .configs import DenseNetConfig
from .heads import PoolHead
from .registry import register

__all__ = ["DenseNetConfig", "DenseLayer", "Transition", "densenet_cifar"]


class DenseLayer(nn.Module):
    """One dense layer H_l: returns ``cat([x, H_l(x)])`` with ``growth_rate`` new maps.

    Args:
        in_channels: m, channels of the concatenated input.
        growth_rate: k, new feature maps.
        bottleneck: use the 1x1 bottleneck to ``4k`` maps first (DenseNet-B).
        dropout: dropout after each conv (0.2 in the paper's runs without augmentation).
    """

    def __init__(self, in_channels: int, growth_rate: int, *, bottleneck: bool = True,
                 dropout: float = 0.0) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        if bottleneck:
            layers += [nn.BatchNorm2d(c), nn.ReLU(inplace=True), conv1x1(c, 4 * growth_rate)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            c = 4 * growth_rate
        layers += [nn.BatchNorm2d(c), nn.ReLU(inplace=True), conv3x3(c, growth_rate)]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.body(x)], 1)


class Transition(nn.Sequential):
    """BN-ReLU-1x1 conv (to ``out_channels``)-2x2 average pooling."""

    def __init__(self, in_channels: int, out_channels: int, *, dropout: float = 0.0) -> None:
        layers: list[nn.Module] = [nn.BatchNorm2d(in_channels), nn.ReLU(inplace=True),
                                   conv1x1(in_channels, out_channels)]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers.append(nn.AvgPool2d(2))
        super().__init__(*layers)


def densenet_cifar(cfg: DenseNetConfig) -> SegmentedMultiExit:
    """Build a CIFAR DenseNet(-BC / *) with the exits ``cfg`` asks for."""
    n = cfg.layers_per_block()
    c = 2 * cfg.growth_rate if cfg.bottleneck else 16
    units: list[tuple[nn.Module, bool]] = [(conv3x3(cfg.input_size[0], c), False)]
    channels_after: list[int] = []
    for block, mult in enumerate(cfg.growth_multipliers):
        k = cfg.growth_rate * mult
        for _ in range(n):
            units.append((DenseLayer(c, k, bottleneck=cfg.bottleneck, dropout=cfg.dropout), True))
            c += k
            channels_after.append(c)
        if block < 2:
            out = int(cfg.compression * c)
            units.append((Transition(c, out, dropout=cfg.dropout), False))
            c = out
    bounds = cfg.boundaries()
    heads: list[nn.Module] = [cfg.make_head(channels_after[b - 1], preact=True) for b in bounds]
    heads.append(PoolHead(c, cfg.num_classes, preact=True))
    model = SegmentedMultiExit(split_units(units, bounds), heads, tuple(cfg.input_size))
    init_weights(model)
    return model


@register("densenet", DenseNetConfig)
def _build_densenet(cfg: DenseNetConfig) -> MultiExitModel:
    return densenet_cifar(cfg)
