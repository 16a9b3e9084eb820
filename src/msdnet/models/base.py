"""The one interface every network implements: a MultiExitModel.

``forward(x)`` returns the list of exit logits (one per exit, in order). The same network can
also run exit by exit without recomputation::

    state = model.begin(x)            # nothing computed yet
    logits1 = model.advance(state)    # up to exit 1
    state = state.select(keep)        # drop the images that exited (optional)
    logits2 = model.advance(state)    # continues from where exit 1 stopped

A single-exit network is a MultiExitModel with ``num_exits == 1``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils._pytree import tree_map


@dataclass
class ExitState:
    """What a model keeps between two exits: the next exit's index and the cached features."""

    next_exit: int = 0
    cache: Any = field(default_factory=dict)
    lazy: bool = False

    def select(self, index: torch.Tensor) -> "ExitState":
        """Keep only the images at ``index`` (a bool mask or integer indices) of the batch."""
        cache = tree_map(lambda t: t[index] if isinstance(t, torch.Tensor) else t, self.cache)
        return ExitState(next_exit=self.next_exit, cache=cache, lazy=self.lazy)


class MultiExitModel(nn.Module):
    """Base class. Subclasses implement ``begin``/``advance`` (and may override ``forward``).

    Attributes:
        num_exits: number of classifiers.
        input_size: the [C, H, W] the network was built for (costs are counted at this size).
    """

    num_exits: int
    input_size: tuple[int, int, int]

    @property
    def static_graph(self) -> bool:
        """Whether a training step runs the same ops on every batch, so that it can be compiled
        and replayed as CUDA graphs: false when a submodule draws on the host per mini-batch
        which ops run (stochastic depth, drop-path), marked by ``draws_per_batch = True``."""
        return not any(getattr(m, "draws_per_batch", False) for m in self.modules())

    def begin(self, x: torch.Tensor, *, lazy: bool = False) -> ExitState:
        return ExitState(next_exit=0, cache={"x": x}, lazy=lazy)

    def advance(self, state: ExitState) -> torch.Tensor:
        raise TypeError(f"{type(self).__name__} must define advance() (or derive from SegmentedMultiExit)")

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        state = self.begin(x)
        return [self.advance(state) for _ in range(self.num_exits)]


class SegmentedMultiExit(MultiExitModel):
    """A chain ``stem -> segment_1 -> head_1, segment_2 -> head_2, ...``.

    Fits every sequential network (ResNet, DenseNet, ...): exit k is ``heads[k]`` applied to the
    output of ``segments[k]``, and ``segments[k]`` continues from ``segments[k-1]``'s output.
    """

    def __init__(self, segments: list[nn.Module], heads: list[nn.Module],
                 input_size: tuple[int, int, int]) -> None:
        super().__init__()
        if len(segments) != len(heads) or not segments:
            raise ValueError("need one head per segment, and at least one segment")
        self.segments = nn.ModuleList(segments)
        self.heads = nn.ModuleList(heads)
        self.num_exits = len(heads)
        self.input_size = tuple(input_size)

    def advance(self, state: ExitState) -> torch.Tensor:
        k = state.next_exit
        if k >= self.num_exits:
            raise IndexError(f"all {self.num_exits} exits already computed")
        h = self.segments[k](state.cache["x"])
        state.cache["x"] = h
        state.next_exit = k + 1
        return self.heads[k](h)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for segment, head in zip(self.segments, self.heads):
            x = segment(x)
            out.append(head(x))
        return out
