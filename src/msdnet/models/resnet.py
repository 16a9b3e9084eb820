"""CIFAR ResNets (He et al., CVPR 2016, §4.2), optionally with stochastic depth (Huang et al.,
ECCV 2016) and intermediate classifiers (the MSDNet paper's ResNet^MC), as MultiExitModels.

Layout: 3x3 conv (16) -> three stages of n basic blocks (16, 32, 64 channels; the first block of
stages 2 and 3 has stride 2) -> global average pooling -> linear; depth = 6n + 2.
A basic block is post-activation: ``relu(shortcut(x) + bn(conv(relu(bn(conv(x))))))``.

Shortcuts where the shape changes: ``A`` (He et al.'s CIFAR choice, the default) is the identity
subsampled by 2 with zero-padded extra channels: parameter-free. ``B`` is a 1x1 conv + BN
projection. Exact parameter counts (published: 1.7M for ResNet-110, 0.27M for ResNet-20):

============== ========== ===========
 network        CIFAR-10   CIFAR-100
============== ========== ===========
 ResNet-20 A      269,722     275,572
 ResNet-110 A   1,727,962   1,733,812
 ResNet-110 B   1,730,714   1,736,564
============== ========== ===========

(CIFAR-100 adds 64 * 90 + 90 to the linear layer; ``B`` adds 2,752: the 16->32 and 32->64
projections with their BN.) ResNet-110 costs 253.9M MACs at 32x32 (~250M in the paper's figures).

Stochastic depth (``stochastic_depth: p_L``, 1.0 = off): block l of L survives a training
mini-batch with probability ``p_l = 1 - (l / L) (1 - p_L)`` (Huang et al.'s linear decay rule:
from p_0 = 1 at the input to p_L at the last block; 0.5 in their ResNet-110). A dropped
block is the identity (its shortcut only, its branch is not computed); at test time every branch
runs, scaled by its p_l. One draw per block per mini-batch, from the global torch RNG, as in the
paper. (Under DDP, skipped branches need ``find_unused_parameters=True``.)

Exits: units are the 3n residual blocks; see ``_layers`` for ``exits`` / ``exit_locations`` and
``heads`` for the head designs. Post-activation features need no BN-ReLU in the head.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._layers import conv1x1, conv3x3, init_weights, split_units, stochastic_gate
from .base import MultiExitModel, SegmentedMultiExit
from .configs import ResNetConfig
from .heads import PoolHead
from .registry import register

__all__ = ["ResNetConfig", "BasicBlock", "resnet_cifar"]


class _PadShortcut(nn.Module):
    """Option A shortcut: subsample by ``stride`` and zero-pad the extra channels (no params)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.extra = out_channels - in_channels
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, ::self.stride, ::self.stride]
        if self.extra:
            x = F.pad(x, (0, 0, 0, 0, 0, self.extra))
        return x


class BasicBlock(nn.Module):
    """Post-activation basic block: two 3x3 convs, each followed by BN; ReLU after the sum.

    Args:
        in_channels / out_channels: block input and output widths.
        stride: stride of the first conv (and of the shortcut).
        shortcut: ``A`` (subsample + zero padding) or ``B`` (1x1 conv + BN) when shapes change.
        survival: probability ``p_l`` that the residual branch runs in a training mini-batch.
    """

    def __init__(self, in_channels: int, out_channels: int, *, stride: int = 1,
                 shortcut: str = "A", survival: float = 1.0) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_channels, out_channels, stride=stride)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = conv3x3(out_channels, out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.survival = survival
        self.draws_per_batch = survival < 1.0          # see MultiExitModel.static_graph
        if stride == 1 and in_channels == out_channels:
            self.shortcut: nn.Module = nn.Identity()
        elif shortcut == "A":
            self.shortcut = _PadShortcut(in_channels, out_channels, stride)
        else:
            self.shortcut = nn.Sequential(conv1x1(in_channels, out_channels, stride=stride),
                                          nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = self.shortcut(x)
        if not stochastic_gate(self.survival, self.training):
            return F.relu(identity)
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if not self.training and self.survival < 1.0:
            out = out * self.survival
        return F.relu(identity + out)

    def extra_repr(self) -> str:
        return f"survival={self.survival:.4g}" if self.survival < 1.0 else ""


def resnet_cifar(cfg: ResNetConfig) -> SegmentedMultiExit:
    """Build a CIFAR ResNet (6n+2 layers) with the exits ``cfg`` asks for."""
    n = (cfg.depth - 2) // 6
    total = 3 * n
    c_in, width0 = cfg.input_size[0], cfg.widths[0]
    stem = nn.Sequential(conv3x3(c_in, width0), nn.BatchNorm2d(width0), nn.ReLU(inplace=True))
    units: list[tuple[nn.Module, bool]] = [(stem, False)]
    channels_after: list[int] = []
    in_ch, index = width0, 0
    for stage, width in enumerate(cfg.widths):
        for i in range(n):
            index += 1
            survival = 1.0 - index / total * (1.0 - cfg.stochastic_depth)
            stride = 2 if stage > 0 and i == 0 else 1
            units.append((BasicBlock(in_ch, width, stride=stride, shortcut=cfg.shortcut,
                                     survival=survival), True))
            in_ch = width
            channels_after.append(width)
    bounds = cfg.boundaries()
    heads: list[nn.Module] = [cfg.make_head(channels_after[b - 1], preact=False) for b in bounds]
    heads.append(PoolHead(in_ch, cfg.num_classes))
    model = SegmentedMultiExit(split_units(units, bounds), heads, tuple(cfg.input_size))
    init_weights(model)
    return model


@register("resnet", ResNetConfig)
def _build_resnet(cfg: ResNetConfig) -> MultiExitModel:
    return resnet_cifar(cfg)
