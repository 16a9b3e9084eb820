"""The trainer: the paper's recipe for any MultiExitModel, with exact resume, fast and multi-GPU.

A run directory holds ``checkpoint.pt`` (model, optimizer, scheduler and RNG states, the full
config and the metrics so far; written atomically after every epoch; the resume state),
``metrics.csv`` (one row per epoch, no wall-clock, so identical runs write identical bytes),
``timing.csv`` (seconds per epoch), ``config.yaml`` (the resolved config) and ``.lock`` (held
with ``flock`` by the process training there: a second one fails at once). Re-running the
same command resumes from the last checkpoint. ``train(..., final=FILE)`` also writes the final
artifact (:func:`final_artifact`: weights, config, epochs and metrics only; byte-identical for
identical runs). Checkpoints are read with ``torch.load(weights_only=True)`` only, so every RNG
state is stored as tensors and plain Python data. Every epoch's randomness (shuffling, augmentation, stochastic depth)
is seeded from ``(seed, epoch)``, so a run that was killed and resumed ends with the same
weights as one that never stopped (on CPU; cuDNN may be non-deterministic on a GPU).

Speed: array data (digits, CIFAR, synthetic) lives on the device as uint8 and is batched by
index slices (:func:`msdnet.data.iterate_batches`); precision, channels_last and compilation
come from :mod:`msdnet.training.precision`; the training loop itself reads nothing back from the
device until the epoch ends. Under ``torchrun`` the same code runs DistributedDataParallel with the global
batch split across the ranks (:mod:`msdnet.training.distributed`).
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
import random
import signal
import time
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from tqdm import tqdm

from . import distributed as ddp
from ..core import kernels
from ..data import load_data
from .. import __version__
from ..core.errors import ConfigError, MsdnetError
from ..core.io import (atomic_path, code_version, exclusive_lock, remove_stale_temps, write_bytes_atomic,
                       write_text_atomic)
from ..models import MultiExitModel, build
from .checkpoint import FINAL_FORMAT, check_model_fits_data, load_checkpoint, load_weights
from .config import EXECUTION_KEYS, RunConfig, TrainConfig, make_run_config  # noqa: F401  (re-exported)
from .gpu_slots import claimed_device, resolve_device  # noqa: F401  (resolve_device: re-exported)
from .precision import Policy, decide, grad_scaler, maybe_compile, prepare_model

__all__ = ["TrainConfig", "RunConfig", "Objective", "train", "train_step", "evaluate", "lr_at", "resolve_device",
           "make_optimizer", "maybe_sync_batchnorm",
           "load_checkpoint", "load_weights", "final_artifact", "write_final", "check_model_fits_data"]

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.csv"        # one row per epoch, no wall-clock: identical runs give identical bytes
TIMING = "timing.csv"          # epoch, seconds (wall-clock; differs from run to run)
LOCK = ".lock"                 # flock'ed by the process training in the run directory
# Columns of a metrics row that measure the machine, not the run: kept in checkpoint.pt and
# timing.csv, never in metrics.csv or the final artifact.
WALL_CLOCK_COLUMNS = ("seconds",)
def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.SGD:
    """SGD over every parameter with the recipe's momentum, Nesterov switch and weight decay."""
    return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                           nesterov=cfg.nesterov, weight_decay=cfg.weight_decay)


def maybe_sync_batchnorm(model: torch.nn.Module, ctx: ddp.Context, device: torch.device,
                         cfg: TrainConfig) -> bool:
    """Under torchrun with ``train.sync_batchnorm``, BatchNorm over the global batch (in place);
    returns whether it did."""
    if ctx.enabled and cfg.sync_batchnorm:
        ddp.sync_batchnorm(model, device)
        return True
    return False


def lr_milestones(cfg: TrainConfig) -> list[int]:
    """The epochs (0-based) at which the learning rate drops: ``round(fraction * epochs)`` of each
    of ``lr_milestones``, never before the end of the first epoch (with ``epochs: 1`` the
    fraction 0.5 rounds to 0, which would train at lr * lr_gamma from the start)."""
    return [max(1, round(m * cfg.epochs)) for m in cfg.lr_milestones]


def lr_at(epoch: int, cfg: TrainConfig) -> float:
    """Learning rate of 0-based ``epoch``: divided by 1/lr_gamma at each milestone passed."""
    drops = sum(epoch >= m for m in lr_milestones(cfg))
    return cfg.lr * cfg.lr_gamma ** drops


def warmup_lr(epoch: int, step: int, steps_per_epoch: int, cfg: TrainConfig) -> float | None:
    """The learning rate of 0-based ``step`` of ``epoch`` during the linear warm-up
    (``train.warmup_epochs``): the scheduled lr times (steps done, this one included) / (warm-up
    steps); None once the warm-up is over (the schedule's lr then holds). The last warm-up step
    gets the scheduled lr exactly, so the schedule goes on from it."""
    total = math.ceil(cfg.warmup_epochs * steps_per_epoch)
    done = epoch * steps_per_epoch + step + 1
    if total <= 0 or done > total:
        return None
    return lr_at(epoch, cfg) * done / total


def _epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch * 7_919 + 17) % (2**31)


def _rng_state() -> dict[str, Any]:
    """Every RNG state as tensors and plain Python values, so ``torch.load(weights_only=True)``
    reads it back (numpy's state tuple becomes a dict holding its key array as an int64 tensor)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                       "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    """Restore :func:`_rng_state`. The states are CPU byte tensors whatever ``map_location`` the
    checkpoint was loaded with; CUDA states are restored for the devices this machine has."""
    torch.set_rng_state(state["torch"].cpu())
    npy = state["numpy"]
    np.random.set_state((npy["kind"], npy["keys"].cpu().numpy().astype(np.uint32), npy["pos"],
                         npy["has_gauss"], npy["cached_gaussian"]))
    random.setstate(_as_tuples(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        for i, s in enumerate(state["cuda"][:torch.cuda.device_count()]):
            torch.cuda.set_rng_state(s.cpu(), i)


def _as_tuples(value: Any) -> Any:
    """random.setstate wants tuples; a state that went through a list-making codec is put back."""
    return tuple(_as_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


def final_artifact(ckpt: dict[str, Any]) -> dict[str, Any]:
    """The final artifact of a finished run: what the weights are and how they were made, and
    nothing that differs between two identical runs (no optimizer, RNG, timestamps, wall-clock or
    git commit). Keys: format, msdnet_version, model (state_dict on the CPU), config,
    config_hash, epoch, epochs, num_exits, finished, metrics (rows without wall-clock columns),
    cpu_kernels (:func:`msdnet.core.kernels.record`; runs trained here)."""
    art = {
        "format": FINAL_FORMAT,
        "msdnet_version": __version__,
        "model": {k: v.detach().cpu().contiguous() for k, v in ckpt["model"].items()},
        "config": ckpt["config"],
        "config_hash": ckpt["config_hash"],
        "epoch": int(ckpt["epoch"]),
        "epochs": int(ckpt["config"]["train"]["epochs"]),
        "num_exits": int(ckpt["num_exits"]),
        "finished": bool(ckpt["finished"]),
        "metrics": [_deterministic_row(r) for r in ckpt["metrics"]],
    }
    if ckpt.get("cpu_kernels") is not None:          # what decided the CPU numerics (trained here)
        art["cpu_kernels"] = ckpt["cpu_kernels"]
    return art


def write_final(path: str | Path, ckpt: dict[str, Any]) -> None:
    """Write :func:`final_artifact` byte-deterministically and atomically.

    ``torch.save`` to a file name names the archive's inner folder after the file, so the bytes
    would depend on the (temporary) name; saving to a buffer names it ``archive`` always.
    """
    buf = io.BytesIO()
    torch.save(final_artifact(ckpt), buf)
    write_bytes_atomic(path, buf.getvalue())


def _deterministic_row(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in WALL_CLOCK_COLUMNS}


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    cols = list(rows[0])
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path, buf.getvalue())


def _write_metrics(out: Path, rows: list[dict[str, Any]]) -> None:
    """``metrics.csv`` (deterministic) and ``timing.csv`` (epoch, seconds) from the rows."""
    _write_csv(out / METRICS, [_deterministic_row(r) for r in rows])
    _write_csv(out / TIMING, [{"epoch": r["epoch"], "seconds": r["seconds"]} for r in rows if "seconds" in r])


def objective(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor,
              scale: float, policy: Policy) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The training loss ``sum_k weights[k] * sum_i CE_k(i) * scale`` of one batch, with the
    per-exit summed losses and correct counts (detached). Logits are cast to float32 first."""
    with policy.autocast_context():
        outs = net(policy.input(x))
    ce = torch.stack([F.cross_entropy(o.float(), y, reduction="sum") for o in outs])
    loss = (ce * weights).sum() * scale
    correct = torch.stack([(o.detach().argmax(1) == y).sum() for o in outs])
    return loss, ce.detach(), correct


class Objective(torch.nn.Module):
    """:func:`objective` as a module, the unit the fast path compiles (forward, losses and hit
    counts in one graph, so AOTAutograd compiles the matching backward)."""

    def __init__(self, net: torch.nn.Module, policy: Policy) -> None:
        super().__init__()
        self.net, self.policy = net, policy

    def forward(self, x, y, weights, scale: float):
        return objective(self.net, x, y, weights, scale, self.policy)


def train_step(net: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
               weights: torch.Tensor, policy: Policy, scaler: torch.amp.GradScaler | None = None,
               grad_scale: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One SGD step on ``(x, y)``; returns per-exit summed losses and correct counts (on device).

    ``net`` is a model or an :class:`Objective` (compiled or not). The loss is
    ``sum_k weights[k] * sum_i CE_k(i) * grad_scale`` with ``grad_scale`` = 1/batch by default
    (the mean); under DDP the trainer passes ``world_size / global batch``. Nothing is read back
    to the host, so the GPU never waits for Python.
    """
    scale = 1.0 / max(len(y), 1) if grad_scale is None else grad_scale
    if isinstance(getattr(net, "_orig_mod", net), Objective):
        if policy.cuda_graphs:
            torch.compiler.cudagraph_mark_step_begin()
        loss, ce, correct = net(x, y, weights, scale)
    else:
        loss, ce, correct = objective(net, x, y, weights, scale, policy)
    opt.zero_grad(set_to_none=True)
    if scaler is not None and scaler.is_enabled():
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    else:
        loss.backward()
        opt.step()
    return ce, correct


@torch.no_grad()
def evaluate(model: MultiExitModel, batches: Iterable, policy: Policy | None = None,
             ctx: ddp.Context = ddp.Context()) -> list[float]:
    """Top-1 % of every exit over ``(x, y, ...)`` batches (this rank's; counts summed over ranks)."""
    model.eval()
    policy = policy or Policy(device_type="cpu")
    counts = torch.zeros(model.num_exits + 1, dtype=torch.float64,
                         device=next(model.parameters()).device)   # hits per exit, images
    for x, y, *_ in batches:
        with policy.autocast_context():
            outs = model(policy.input(x))
        counts[:-1] += torch.stack([(o.argmax(1) == y).sum() for o in outs])
        counts[-1] += y.numel()
    counts = ddp.all_reduce_sum(counts, ctx).cpu()
    return (100.0 * counts[:-1] / max(float(counts[-1]), 1.0)).tolist()


def _tqdm_disable(mode: str) -> bool | None:
    return {"auto": None, "bar": False, "none": True}[mode]   # tqdm's `disable`


def train(run: RunConfig, out_dir: str | Path, *, log=print, final: str | Path | None = None,
          model_source: str = "model config", recipe_source: str = "recipe") -> dict[str, Any]:
    """Train (or resume) a run in ``out_dir``; returns the final checkpoint dict.

    The run directory is locked (``flock`` on ``out_dir/.lock``) for the whole run: a second
    process training into it fails at once. ``final``: when training has finished, also write
    the byte-deterministic final artifact (:func:`write_final`) there. ``model_source`` and
    ``recipe_source`` name the files in error messages.

    Under torchrun (``WORLD_SIZE`` > 1) every process calls this; rank 0 alone writes files
    and logs, and every rank returns the same checkpoint dict.
    """
    # several cards: this job's own (least-loaded) one (msdnet.training.gpu_slots)
    with claimed_device(run.train.device, ddp.launched(), log) as device:
        ctx, device = ddp.setup(device)
        try:
            return _train(run, Path(out_dir), ctx, device, log if ctx.is_main else (lambda *_: None),
                          None if final is None else Path(final), model_source, recipe_source)
        finally:
            ddp.teardown(ctx)


def _train(run: RunConfig, out: Path, ctx: ddp.Context, device: torch.device, log, final: Path | None,
           model_source: str, recipe_source: str) -> dict[str, Any]:
    cfg = run.train
    torch.manual_seed(cfg.seed)                    # the initial weights depend on the seed only
    model = build(run.model, model_source).to(device)
    if not ctx.is_main:
        ddp.barrier(ctx)                           # rank 0 downloads / writes the split file first
    bundle = load_data(run.data)
    if ctx.is_main:
        ddp.barrier(ctx)
    check_model_fits_data(model, run.model, bundle, model_source, recipe_source)
    if len(cfg.exit_weights or [0] * model.num_exits) != model.num_exits:
        raise ConfigError(f"{recipe_source}: train.exit_weights has {len(cfg.exit_weights)} entries but "
                          f"the model has {model.num_exits} exits; give one weight per exit")
    with contextlib.ExitStack() as stack:
        if ctx.is_main:
            out.mkdir(parents=True, exist_ok=True)
            stack.enter_context(exclusive_lock(
                out / LOCK, f"{out} is being trained by another process (lock {out / LOCK}); wait for "
                            "it or use another --out"))
            for stale in remove_stale_temps(out):
                log(f"removed {stale}, left by an interrupted write")
        ckpt = _train_locked(run, out, ctx, device, log, model, bundle)
        if final is not None and ctx.is_main:
            if not ckpt.get("finished"):
                raise MsdnetError(f"{out}: training did not finish; re-run to resume")
            write_final(final, ckpt)
        return ckpt


def _train_locked(run: RunConfig, out: Path, ctx: ddp.Context, device: torch.device, log,
                  model: MultiExitModel, bundle) -> dict[str, Any]:
    cfg = run.train
    ckpt_path = out / CHECKPOINT
    weights = torch.tensor(cfg.exit_weights or [1.0] * model.num_exits, device=device)
    policy = decide(device, cfg, distributed=ctx.enabled, static_graph=model.static_graph)
    maybe_sync_batchnorm(model, ctx, device, cfg)
    prepare_model(model, policy)
    opt = make_optimizer(model, cfg)
    milestones = sorted(set(lr_milestones(cfg)))
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=milestones, gamma=cfg.lr_gamma)
    scaler = grad_scaler(policy)
    rows: list[dict[str, Any]] = []
    start = 0

    if ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path, map_location=device)
        if ckpt.get("config_hash") != run.hash:
            raise MsdnetError(f"{ckpt_path} was written for a different config (hash "
                              f"{ckpt.get('config_hash')} != {run.hash}); use another --out or delete it")
        load_weights(model, ckpt["model"], ckpt_path)
        try:
            opt.load_state_dict(ckpt["optimizer"])
            sched.load_state_dict(ckpt["scheduler"])
            if ckpt.get("scaler"):
                scaler.load_state_dict(ckpt["scaler"])
            _set_rng_state(ckpt["rng"])
            rows = list(ckpt["metrics"])
            start = int(ckpt["epoch"])
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as exc:
            raise MsdnetError(f"{ckpt_path}: not a resumable checkpoint ({type(exc).__name__}: {exc}"[:300]
                              + "); delete it and re-run `msdnet train`") from None
        if start >= cfg.epochs:
            log(f"{ckpt_path}: already trained for {start} epochs; nothing to do")
            return ckpt
        log(f"resuming {ckpt_path} after epoch {start}")
        if ckpt.get("policy", policy.describe()) != policy.describe():
            log(f"note: epochs 1-{start} ran with {ckpt['policy']}, the rest runs with {policy.describe()}")
    elif ctx.is_main:
        write_text_atomic(out / "config.yaml", yaml.safe_dump(
            {**run.to_dict(), "config_hash": run.hash}, sort_keys=False))
    wrapped = ddp.wrap(model, ctx, device)                # trains; `model` saves and evaluates
    steps = {"eager": wrapped, "full": maybe_compile(Objective(wrapped, policy), policy)}
    log(f"training on {device} ({ctx.world_size} process{'es' if ctx.enabled else ''}): "
        + ", ".join(f"{k} {v}" for k, v in policy.describe().items()))

    kill_at = int(os.environ.get("MSDNET_FAULT_KILL_AFTER_EPOCH") or 0)   # fault injection (tests)
    ckpt: dict[str, Any] = {}
    for epoch in range(start, cfg.epochs):
        t0 = time.perf_counter()
        row = _train_epoch(steps, model, opt, scaler, bundle, weights, policy, ctx, device, cfg, epoch)
        sched.step()
        do_eval = bundle.val is not None and cfg.eval_every and (
            (epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs)
        val_acc = evaluate(model, ddp.rank_batches(
            bundle, "val", cfg.eval_batch_size, ctx, device=device, num_workers=cfg.num_workers,
            memory_format=policy.memory_format), policy, ctx) if do_eval else []
        for k in range(model.num_exits):
            row[f"val_acc_exit{k + 1}"] = round(val_acc[k], 4) if val_acc else ""
        row["seconds"] = round(time.perf_counter() - t0, 3)
        rows.append(row)

        ckpt = {
            "model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
            "scaler": scaler.state_dict(), "rng": _rng_state(), "epoch": epoch + 1, "metrics": rows,
            "config": run.to_dict(), "config_hash": run.hash, "code_version": code_version(),
            "num_exits": model.num_exits, "policy": policy.describe(), "world_size": ctx.world_size,
            "finished": epoch + 1 == cfg.epochs, "cpu_kernels": kernels.record(),
        }
        if ctx.is_main:
            with atomic_path(ckpt_path) as tmp:
                torch.save(ckpt, tmp)
            _write_metrics(out, rows)
        ddp.barrier(ctx)                          # the checkpoint exists before any rank goes on
        k_range = range(1, model.num_exits + 1)
        accs = " ".join(f"{a:.1f}" for a in (val_acc or [row[f"train_acc_exit{k}"] for k in k_range]))
        log(f"epoch {epoch + 1}/{cfg.epochs}  lr {row['lr']:.4g}  "
            f"loss {sum(row[f'train_loss_exit{k}'] for k in k_range):.3f}  "
            f"{'val' if val_acc else 'train'} top-1 % per exit: {accs}  ({row['seconds']:.1f}s)")
        if kill_at and epoch + 1 == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
    return ckpt


def _train_epoch(steps: dict, model: MultiExitModel, opt, scaler, bundle, weights: torch.Tensor,
                 policy: Policy, ctx: ddp.Context, device: torch.device, cfg: TrainConfig,
                 epoch: int) -> dict[str, Any]:
    """One epoch; returns the metrics row (epoch, lr, per-exit loss and accuracy over all ranks).

    ``steps["full"]`` (compiled when the policy says so) runs the full batches, so a compiled
    step sees one shape; a short last batch runs ``steps["eager"]``.
    """
    seed = _epoch_seed(cfg.seed, epoch)
    torch.manual_seed(seed)                   # model-side randomness (stochastic depth, ...)
    gen = torch.Generator().manual_seed(seed)  # shuffling and augmentation
    model.train()
    k = model.num_exits
    loss_sum = torch.zeros(k, dtype=torch.float64, device=device)
    correct = torch.zeros(k, dtype=torch.long, device=device)
    seen = 0
    batches = ddp.rank_batches(bundle, "train", cfg.batch_size, ctx, shuffle=True, augment=True,
                               generator=gen, device=device, num_workers=cfg.num_workers,
                               memory_format=policy.memory_format)
    steps_per_epoch = -(-len(bundle.train) // cfg.batch_size)
    bar = tqdm(batches, total=steps_per_epoch, leave=False,
               desc=f"epoch {epoch + 1}/{cfg.epochs}",
               disable=_tqdm_disable(cfg.progress) if ctx.is_main else True)
    for step, (x, y, _, n_global) in enumerate(bar):
        lr = warmup_lr(epoch, step, steps_per_epoch, cfg)
        if lr is not None:
            for group in opt.param_groups:
                group["lr"] = lr
        net = steps["full"] if n_global == cfg.batch_size else steps["eager"]
        ce, hits = train_step(net, opt, x, y, weights, policy, scaler,
                              grad_scale=ctx.world_size / n_global)
        loss_sum += ce
        correct += hits
        seen += len(y)
        if not bar.disable and step % 25 == 0:      # reading the loss waits for the GPU
            bar.set_postfix(loss=f"{float((ce * weights).sum()) / max(len(y), 1):.3f}")
    totals = ddp.all_reduce_sum(torch.cat([loss_sum, correct.double(),
                                           loss_sum.new_tensor([seen])]), ctx).cpu()
    n = max(float(totals[-1]), 1.0)
    row: dict[str, Any] = {"epoch": epoch + 1, "lr": opt.param_groups[0]["lr"]}
    for i in range(k):
        row[f"train_loss_exit{i + 1}"] = round(float(totals[i]) / n, 6)
    for i in range(k):
        row[f"train_acc_exit{i + 1}"] = round(100.0 * float(totals[k + i]) / n, 4)
    return row
