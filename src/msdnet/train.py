"""The trainer: SPEC §5's recipe for any MultiExitModel, with exact resume.

A run directory holds ``checkpoint.pt`` (model, optimizer, scheduler and RNG states, the full
config and the metrics so far; written atomically after every epoch), ``metrics.csv`` (one row
per epoch) and ``config.yaml`` (the resolved config). Re-running the same command resumes
from the last checkpoint. Every epoch's randomness (shuffling, augmentation, stochastic depth)
is seeded from ``(seed, epoch)``, so a run that was killed and resumed ends with the same
weights as one that never stopped (on CPU; cuDNN may be non-deterministic on a GPU).
"""

from __future__ import annotations

import csv
import io
import os
import random
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from tqdm import tqdm

from .config import from_dict
from .data import DataConfig, iterate_batches, load_data
from .errors import ConfigError, MsdnetError
from .io import atomic_path, code_version, stable_hash, write_text_atomic
from .models import MultiExitModel, build, parse

__all__ = ["TrainConfig", "RunConfig", "train", "lr_at", "resolve_device", "load_checkpoint"]

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.csv"


@dataclass(frozen=True)
class TrainConfig:
    """The optimisation recipe (SPEC §5). ``lr_milestones`` are fractions of ``epochs``."""

    epochs: int = 300
    batch_size: int = 64
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 1e-4
    lr_milestones: list[float] = field(default_factory=lambda: [0.5, 0.75])
    lr_gamma: float = 0.1
    exit_weights: list[float] | None = None
    seed: int = 0
    eval_batch_size: int = 256
    num_workers: int = 4
    device: str = "auto"
    eval_every: int = 1
    progress: Literal["auto", "bar", "none"] = "auto"

    def validate(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.eval_batch_size < 1:
            raise ValueError("epochs, batch_size and eval_batch_size must be >= 1")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if any(not 0 < m <= 1 for m in self.lr_milestones):
            raise ValueError(f"lr_milestones are fractions of the epochs in (0, 1], got {self.lr_milestones}")
        if self.eval_every < 0:
            raise ValueError("eval_every must be >= 0 (0: never)")


@dataclass(frozen=True)
class RunConfig:
    """Everything a training run depends on: the model, the data and the recipe."""

    model: dict[str, Any]
    data: DataConfig
    train: TrainConfig

    def to_dict(self) -> dict[str, Any]:
        return {"model": dict(self.model), "data": asdict(self.data), "train": asdict(self.train)}

    @property
    def hash(self) -> str:
        """Hash of what determines the weights (not where data lives or which device runs it)."""
        d = self.to_dict()
        d["data"] = {k: v for k, v in d["data"].items() if k not in ("root", "imagenet_dir")}
        d["train"] = {k: v for k, v in d["train"].items()
                      if k not in ("device", "num_workers", "progress", "eval_batch_size", "eval_every")}
        return stable_hash(d)


def make_run_config(model: dict[str, Any], recipe: dict[str, Any], model_source: str = "<model>",
                    recipe_source: str = "<recipe>") -> RunConfig:
    """Validate a model config mapping and a recipe mapping (sections ``data`` and ``train``)."""
    parse(model, model_source)
    unknown = sorted(set(recipe) - {"data", "train"})
    if unknown:
        raise ConfigError(f"{recipe_source}: unknown key '{unknown[0]}' (allowed keys: data, train)")
    if "data" not in recipe:
        raise ConfigError(f"{recipe_source}: missing section 'data' (e.g. data: {{name: digits}})")
    data = from_dict(DataConfig, recipe["data"] or {}, f"{recipe_source} [data]")
    train_cfg = from_dict(TrainConfig, recipe.get("train") or {}, f"{recipe_source} [train]")
    return RunConfig(model=dict(model), data=data, train=train_cfg)


def lr_at(epoch: int, cfg: TrainConfig) -> float:
    """Learning rate of 0-based ``epoch``: divided by 1/lr_gamma at each milestone passed."""
    drops = sum(epoch >= round(m * cfg.epochs) for m in cfg.lr_milestones)
    return cfg.lr * cfg.lr_gamma ** drops


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise MsdnetError(f"device {name!r} was asked for but CUDA is not available; use device: auto or cpu")
    return torch.device(name)


def _epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch * 7_919 + 17) % (2**31)


def _rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise MsdnetError(f"{path}: no such checkpoint; run `msdnet train` first")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # torch raises many types for a truncated or foreign file
        raise MsdnetError(f"{path}: corrupt checkpoint ({type(exc).__name__}); delete it and re-run "
                          "`msdnet train`") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt or "config" not in ckpt:
        raise MsdnetError(f"{path}: not an msdnet checkpoint; delete it and re-run `msdnet train`")
    return ckpt


def _write_metrics(path: Path, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    cols = list(rows[0])
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=cols)
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path, buf.getvalue())


@torch.no_grad()
def evaluate(model: MultiExitModel, batches) -> list[float]:
    """Top-1 % of every exit over an iterable of (x, y, ids) batches."""
    model.eval()
    correct = torch.zeros(model.num_exits, dtype=torch.long)
    total = 0
    for x, y, _ in batches:
        for k, logits in enumerate(model(x)):
            correct[k] += (logits.argmax(1) == y).sum().cpu()
        total += y.numel()
    return (100.0 * correct.double() / max(total, 1)).tolist()


def _tqdm_disable(mode: str) -> bool | None:
    return {"auto": None, "bar": False, "none": True}[mode]   # tqdm's `disable`


def train(run: RunConfig, out_dir: str | Path, *, log=print) -> dict[str, Any]:
    """Train (or resume) a run in ``out_dir``; returns the final checkpoint dict."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg = run.train
    device = resolve_device(cfg.device)
    ckpt_path = out / CHECKPOINT

    torch.manual_seed(cfg.seed)                    # the initial weights depend on the seed only
    model = build(run.model, "model config").to(device)
    bundle = load_data(run.data)
    weights = cfg.exit_weights or [1.0] * model.num_exits
    if len(weights) != model.num_exits:
        raise ConfigError(f"train.exit_weights has {len(weights)} entries but the model has "
                          f"{model.num_exits} exits; give one weight per exit")
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                          nesterov=cfg.nesterov, weight_decay=cfg.weight_decay)
    milestones = sorted({round(m * cfg.epochs) for m in cfg.lr_milestones})
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=milestones, gamma=cfg.lr_gamma)
    rows: list[dict[str, Any]] = []
    start = 0

    if ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path, map_location=device)
        if ckpt.get("config_hash") != run.hash:
            raise MsdnetError(f"{ckpt_path} was written for a different config (hash "
                              f"{ckpt.get('config_hash')} != {run.hash}); use another --out or delete it")
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        _set_rng_state(ckpt["rng"])
        rows = list(ckpt["metrics"])
        start = int(ckpt["epoch"])
        if start >= cfg.epochs:
            log(f"{ckpt_path}: already trained for {start} epochs; nothing to do")
            return ckpt
        log(f"resuming {ckpt_path} after epoch {start}")
    else:
        write_text_atomic(out / "config.yaml", yaml.safe_dump(
            {**run.to_dict(), "config_hash": run.hash}, sort_keys=False))

    n_train = len(bundle.train)
    kill_at = int(os.environ.get("MSDNET_FAULT_KILL_AFTER_EPOCH") or 0)   # fault injection (tests)
    ckpt: dict[str, Any] = {}
    for epoch in range(start, cfg.epochs):
        seed = _epoch_seed(cfg.seed, epoch)
        torch.manual_seed(seed)                   # model-side randomness (stochastic depth, ...)
        gen = torch.Generator().manual_seed(seed)  # shuffling and augmentation
        model.train()
        t0 = time.perf_counter()
        loss_sum = torch.zeros(model.num_exits, dtype=torch.float64)
        correct = torch.zeros(model.num_exits, dtype=torch.long)
        seen = 0
        batches = iterate_batches(bundle, "train", cfg.batch_size, shuffle=True, augment=True,
                                  generator=gen, device=device, num_workers=cfg.num_workers)
        total_batches = -(-n_train // cfg.batch_size)
        bar = tqdm(batches, total=total_batches, desc=f"epoch {epoch + 1}/{cfg.epochs}",
                   leave=False, disable=_tqdm_disable(cfg.progress))
        for x, y, _ in bar:
            outs = model(x)
            losses = [F.cross_entropy(o, y) for o in outs]
            loss = sum(w * l for w, l in zip(weights, losses))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            b = y.numel()
            seen += b
            loss_sum += torch.tensor([l.item() * b for l in losses], dtype=torch.float64)
            for k, o in enumerate(outs):
                correct[k] += (o.detach().argmax(1) == y).sum().cpu()
            bar.set_postfix(loss=f"{loss.item():.3f}")
        lr = opt.param_groups[0]["lr"]
        sched.step()
        row: dict[str, Any] = {"epoch": epoch + 1, "lr": lr}
        for k in range(model.num_exits):
            row[f"train_loss_exit{k + 1}"] = round(float(loss_sum[k] / max(seen, 1)), 6)
        for k in range(model.num_exits):
            row[f"train_acc_exit{k + 1}"] = round(100.0 * float(correct[k]) / max(seen, 1), 4)
        do_eval = bundle.val is not None and cfg.eval_every and (
            (epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs)
        val_acc = evaluate(model, iterate_batches(bundle, "val", cfg.eval_batch_size, device=device,
                                                  num_workers=cfg.num_workers)) if do_eval else []
        for k in range(model.num_exits):
            row[f"val_acc_exit{k + 1}"] = round(val_acc[k], 4) if val_acc else ""
        row["seconds"] = round(time.perf_counter() - t0, 3)
        rows.append(row)

        ckpt = {
            "model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
            "rng": _rng_state(), "epoch": epoch + 1, "metrics": rows, "config": run.to_dict(),
            "config_hash": run.hash, "code_version": code_version(), "num_exits": model.num_exits,
            "finished": epoch + 1 == cfg.epochs,
        }
        with atomic_path(ckpt_path) as tmp:
            torch.save(ckpt, tmp)
        _write_metrics(out / METRICS, rows)
        accs = " ".join(f"{a:.1f}" for a in (val_acc or [row[f"train_acc_exit{k + 1}"] for k in range(model.num_exits)]))
        log(f"epoch {epoch + 1}/{cfg.epochs}  lr {lr:.4g}  loss {sum(row[f'train_loss_exit{k + 1}'] for k in range(model.num_exits)):.3f}"
            f"  {'val' if val_acc else 'train'} top-1 % per exit: {accs}  ({row['seconds']:.1f}s)")
        if kill_at and epoch + 1 == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
    return ckpt
