"""FractalNet for CIFAR (Larsson, Maire & Shakhnarovich, ICLR 2017) as a MultiExitModel.

Layout: B blocks (5 on CIFAR, widths 64, 128, 256, 512, 512), each a fractal f_C followed by 2x2
max pooling; after the last block (1x1 on 32x32 inputs) global average pooling and a linear layer.

- expansion rule: ``f_1(z) = conv(z)``; ``f_{C+1}(z) = join(f_C(f_C(z)), conv(z))``, where conv
  is 3x3 conv-BN-ReLU (then dropout if asked). C columns give 2^C - 1 convs a block and a
  deepest path of B * 2^(C-1) layers: **the paper's 20-layer CIFAR network has C = 3 columns**
  (5 * 2^2 = 20); C = 4 is its 40-layer network. Hence ``columns`` defaults to 3.
- join: elementwise mean. Joins are flattened as in the paper's Figure 1: the outer join of
  ``f_{C+1}`` and the inner join closing its second ``f_C`` are one join over all columns that
  meet there (mean of C inputs, not a nested mean of means).
- drop-path (training only; at evaluation every path is used): each mini-batch is *global* with
  probability ``global_drop`` (0.5 in the paper): one column, drawn uniformly, is the only path
  in the whole network (its convs only are run); otherwise *local*: every join drops each input
  with probability ``local_drop`` (0.15), keeping at least one. Draws come from the global torch
  RNG, once per mini-batch.
- ``dropout``: per-block dropout rates after each conv (the paper: 0, 0.1, 0.2, 0.3, 0.4);
  empty = off.

Exact parameter counts (C = 3, widths 64-128-256-512-512): 33,724,618 on CIFAR-10, 33,770,788
on CIFAR-100. The paper reports 38.6M for its 20-layer net; the convs of this layout alone are
33.7M (block b: C convs from the previous width plus 2^C - 1 - C at width b), so the published
figure counts something the text does not describe (+14 %); no reading of the layout we tried
reaches it (C = 4 gives 76.1M). MACs: 846M at 32x32, against ~129M on the MSDNet paper's
FractalNet point: that point is not this network either (its block 1 alone costs 156M MACs).

Exits: units are the B blocks (a classifier after block b reads its pooled output); fractal
joins are means of ReLU outputs, so heads need no BN-ReLU. Or ``column_exits: true``: FractalNet's
own anytime mode (Larsson et al. §4.3, "a shallow column gives a quick answer"): exit k is column
k alone, k = 1..C (shallow to deep; column k has B * 2^(k-1) convs), through the shared final
classifier. Columns share no conv, so running them one after another costs their sum: the last
exit's cumulative MACs equal the full network's convs (plus C - 1 extra classifier calls). The
parameters and state-dict keys are the plain network's, so a checkpoint of one config loads into
the other. Trained in this mode, every column gets its loss each step (global drop-path on all
columns at once).
"""

from __future__ import annotations

import torch
from torch import nn

from ._layers import conv3x3, init_weights, split_units
from .base import ExitState, MultiExitModel, SegmentedMultiExit
from .configs import FractalNetConfig
from .heads import PoolHead
from .registry import register

__all__ = ["FractalNetConfig", "FractalBlock", "FractalNet", "DropPath"]


class DropPath:
    """Per-mini-batch drop-path draw shared by every block of one network (not a module).

    ``column``: None (all columns) or the 1-based column of a global drop-path batch;
    ``local``: the join input drop probability in effect (0 outside training).
    """

    def __init__(self, columns: int, *, local_drop: float, global_drop: float) -> None:
        self.columns = columns
        self.local_drop = local_drop
        self.global_drop = global_drop
        self.column: int | None = None
        self.local = 0.0
        self.forced: int | None = None      # column_exits: the column being evaluated

    def sample(self, training: bool) -> None:
        self.column, self.local = None, 0.0
        if not training:
            return
        if self.global_drop > 0 and bool(torch.rand(()) < self.global_drop):
            self.column = int(torch.randint(1, self.columns + 1, ()))
        else:
            self.local = self.local_drop


def _join(inputs: list[torch.Tensor], drop: float) -> torch.Tensor:
    """Elementwise mean; with ``drop`` > 0 each input is dropped with that probability
    (at least one is kept)."""
    if len(inputs) == 1:
        return inputs[0]
    if drop > 0:
        keep = torch.rand(len(inputs)) >= drop
        if not bool(keep.any()):
            keep[int(torch.randint(len(inputs), ()))] = True
        inputs = [t for t, k in zip(inputs, keep.tolist()) if k]
    out = inputs[0]
    for t in inputs[1:]:
        out = out + t
    return out / len(inputs) if len(inputs) > 1 else out


class _ConvUnit(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int, dropout: float) -> None:
        layers: list[nn.Module] = [conv3x3(in_channels, out_channels),
                                   nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True)]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        super().__init__(*layers)


class _Fractal(nn.Module):
    """f_C. ``paths(x, column, drop)`` returns the unjoined outputs of the active columns."""

    def __init__(self, columns: int, in_channels: int, out_channels: int, dropout: float) -> None:
        super().__init__()
        self.columns = columns
        self.shallow = _ConvUnit(in_channels, out_channels, dropout)            # column 1
        if columns > 1:                                                         # columns 2..C
            self.first = _Fractal(columns - 1, in_channels, out_channels, dropout)
            self.second = _Fractal(columns - 1, out_channels, out_channels, dropout)

    def paths(self, x: torch.Tensor, column: int | None, drop: float) -> list[torch.Tensor]:
        out = []
        if column is None or column == 1:
            out.append(self.shallow(x))
        if self.columns > 1 and (column is None or column > 1):
            sub = None if column is None else column - 1
            y = _join(self.first.paths(x, sub, drop), drop)
            out += self.second.paths(y, sub, drop)
        return out


class FractalBlock(nn.Module):
    """A fractal block: f_C, its final join, then 2x2 max pooling.

    Args:
        columns: C.
        in_channels / out_channels: widths before and inside the block.
        drop_path: the network's shared drop-path draw.
        dropout: dropout after each conv of the block.
    """

    def __init__(self, columns: int, in_channels: int, out_channels: int, *, drop_path: DropPath,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.fractal = _Fractal(columns, in_channels, out_channels, dropout)
        self.pool = nn.MaxPool2d(2)
        self._drop_path = drop_path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dp = self._drop_path
        drop = dp.local if self.training and dp.forced is None else 0.0
        column = dp.forced if dp.forced is not None else dp.column if self.training else None
        return self.pool(_join(self.fractal.paths(x, column, drop), drop))


class FractalNet(SegmentedMultiExit):
    """SegmentedMultiExit that draws drop-path once per forward (or per ``begin``).

    With ``column_exits`` it has one segment and one head, and exit k runs column k alone.
    """

    def __init__(self, segments: list[nn.Module], heads: list[nn.Module],
                 input_size: tuple[int, int, int], drop_path: DropPath, *,
                 column_exits: bool = False) -> None:
        super().__init__(segments, heads, input_size)
        self._drop_path = drop_path
        self.draws_per_batch = drop_path.local_drop > 0 or drop_path.global_drop > 0
        self.column_exits = column_exits
        if column_exits:
            self.num_exits = drop_path.columns

    def begin(self, x: torch.Tensor, *, lazy: bool = False) -> ExitState:
        self._drop_path.sample(self.training)
        return super().begin(x, lazy=lazy)

    def advance(self, state: ExitState) -> torch.Tensor:
        if not self.column_exits:
            return super().advance(state)
        k = state.next_exit
        if k >= self.num_exits:
            raise IndexError(f"all {self.num_exits} exits already computed")
        self._drop_path.forced = k + 1
        try:
            out = self.heads[0](self.segments[0](state.cache["x"]))
        finally:
            self._drop_path.forced = None
        state.next_exit = k + 1
        return out

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if self.column_exits:
            state = self.begin(x)
            return [self.advance(state) for _ in range(self.num_exits)]
        self._drop_path.sample(self.training)
        return super().forward(x)


def fractalnet(cfg: FractalNetConfig) -> FractalNet:
    """Build a CIFAR FractalNet with the exits ``cfg`` asks for."""
    drop_path = DropPath(cfg.columns, local_drop=cfg.local_drop, global_drop=cfg.global_drop)
    dropout = cfg.dropout or [0.0] * len(cfg.widths)
    units: list[tuple[nn.Module, bool]] = []
    in_ch = cfg.input_size[0]
    for width, rate in zip(cfg.widths, dropout):
        units.append((FractalBlock(cfg.columns, in_ch, width, drop_path=drop_path, dropout=rate),
                      True))
        in_ch = width
    bounds = cfg.boundaries()
    heads: list[nn.Module] = [cfg.make_head(cfg.widths[b - 1], preact=False) for b in bounds]
    heads.append(PoolHead(in_ch, cfg.num_classes))
    model = FractalNet(split_units(units, bounds), heads, tuple(cfg.input_size), drop_path,
                       column_exits=cfg.column_exits)
    init_weights(model)
    return model


@register("fractalnet", FractalNetConfig)
def _build_fractalnet(cfg: FractalNetConfig) -> MultiExitModel:
    return fractalnet(cfg)
