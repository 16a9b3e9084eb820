"""MSDNet: Multi-Scale Dense Networks (Huang et al., ICLR 2018), faithful to the authors' code.

Reads top to bottom (the config, ``MSDNetConfig``, is in :mod:`msdnet.models.configs`): small
conv helpers, the layer types (first layer, MSDN layer, transition), the classifier head, the
network, the builder. The paper (Sec. 4) is the reference; the
structure (and so every MAC) follows the authors' PyTorch port (kalviny/MSDNet-PyTorch), which
produced the published models, with two documented exceptions:

* Initialisation. The port calls its ``_init_weights`` only on the *top-level* children of each
  block (layers, not convolutions), so its custom init is a no-op there and PyTorch's default
  init is used. We apply the paper's init (from the Lua code) to every module (``init: pytorch``
  keeps PyTorch's defaults, as the port).
* The head's final average pooling covers whatever spatial size is left (``AvgPool2d(2)`` at the
  paper's sizes: 2x2 after two stride-2 convs on the 8x8 / 7x7 coarsest scale), so the
  ablation without multi-scale (one 32x32 scale) still yields a 1x1 map.

Exit by exit. ``begin(x, lazy=...)`` / ``advance(state)`` compute the network as a graph of
nodes (layer i, scale s). For exit k the non-lazy plan computes every scale of every layer up to
the exit; the lazy plan (paper, section 4, "lazy evaluation") computes only the nodes the
coarsest scale at exit k depends on; the finer-scale nodes it skipped are computed at the next
exit, only for the images that go on. Nothing is ever computed twice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from .base import ExitState, MultiExitModel
from .configs import MSDNetConfig
from .registry import register

__all__ = ["MSDNetConfig", "MSDNet", "layer_plan"]


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------

def conv_bn_relu(c_in: int, c_out: int, kernel: int = 3, stride: int = 1,
                 padding: int | None = None, bias: bool = False) -> nn.Sequential:
    """Conv -> BN -> ReLU (the authors' ``ConvBasic``)."""
    if padding is None:
        padding = kernel // 2
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=bias),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class _Branch(nn.Sequential):
    """[1x1 conv -> BN -> ReLU ->] 3x3 conv (stride 1 or 2) -> BN -> ReLU (the authors' ``ConvBN``).

    The bottleneck width is ``min(c_in, bn_width * c_out)``.
    """

    def __init__(self, c_in: int, c_out: int, stride: int, bottleneck: bool, bn_width: int) -> None:
        layers: list[nn.Module] = []
        inner = c_in
        if bottleneck:
            inner = min(c_in, bn_width * c_out)
            layers += [nn.Conv2d(c_in, inner, 1, bias=False), nn.BatchNorm2d(inner), nn.ReLU(inplace=True)]
        layers += [nn.Conv2d(inner, c_out, 3, stride=stride, padding=1, bias=False),
                   nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
        super().__init__(*layers)


# --------------------------------------------------------------------------------------------
# Layers. Every layer maps a list of S per-scale tensors (None where a scale is dropped) to a
# new such list, and can also compute one output scale at a time (``compute``).
# --------------------------------------------------------------------------------------------

class FirstLayer(nn.Module):
    """Fills every scale: the stem at the finest scale, then a 3x3/2 conv per coarser scale."""

    def __init__(self, c_in: int, n: int, factors: list[int], stem: str) -> None:
        super().__init__()
        c0 = n * factors[0]
        if stem == "imagenet":
            # The port's 7x7 stem conv keeps PyTorch's default bias; not counted in MACs.
            first = nn.Sequential(nn.Conv2d(c_in, c0, 7, stride=2, padding=3, bias=True),
                                  nn.BatchNorm2d(c0), nn.ReLU(inplace=True),
                                  nn.MaxPool2d(3, stride=2, padding=1))
        else:
            first = conv_bn_relu(c_in, c0, 3, 1)
        convs = [first]
        for s in range(1, len(factors)):
            convs.append(conv_bn_relu(n * factors[s - 1], n * factors[s], 3, 2))
        self.convs = nn.ModuleList(convs)
        self.in_scales: list[int] = []
        self.out_scales = list(range(len(factors)))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for conv in self.convs:
            x = conv(x)
            out.append(x)
        return out


class MSDNLayer(nn.Module):
    """One MSDNet layer over the active scales.

    At the finest active scale (when no scale is dropped here): one branch from the same scale.
    At every other output scale: a strided branch from the finer scale of the previous layer
    and a regular branch from the same scale, each ``growth * gr_factor[s] / 2`` channels. With
    dense connectivity the new features are concatenated to the input at that scale.
    """

    def __init__(self, n_in: int, growth: int, cfg: MSDNetConfig, in_count: int, out_count: int) -> None:
        super().__init__()
        S = cfg.num_scales
        gr, bn = cfg.scale_factors, cfg.bn_factors
        self.dense = cfg.dense
        self.in_scales = list(range(S - in_count, S))
        self.out_scales = list(range(S - out_count, S))
        branches = {}
        for s in self.out_scales:
            c_out = growth * gr[s]
            if s - 1 in self.in_scales:
                branches[str(s)] = nn.ModuleDict({
                    "down": _Branch(n_in * gr[s - 1], c_out // 2, 2, cfg.bottleneck, bn[s - 1]),
                    "normal": _Branch(n_in * gr[s], c_out // 2, 1, cfg.bottleneck, bn[s]),
                })
            else:
                branches[str(s)] = nn.ModuleDict({
                    "normal": _Branch(n_in * gr[s], c_out, 1, cfg.bottleneck, bn[s]),
                })
        self.branches = nn.ModuleDict(branches)

    def deps(self, s: int) -> list[int]:
        return [t for t in (s - 1, s) if t in self.in_scales]

    def compute(self, s: int, xs: dict[int, torch.Tensor] | list) -> torch.Tensor:
        b = self.branches[str(s)]
        new = [b["down"](xs[s - 1]), b["normal"](xs[s])] if "down" in b else [b["normal"](xs[s])]
        parts = [xs[s], *new] if self.dense else new
        return torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]

    def forward(self, xs: list) -> list:
        out: list = [None] * len(xs)
        for s in self.out_scales:
            out[s] = self.compute(s, xs)
        return out


class Transition(nn.Module):
    """1x1 conv -> BN -> ReLU per remaining scale, compressing channels by ``reduction``."""

    def __init__(self, n_in: int, n_out: int, factors: list[int], scales: list[int]) -> None:
        super().__init__()
        self.in_scales = list(scales)
        self.out_scales = list(scales)
        self.convs = nn.ModuleDict({str(s): conv_bn_relu(n_in * factors[s], n_out * factors[s], 1, 1, 0)
                                    for s in scales})

    def deps(self, s: int) -> list[int]:
        return [s]

    def compute(self, s: int, xs: dict[int, torch.Tensor] | list) -> torch.Tensor:
        return self.convs[str(s)](xs[s])

    def forward(self, xs: list) -> list:
        out: list = [None] * len(xs)
        for s in self.out_scales:
            out[s] = self.compute(s, xs)
        return out


class ClassifierHead(nn.Module):
    """Two 3x3/2 conv-BN-ReLU, average pooling over what is left, linear. Reads the coarsest scale."""

    def __init__(self, c_in: int, width: int, num_classes: int, spatial: tuple[int, int]) -> None:
        super().__init__()
        h, w = spatial
        for _ in range(2):
            h, w = (h + 1) // 2, (w + 1) // 2
        self.features = nn.Sequential(conv_bn_relu(c_in, width, 3, 2), conv_bn_relu(width, width, 3, 2),
                                      nn.AvgPool2d((h, w)))
        self.linear = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(torch.flatten(self.features(x), 1))


# --------------------------------------------------------------------------------------------
# The network
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LayerSpec:
    kind: Literal["msdn", "transition"]
    block: int          # 0-based block
    n_in: int           # running channel count n before the layer
    n_out: int          # after it
    in_count: int = 0   # active scales in / out (msdn)
    out_count: int = 0


def layer_plan(cfg: MSDNetConfig) -> list[LayerSpec]:
    """The layer sequence after the first layer: scales in/out and the channel bookkeeping.

    Follows the paper's network reduction and transitions (Sec. 4) and the authors' ``_build_block``.
    """
    S = cfg.num_scales
    steps = cfg.steps
    total = sum(steps)
    interval = math.ceil(total / S)
    n = cfg.n_channels
    plan: list[LayerSpec] = []
    layer = 0
    for block, count in enumerate(steps):
        for _ in range(count):
            layer += 1
            if cfg.prune == "min":
                in_count, out_count = min(S, total - layer + 2), min(S, total - layer + 1)
            else:
                in_count = S - math.floor(max(0, layer - 2) / interval)
                out_count = S - math.floor((layer - 1) / interval)
            n_next = n + cfg.growth_rate if cfg.dense else cfg.growth_rate
            plan.append(LayerSpec("msdn", block, n, n_next, in_count, out_count))
            n = n_next
            if cfg.reduction > 0 and (
                (cfg.prune == "max" and in_count > out_count)
                or (cfg.prune == "min" and layer in (math.floor(total / 3), math.floor(2 * total / 3)))
            ):
                n_next = math.floor(cfg.reduction * n)
                plan.append(LayerSpec("transition", block, n, n_next, out_count, out_count))
                n = n_next
    return plan


class MSDNet(MultiExitModel):
    """Multi-Scale Dense Network with one classifier after each block (or the chosen blocks)."""

    def __init__(self, cfg: MSDNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.input_size = tuple(cfg.input_size)
        S, gr = cfg.num_scales, cfg.scale_factors
        self.first = FirstLayer(cfg.input_size[0], cfg.n_channels, gr, cfg.stem)

        exits = [b - 1 for b in cfg.exits]            # 0-based blocks with a classifier
        segments: list[list[nn.Module]] = [[] for _ in exits]
        seg_of_block = {}
        seg = 0
        for block in range(cfg.n_blocks):
            seg_of_block[block] = seg
            if block == exits[seg]:
                seg += 1
        n_after_block: dict[int, int] = {}
        for spec in layer_plan(cfg):
            if spec.kind == "msdn":
                layer: nn.Module = MSDNLayer(spec.n_in, cfg.growth_rate, cfg, spec.in_count, spec.out_count)
            else:
                layer = Transition(spec.n_in, spec.n_out, gr, list(range(S - spec.out_count, S)))
            segments[seg_of_block[spec.block]].append(layer)
            n_after_block[spec.block] = spec.n_out
        n_at_exit = [n_after_block[b] for b in exits]
        self.segments = nn.ModuleList(nn.ModuleList(s) for s in segments)

        spatial = self._scale_spatial(cfg)[S - 1]
        head_type = cfg.head or cfg.stem
        heads = []
        for n in n_at_exit:
            c_in = n * gr[S - 1]
            width = cfg.head_channels if head_type == "cifar" else c_in
            heads.append(ClassifierHead(c_in, width, cfg.num_classes, spatial))
        self.heads = nn.ModuleList(heads)
        self.num_exits = len(heads)

        # Node graph for exit-by-exit evaluation: global layer index 0 is the first layer.
        self._layers: list[nn.Module] = [self.first] + [m for s in self.segments for m in s]
        ends, i = [], 0
        for s in self.segments:
            i += len(s)
            ends.append(i)
        self._exit_layer = ends
        self._plans = {lazy: self._make_plans(lazy) for lazy in (False, True)}
        self._keep = {lazy: self._make_keep(plans) for lazy, plans in self._plans.items()}
        if cfg.init == "paper":
            self._init_weights()

    # -- construction helpers ---------------------------------------------------------------
    @staticmethod
    def _scale_spatial(cfg: MSDNetConfig) -> list[tuple[int, int]]:
        h, w = cfg.input_size[1:]
        if cfg.stem == "imagenet":
            for _ in range(2):
                h, w = (h + 1) // 2, (w + 1) // 2
        sizes = [(h, w)]
        for _ in range(1, cfg.num_scales):
            h, w = (h + 1) // 2, (w + 1) // 2
            sizes.append((h, w))
        return sizes

    def _init_weights(self) -> None:
        """The paper's init: conv ~ N(0, sqrt(2 / (k*k*C_out))), BN gamma 1 beta 0, linear bias 0."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / n))
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def _deps(self, node: tuple[int, int]) -> list[tuple[int, int]]:
        i, s = node
        if i == 0:
            return []
        return [(i - 1, t) for t in self._layers[i].deps(s)]

    def _make_plans(self, lazy: bool) -> list[list[tuple[int, int]]]:
        """For each exit: the nodes first computed there, in order, and the nodes to keep after."""
        S = self.cfg.num_scales
        done: set[tuple[int, int]] = set()
        plans = []
        for end in self._exit_layer:
            if lazy:
                need: set[tuple[int, int]] = set()
                stack = [(end, S - 1)]
                while stack:
                    node = stack.pop()
                    if node in need or node in done:
                        continue
                    need.add(node)
                    stack.extend(self._deps(node))
                if any(i == 0 for i, _ in need):      # the first layer computes every scale
                    need |= {(0, s) for s in range(S)}
            else:
                need = {(i, s) for i in range(end + 1) for s in self._layers[i].out_scales}
            new = sorted(need - done)
            done |= need
            plans.append(new)
        return plans

    def _make_keep(self, plans: list[list[tuple[int, int]]]) -> list[set[tuple[int, int]]]:
        """For each exit: the computed nodes that a node not yet computed still reads."""
        consumers: dict[tuple[int, int], list[tuple[int, int]]] = {}
        for i in range(1, len(self._layers)):
            for t in self._layers[i].out_scales:
                for dep in self._deps((i, t)):
                    consumers.setdefault(dep, []).append((i, t))
        done: set[tuple[int, int]] = set()
        keep = []
        for new in plans:
            done |= set(new)
            keep.append({n for n in done if any(c not in done for c in consumers.get(n, []))})
        return keep

    # -- the MultiExitModel API ---------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        xs = self.first(x)
        out = []
        for segment, head in zip(self.segments, self.heads):
            for layer in segment:
                xs = layer(xs)
            out.append(head(xs[-1]))
        return out

    def begin(self, x: torch.Tensor, *, lazy: bool = False) -> ExitState:
        return ExitState(next_exit=0, cache={"x": x, "nodes": {}}, lazy=lazy)

    def advance(self, state: ExitState) -> torch.Tensor:
        k = state.next_exit
        if k >= self.num_exits:
            raise IndexError(f"all {self.num_exits} exits already computed")
        nodes: dict[tuple[int, int], torch.Tensor] = state.cache["nodes"]
        for node in self._plans[state.lazy][k]:
            if node in nodes:
                continue
            i, s = node
            if i == 0:
                for t, feat in enumerate(self.first(state.cache["x"])):
                    nodes[(0, t)] = feat
                state.cache["x"] = None
                continue
            prev = {t: nodes[(i - 1, t)] for t in self._layers[i].deps(s)}
            nodes[node] = self._layers[i].compute(s, prev)
        end = self._exit_layer[k]
        logits = self.heads[k](nodes[(end, self.cfg.num_scales - 1)])
        keep = self._keep[state.lazy][k]
        for node in [n for n in nodes if n not in keep]:      # nothing later reads them
            del nodes[node]
        state.next_exit = k + 1
        return logits


@register("msdnet", MSDNetConfig)
def build_msdnet(cfg: MSDNetConfig) -> MSDNet:
    return MSDNet(cfg)
