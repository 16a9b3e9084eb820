"""The config of a training run, torch-free: the recipe (:class:`TrainConfig`), a run
(:class:`RunConfig`: model, data and recipe) and :func:`make_run_config`, which validates them.
The planner (``msdnet.planning``) resolves every run of a preset with it, so validating a preset
and computing run keys import no torch; the trainer is :mod:`msdnet.training.train`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from ..core.config import compact_dict, from_dict
from ..core.errors import ConfigError
from ..core.io import stable_hash
from ..data.config import DataConfig
from ..models.registry import parse

__all__ = ["EXECUTION_KEYS", "TrainConfig", "RunConfig", "make_run_config"]

# Keys that decide where and how fast a run goes, not what it computes: not part of the hash,
# so a run may resume on another device, in another precision or with another process count.
# precision changes the rounding of every step (as the device does); the checkpoint records
# the policy it was trained with, and a resume under a different one says so.
EXECUTION_KEYS = ("device", "num_workers", "progress", "eval_batch_size", "eval_every",
                  "precision", "channels_last", "compile", "compile_mode")


@dataclass(frozen=True)
class TrainConfig:
    """The optimisation recipe (docs/method.md §Training recipe). ``lr_milestones`` are fractions
    of ``epochs``.

    ``batch_size`` is the global batch (split across processes under torchrun).
    ``precision`` (auto, fp32, bf16, fp16), ``channels_last`` (null = auto), ``compile``
    (null = auto) and ``compile_mode`` (auto) choose the fast path; see :mod:`msdnet.training.precision`
    for what ``auto`` picks per device.
    ``warmup_epochs``: the learning rate rises linearly, step by step, from lr / steps to the
    scheduled lr over the first ``warmup_epochs`` epochs (0: none, the paper's recipe).
    ``sync_batchnorm``: under torchrun, BatchNorm statistics over the global batch (true) or
    per process, as the authors' DataParallel training had them per GPU (false).

    Keys in ``OMIT_AT_DEFAULT`` were added after runs had been keyed: left out of the hashed
    dict while they hold their default (:func:`msdnet.core.config.compact_dict`).
    """

    OMIT_AT_DEFAULT: ClassVar[tuple[str, ...]] = ("sync_batchnorm", "warmup_epochs")

    epochs: int = 300
    batch_size: int = 64
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 1e-4
    lr_milestones: list[float] = field(default_factory=lambda: [0.5, 0.75])
    lr_gamma: float = 0.1
    warmup_epochs: float = 0.0
    exit_weights: list[float] | None = None
    seed: int = 0
    eval_batch_size: int = 256
    num_workers: int = 4
    device: str = "auto"
    eval_every: int = 1
    progress: Literal["auto", "bar", "none"] = "auto"
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    channels_last: bool | None = None
    compile: bool | None = None
    compile_mode: Literal["auto", "default", "reduce-overhead", "max-autotune-no-cudagraphs",
                          "max-autotune"] = "auto"
    sync_batchnorm: bool = True

    def validate(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.eval_batch_size < 1:
            raise ValueError("epochs, batch_size and eval_batch_size must be >= 1")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if any(not 0 < m <= 1 for m in self.lr_milestones):
            raise ValueError(f"lr_milestones are fractions of the epochs in (0, 1], got {self.lr_milestones}")
        if not 0 <= self.warmup_epochs <= self.epochs:
            raise ValueError(f"warmup_epochs must be in [0, epochs], got {self.warmup_epochs}")
        if self.eval_every < 0:
            raise ValueError("eval_every must be >= 0 (0: never)")


@dataclass(frozen=True)
class RunConfig:
    """Everything a training run depends on: the model, the data and the recipe."""

    model: dict[str, Any]
    data: DataConfig
    train: TrainConfig

    def to_dict(self) -> dict[str, Any]:
        return {"model": dict(self.model), "data": compact_dict(self.data), "train": compact_dict(self.train)}

    @property
    def hash(self) -> str:
        """Hash of what determines the weights (not where data lives or how the steps run)."""
        d = self.to_dict()
        d["data"] = {k: v for k, v in d["data"].items() if k not in ("root", "imagenet_dir")}
        d["train"] = {k: v for k, v in d["train"].items() if k not in EXECUTION_KEYS}
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
    for section in ("data", "train"):
        if recipe.get(section) is not None and not isinstance(recipe[section], dict):
            raise ConfigError(f"{recipe_source}: section '{section}' must be a mapping of keys to values, "
                              f"got {type(recipe[section]).__name__}; write it as {section}: {{key: value}}")
    data = from_dict(DataConfig, recipe["data"] or {}, f"{recipe_source} [data]")
    train_cfg = from_dict(TrainConfig, recipe.get("train") or {}, f"{recipe_source} [train]")
    return RunConfig(model=dict(model), data=data, train=train_cfg)
