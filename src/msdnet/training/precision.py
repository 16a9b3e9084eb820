"""The one place that decides precision, memory format and compilation (STYLE habit 6).

:func:`decide` turns a device and the recipe's ``precision`` / ``channels_last`` / ``compile``
keys into a :class:`Policy`; the trainer and the benchmark only ever ask the policy. What
``auto`` means, per device (measured, see ``benchmarks/bench_train.py``):

========  ===========================  =============  ===================================
device    precision ``auto``           channels_last  ``compile`` / ``compile_mode`` auto
========  ===========================  =============  ===================================
CUDA      bf16 autocast if the GPU     yes            on, ``reduce-overhead`` (compiled
          has bf16 (sm80+), else                      step replayed as CUDA graphs); under
          float32 (fp16 when asked)                   torchrun, or for a model
                                                      with stochastic depth or
                                                      drop-path: off
CPU       float32                      yes            off (compiling costs minutes)
other     float32                      no             off
========  ===========================  =============  ===================================

CUDA measurement (``bench_train.py``, one H100 80GB HBM3, torch 2.11, batch 64, training
images/s): CIFAR-100 anytime MSDNet plain float32 eager 1,822; bf16 + channels_last eager
1,481 (0.81x: at batch 64 the step is launch-bound, and autocast adds cast kernels); the same
compiled and replayed as CUDA graphs 7,575 (4.16x; compiling took 84 s once per run).
ResNet-110 2,155 -> 5,862 (2.72x), DenseNet-BC-100 2,089 -> 6,805 (3.26x). So on one GPU
``auto`` compiles with CUDA graphs. Under DDP (several processes) ``auto`` does not compile:
CUDA graphs cannot hold DDP's gradient hooks, and compiled DDP was not measured here.

CPU measurements (2-core Xeon with AVX-512 bf16, one thread, training images/s at batch 64,
best of 5 interleaved steps): MSDNet-CIFAR-100 NCHW fp32 60, NHWC fp32 78, NHWC bf16 70;
ResNet-110 55 / 75 / 49; DenseNet-BC-100 17 / 23 / 25; with two threads MSDNet 81 / 85 / 73.
NHWC wins everywhere; bf16 autocast loses for two of the three, so the CPU stays in float32.
Evaluation gains more from NHWC (MSDNet-CIFAR-100 at batch 256: 213 -> 360 images/s).

Numerics. Weights, gradients, optimizer state and BatchNorm parameters and running statistics
always stay float32: autocast only runs convolutions and matmuls in the low-precision dtype.
BatchNorm is not in autocast's cast lists, so it receives the bf16 convolution output and
(PyTorch's CPU and CUDA kernels alike) accumulates the batch mean and variance in float32,
normalises with its float32 parameters and hands back bf16 -- the same "BatchNorm in float32"
as airbench, without a float32 copy of every activation. The losses are computed in float32
from the logits. fp16 needs loss scaling: :func:`grad_scaler` gives an enabled ``GradScaler``
for it only. ``channels_last`` and ``compile`` do not change the math (rounding aside;
``benchmarks/gpu_train_check.py`` compares the loss curves on a GPU).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, ContextManager, Literal, Protocol

import torch
from torch import nn

from ..core.errors import ConfigError

__all__ = ["Policy", "decide", "prepare_model", "maybe_compile", "grad_scaler"]

Precision = Literal["auto", "fp32", "bf16", "fp16"]
_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
_NAMES = {v: k for k, v in _DTYPES.items()}


CompileMode = Literal["default", "reduce-overhead", "max-autotune-no-cudagraphs", "max-autotune"]
CUDA_GRAPH_MODES = ("reduce-overhead", "max-autotune")


class _Knobs(Protocol):           # what decide() reads from a TrainConfig
    precision: Precision
    channels_last: bool | None
    compile: bool | None
    compile_mode: CompileMode | Literal["auto"]


@dataclass(frozen=True)
class Policy:
    """How a model runs on one device.

    Attributes:
        device_type: ``cuda``, ``cpu``, ...
        dtype: the autocast dtype; ``torch.float32`` means no autocast.
        channels_last: model and inputs in NHWC memory format.
        compile: compile the training step's forward and loss (and so its backward) with
            ``torch.compile``.
        compile_mode: ``torch.compile``'s mode; ``reduce-overhead`` also replays the step as
            CUDA graphs (CUDA, one process only).
        cudnn_benchmark: let cuDNN pick the fastest convolution algorithms (CUDA only).
    """

    device_type: str
    dtype: torch.dtype = torch.float32
    channels_last: bool = False
    compile: bool = False
    compile_mode: CompileMode = "default"
    cudnn_benchmark: bool = False

    @property
    def autocast(self) -> bool:
        return self.dtype != torch.float32

    def autocast_context(self) -> ContextManager:
        """``torch.autocast`` for this policy (a no-op context in float32)."""
        if not self.autocast:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    @property
    def cuda_graphs(self) -> bool:
        """Whether the compiled step replays as CUDA graphs."""
        return self.compile and self.compile_mode in CUDA_GRAPH_MODES

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def input(self, x: torch.Tensor) -> torch.Tensor:
        """A batch in the memory format the model expects."""
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def describe(self) -> dict[str, Any]:
        """Plain values for checkpoints, logs and benchmark tables."""
        out = {"precision": _NAMES[self.dtype], "channels_last": self.channels_last,
               "compile": self.compile}
        if self.compile:
            out["compile_mode"] = self.compile_mode
        return out


def decide(device: torch.device | str, cfg: _Knobs, distributed: bool = False,
           static_graph: bool = True) -> Policy:
    """The policy for ``device`` given the recipe's requests (see the module table for ``auto``).

    ``static_graph=False`` (a model that draws per batch which ops run, such as stochastic
    depth or drop-path: ``MultiExitModel.static_graph``) turns ``compile: auto`` off: every
    draw would break the compiled graph.

    CUDA-graph compile modes need a CUDA device and one process (DDP's gradient hooks run
    outside the graph); elsewhere they are a ConfigError naming the key.
    """
    device = torch.device(device)
    cuda = device.type == "cuda"
    bf16_ok = cuda and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if cfg.precision == "auto":
        dtype = torch.bfloat16 if bf16_ok else torch.float32
    else:
        dtype = _DTYPES[cfg.precision]
        if dtype == torch.float16 and not cuda:
            raise ConfigError(f"train.precision: fp16 needs a CUDA device (got {device}); "
                              "use bf16 or fp32")
        if dtype == torch.bfloat16 and cuda and not bf16_ok:
            raise ConfigError("train.precision: this GPU has no bf16 support; use fp16 or fp32")
    auto_layout = device.type in ("cuda", "cpu")
    channels_last = auto_layout if cfg.channels_last is None else cfg.channels_last
    graphs_ok = cuda and not distributed
    compile_ = (graphs_ok and static_graph) if cfg.compile is None else cfg.compile
    mode = cfg.compile_mode
    if mode == "auto":
        mode = "reduce-overhead" if graphs_ok else "default"
    if compile_ and mode in CUDA_GRAPH_MODES and not graphs_ok:
        where = "more than one process" if cuda else f"device {device}"
        raise ConfigError(f"train.compile_mode: {mode!r} replays CUDA graphs, which need one CUDA "
                          f"process (got {where}); use compile_mode: default")
    return Policy(device_type=device.type, dtype=dtype, channels_last=channels_last,
                  compile=compile_, compile_mode=mode, cudnn_benchmark=cuda)


def prepare_model(model: nn.Module, policy: Policy) -> nn.Module:
    """Put ``model`` (already on its device) in the policy's memory format, in place.

    Parameters stay float32 (autocast casts per op), so BatchNorm keeps float32 parameters
    and running statistics. Also applies the process-wide cuDNN setting.
    """
    if policy.cudnn_benchmark:
        torch.backends.cudnn.benchmark = True
    if policy.channels_last:
        model.to(memory_format=torch.channels_last)
    return model


def maybe_compile(module: nn.Module, policy: Policy) -> nn.Module:
    """``torch.compile(module, mode=policy.compile_mode)`` when the policy asks for it, else ``module``.

    The trainer compiles its step objective (:class:`msdnet.training.train.Objective`: forward, losses
    and hit counts, so the backward is compiled too) for full batches only, so shapes never
    change and it compiles once; a short last batch runs eager. Checkpoints are written from
    the uncompiled model (its state-dict keys lack the ``_orig_mod.`` prefix).
    """
    return torch.compile(module, mode=policy.compile_mode) if policy.compile else module


def grad_scaler(policy: Policy) -> torch.amp.GradScaler:
    """A loss scaler, enabled only for fp16 (bf16 has float32's exponent range)."""
    return torch.amp.GradScaler(policy.device_type, enabled=policy.dtype == torch.float16)
