"""Per-exit MACs and parameters by the paper's convention (docs/method.md §Cost convention).

Counted with batch size 1 at the model's input size:

* conv: C_in/groups * C_out * k_h * k_w * H_out * W_out (bias not counted)
* linear: in * out (+ out with a bias)
* ReLU: one per output element; max / average pooling: kernel area per output element
* batch norm, dropout, concatenation, identity, additions: 0

Exit k's cost is cumulative: everything computed up to and including classifier k, earlier
heads included. Parameters are cumulative the same way (every module run so far).

The counter intercepts the functional ops themselves (a ``TorchFunctionMode``), so an op is
counted whether a module or a ``torch.nn.functional`` call issues it, and never twice.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from .base import MultiExitModel

__all__ = ["ExitCost", "count_costs", "op_macs"]


@dataclass(frozen=True)
class ExitCost:
    exit: int      # 1-based
    macs: int      # cumulative multiply-adds up to and including this exit
    params: int    # cumulative parameters of every module run up to this exit

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def _pair(v: Any) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _per_image(t: torch.Tensor) -> int:
    return t.numel() // max(1, t.shape[0]) if t.dim() > 1 else t.numel()


def op_macs(name: str, args: tuple, kwargs: dict, out: Any) -> int:
    """MACs of one functional op per image (0 for ops the convention does not count)."""
    if isinstance(out, (tuple, list)):          # max_pool with indices
        out = out[0]
    if not isinstance(out, torch.Tensor):
        return 0
    name = name.lstrip("_")
    if name in ("conv1d", "conv2d", "conv3d"):
        weight = args[1] if len(args) > 1 else kwargs["weight"]
        return int(math.prod(weight.shape[1:])) * _per_image(out)
    if name == "linear":
        weight = args[1] if len(args) > 1 else kwargs["weight"]
        bias = args[2] if len(args) > 2 else kwargs.get("bias")
        out_features = weight.shape[0]
        rows = _per_image(out) // out_features
        return rows * (weight.shape[1] * out_features + (out_features if bias is not None else 0))
    if name in ("relu", "relu_", "relu6", "hardtanh"):
        return _per_image(out)
    if name in ("max_pool2d", "avg_pool2d", "max_pool2d_with_indices"):
        k = args[1] if len(args) > 1 else kwargs["kernel_size"]
        kh, kw = _pair(k)
        return kh * kw * _per_image(out)
    if name in ("adaptive_avg_pool2d", "adaptive_max_pool2d"):
        x = args[0]
        h_in, w_in = x.shape[-2:]
        h_out, w_out = out.shape[-2:]
        return math.ceil(h_in / h_out) * math.ceil(w_in / w_out) * _per_image(out)
    return 0


class MacCounter(TorchFunctionMode):
    def __init__(self) -> None:
        super().__init__()
        self.macs = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        self.macs += op_macs(getattr(func, "__name__", ""), args, kwargs, out)
        return out


@torch.no_grad()
def count_costs(model: MultiExitModel, input_size: tuple[int, ...] | None = None, *,
                lazy: bool = False) -> list[ExitCost]:
    """Cumulative MACs and parameters at every exit, running the model exit by exit.

    ``lazy=True`` counts lazy evaluation (the paper, Sec. 4): work a later exit needs is charged to it.
    """
    size = tuple(input_size or model.input_size)
    was_training = model.training
    model.eval()
    touched: set[int] = set()
    modules: dict[int, nn.Module] = {}

    def pre_hook(module: nn.Module, _inputs: Any) -> None:
        touched.add(id(module))
        modules[id(module)] = module

    handles = [m.register_forward_pre_hook(pre_hook) for m in model.modules()]
    try:
        param = next(model.parameters(), None)
        x = torch.zeros(1, *size, device=param.device if param is not None else "cpu")
        costs = []
        with MacCounter() as counter:
            state = model.begin(x, lazy=lazy)
            for k in range(model.num_exits):
                model.advance(state)
                seen = {id(p): p for mid in touched for p in modules[mid].parameters(recurse=False)}
                costs.append(ExitCost(exit=k + 1, macs=int(counter.macs),
                                      params=int(sum(p.numel() for p in seen.values()))))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return costs
