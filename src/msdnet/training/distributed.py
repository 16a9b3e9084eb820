"""Multi-GPU (and multi-process CPU) training under ``torchrun``: the trainer's DDP helpers.

``torchrun --nproc_per_node N -m msdnet.cli train ...`` (or the ``msdnet`` script) starts N
copies of the trainer; :func:`setup` sees torchrun's ``RANK`` / ``WORLD_SIZE`` /
``LOCAL_RANK`` and joins the process group (NCCL on CUDA, gloo on CPU). The choices, all
made so that N processes compute what one process computes (up to float rounding):

* Global batch. ``train.batch_size`` is the *global* batch, split across the ranks (sizes
  differ by at most one; a rank may get no image of a short last batch). The learning rate
  and schedule therefore need no change when N changes, and a run may resume with another N.
* Sampling. Array data (digits, CIFAR, synthetic): every rank draws the same seeded per-epoch
  permutation and augmentation as one process would (:func:`msdnet.data.iterate_batches`
  with the global batch) and keeps its slice of each batch; augmenting the whole global
  batch on every rank is redundant but cheap next to the network, and it is what makes the
  crops and flips identical to one process. Dataset splits (ImageNet) are not read in full
  on every rank: a per-rank sampler takes each rank's slice of the same seeded permutation,
  so only its own images are decoded (their augmentation comes from the DataLoader workers'
  seeds and is not identical to one process).
* Loss. Rank r's loss is ``sum of its per-image losses * N / global batch``; DDP averages the
  gradients over the N ranks, which gives the gradient of the global-batch mean loss, even for
  unequal slices.
* BatchNorm. Training-mode statistics are taken over the global batch: ``nn.SyncBatchNorm``
  on CUDA; on CPU, where torch's SyncBatchNorm refuses to run, :class:`AllReduceBatchNorm2d`
  (a differentiable all-reduce of the per-channel sums). Synchronising costs a collective
  per BatchNorm layer; it keeps the math of one process (the paper's CIFAR batch of 64 is
  small enough that per-GPU statistics would change the regularisation).
* Model-side randomness (stochastic depth, drop-path) is seeded identically on every rank,
  so per-batch decisions match one process; per-image draws (dropout) do not.
* Checkpoints, metrics, config and logs are written by rank 0 only; every rank loads the
  checkpoint on resume. Evaluation is sharded and the counts are summed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from ..data import DataBundle, iterate_batches
from ..data.arrays import ArraySplit
from ..data.bundle import WithIds
from ..core.errors import ConfigError

__all__ = ["Context", "setup", "teardown", "shard_bounds", "rank_batches", "sync_batchnorm",
           "wrap", "all_reduce_sum", "barrier", "AllReduceBatchNorm2d"]


@dataclass(frozen=True)
class Context:
    """Where this process stands: its rank among ``world_size`` processes on the machine(s)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False       # this process initialised the process group

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    try:
        return default if value in (None, "") else int(value)
    except ValueError:
        raise ConfigError(f"environment variable {name}={value!r} is not an integer") from None


def launched() -> bool:
    """Whether torchrun started this process as one of several (``WORLD_SIZE`` > 1)."""
    return _env_int("WORLD_SIZE", 1) > 1


def setup(device: torch.device) -> tuple[Context, torch.device]:
    """Join torchrun's process group when ``WORLD_SIZE`` > 1; return the context and the device.

    Under DDP on CUDA each process uses ``cuda:LOCAL_RANK`` (an explicit device index in the
    recipe is refused); on CPU the gloo backend is used.
    """
    world = _env_int("WORLD_SIZE", 1)
    if world <= 1:
        return Context(), device
    rank, local = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    if device.type == "cuda":
        if device.index is not None:
            raise ConfigError(f"train.device {device} names one GPU, but torchrun starts {world} "
                              "processes; use device: auto or cuda")
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    owns = not dist.is_initialized()
    if owns:
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, rank=rank, world_size=world)
    return Context(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local,
                   owns_group=owns), device


def teardown(ctx: Context) -> None:
    if ctx.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def shard_bounds(n: int, rank: int, world: int) -> tuple[int, int]:
    """Rank ``rank``'s contiguous slice ``[lo, hi)`` of ``n`` items; sizes differ by <= 1."""
    base, extra = divmod(n, world)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (rank < extra)


Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]   # (x, y, ids, global batch size)


def rank_batches(bundle: DataBundle, split: str, batch_size: int, ctx: Context, *,
                 shuffle: bool = False, augment: bool = False,
                 generator: torch.Generator | None = None, device: torch.device,
                 num_workers: int = 0,
                 memory_format: torch.memory_format = torch.contiguous_format) -> Iterator[Batch]:
    """This rank's part of every global batch of one epoch, with the global batch's size.

    With one process this is :func:`iterate_batches` unchanged (plus the batch size).
    """
    data = bundle.split(split)
    if not ctx.enabled or isinstance(data, ArraySplit):
        batches = iterate_batches(bundle, split, batch_size, shuffle=shuffle, augment=augment,
                                  generator=generator, device=device, num_workers=num_workers,
                                  memory_format=memory_format)
        for x, y, ids in batches:
            lo, hi = shard_bounds(len(y), ctx.rank, ctx.world_size)
            yield x[lo:hi], y[lo:hi], ids[lo:hi], len(y)
        return
    if split == "train" and not augment:
        data = bundle.train_plain
    n = len(data)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    globals_ = [order[s:s + batch_size] for s in range(0, n, batch_size)]
    mine = [g[slice(*shard_bounds(len(g), ctx.rank, ctx.world_size))].tolist() for g in globals_]
    loader = iter(DataLoader(WithIds(data), batch_sampler=[m for m in mine if m],
                             num_workers=num_workers, pin_memory=device.type == "cuda"))
    empty_x = torch.empty((0, *bundle.input_size), device=device)
    empty_y = torch.empty(0, dtype=torch.int64, device=device)
    for g, m in zip(globals_, mine):
        if not m:
            yield empty_x, empty_y, torch.empty(0, dtype=torch.int64), len(g)
            continue
        x, y, ids = next(loader)
        x = x.to(device, non_blocking=True).contiguous(memory_format=memory_format)
        yield x, y.to(device, non_blocking=True), ids, len(g)


class _AllReduceSum(torch.autograd.Function):
    """Sum over the ranks, differentiably: every rank's output is the sum S = sum_r t_r, so the
    gradient for t_r is the sum over the ranks of their losses' gradients with respect to S."""

    @staticmethod
    def forward(ctx, t: torch.Tensor) -> torch.Tensor:
        t = t.clone()
        dist.all_reduce(t)
        return t

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class AllReduceBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics cover the batches of all ranks (any backend).

    Two differentiable all-reduces (the sums, then the squared deviations: the two-pass
    variance, as accurate as one process's) give every rank the global mean and biased
    variance; running statistics use the unbiased variance, as ``nn.BatchNorm2d`` does.
    Outside training, or without a process group, it is ``nn.BatchNorm2d``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        xf = x.float()
        c = x.shape[1]
        sums = torch.cat([xf.sum((0, 2, 3)), xf.new_tensor([xf.numel() // c])])
        sums = _AllReduceSum.apply(sums)
        count = sums[c]
        mean = sums[:c] / count
        centred = xf - mean.view(1, c, 1, 1)
        var = _AllReduceSum.apply((centred * centred).sum((0, 2, 3))) / count
        n = int(count.item())
        if n < 2:
            raise ValueError(f"BatchNorm needs more than one value per channel in training, got {n}")
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = (1.0 / float(self.num_batches_tracked)) if self.momentum is None else self.momentum
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * (n / (n - 1)), alpha=m)
        y = centred * torch.rsqrt(var + self.eps).view(1, c, 1, 1)
        if self.affine:
            y = y * self.weight.view(1, c, 1, 1) + self.bias.view(1, c, 1, 1)
        return y.to(x.dtype)


def sync_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """Give every BatchNorm2d global-batch statistics (see the module notes); returns the model.

    Call before the optimizer is built: on CUDA torch's converter makes new modules (sharing
    the parameters and buffers); on CPU the modules keep their identity.
    """
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    for m in model.modules():
        if type(m) is nn.BatchNorm2d:
            m.__class__ = AllReduceBatchNorm2d    # same state; only forward() differs
    return model


def wrap(model: nn.Module, ctx: Context, device: torch.device) -> nn.Module:
    """``DistributedDataParallel(model)`` under torchrun, else ``model``."""
    if not ctx.enabled:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def all_reduce_sum(t: torch.Tensor, ctx: Context) -> torch.Tensor:
    """Sum ``t`` over the ranks, in place (a no-op with one process)."""
    if ctx.enabled:
        dist.all_reduce(t)
    return t


def barrier(ctx: Context) -> None:
    if ctx.enabled:
        dist.barrier()
