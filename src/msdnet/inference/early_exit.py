"""Real early-exit inference: run a trained multi-exit network with budgeted-batch thresholds.

Budgeted batch classification (docs/method.md) done for real instead of simulated on
recorded logits. For every batch::

    state = model.begin(x, lazy=lazy)
    for k = 1..K:
        logits = model.advance(state)                  # only the images still in the batch
        conf   = confidence of logits (float64)        # the analysis's function, bit for bit
        leave  = conf >= theta_k   (k < K);  everyone (k = K)
        record exit k, argmax(logits), conf for the images that leave
        state  = state.select(images that stay)        # nothing is recomputed

Thresholds. ``theta`` has one value per exit except the last (K - 1 values): the last exit takes
every image left. For convenience the functions also take K values whose last one is -inf
(what :func:`msdnet.evaluation.analysis.budgeted.find_thresholds` returns); any other count, a finite
last value or a NaN is an :class:`InferenceError`. theta_k = +inf: nobody leaves at exit k;
theta_k = -inf: everybody left leaves there.

Confidences and predictions are computed exactly as the analysis does on a predictions file
(both use ``msdnet.inference.scores``): the logits are taken as float32 on the host, the
confidence is computed in float64 by the same function, the prediction is the first argmax. So on the same logits the
confidences agree bit for bit and an image takes the same exit. The logits themselves are not
always bit-identical to a full-batch forward: after ``state.select`` (and, with lazy evaluation,
for the finer-scale nodes computed at a later exit) the kernels run on a smaller batch and may
round differently in the last bits (about 1e-7 relative in float32). An image whose confidence
lies within about 1e-6 of a threshold can therefore exit one step earlier or later than the
simulation on recorded logits says; every other image takes the same exit with the same
prediction (``tests/test_inference.py`` checks this image by image).

Costs (MACs = multiply-adds; docs/method.md §Cost convention). ``exit_macs`` are the
cumulative per-exit costs C_k of :func:`msdnet.models.cost.count_costs` under the same evaluation mode
(lazy or not). The expected cost of a run is sum_k n_k * C_k (n_k images leaving at exit k).
The measured cost is counted for real: a ``TorchFunctionMode`` intercepts every op executed
during the run and adds ``op_macs`` (per image) x the op's batch size. The two agree exactly
for MultiExitModels whose work per image does not depend on the other images in the batch (all
of this project's).

Timing. Wall-clock is ``time.perf_counter`` around the model work of each batch (the batch is
on the device first; on CUDA ``torch.cuda.synchronize`` before and after), summed over batches:
it includes the host-side confidence computation and the batch selection, not the data loading.
With ``count_macs=True`` the counting mode's Python overhead is inside the timed region; time
with ``count_macs=False`` (as ``msdnet infer`` and the benchmark do) for clean numbers.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np
import pandas as pd
import torch

from .scores import check_measure, confidence_rows, json_list, json_number
from ..models.cost import MacCounter, count_costs, op_macs
from ..core.errors import MsdnetError
from ..models.base import MultiExitModel

__all__ = ["EarlyExitResult", "FullEvaluation", "InferenceError", "MeasuredMacCounter", "classify_batches",
           "exit_costs", "normalize_thresholds", "run_early_exit", "speedup", "time_full_evaluation"]


class InferenceError(MsdnetError, ValueError):
    """Bad arguments to the inference functions (a ValueError; one line on the command line)."""


# --------------------------------------------------------------------------------------------
# MAC counting of a real run
# --------------------------------------------------------------------------------------------

def _batch_size(out: Any) -> int:
    """Images an op's output holds, the way ``op_macs`` divides by them (1 for <= 1-d outputs)."""
    if isinstance(out, (tuple, list)):
        out = out[0] if out else None
    if isinstance(out, torch.Tensor) and out.dim() > 1:
        return int(out.shape[0])
    return 1


class MeasuredMacCounter(MacCounter):
    """Counts the MACs of the ops actually executed, for the whole batch of each op.

    ``cost.MacCounter`` adds per-image MACs (it is used with batch size 1). Here every op adds
    its per-image MACs times its own batch size, so ``macs`` is the total over every image
    that went through the op: after a ``select`` fewer images are charged.
    """

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        per_image = op_macs(getattr(func, "__name__", ""), args, kwargs, out)
        if per_image:
            self.macs += per_image * _batch_size(out)
        return out


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------

@dataclass
class EarlyExitResult:
    """Per-image outcome of an early-exit run, and its totals.

    exits        int64 [N]    0-based exit each image left at (as ``assign_exits``)
    predictions  int64 [N]    argmax of that exit's logits
    confidences  float64 [N]  that exit's confidence
    labels       int64 [N] or None (when the batches carried no labels)
    sample_ids   int64 [N]    ids from the batches, else 0..N-1
    thresholds   float64 [K]  theta_1..theta_K (theta_K = -inf)
    exit_macs    int64 [K]    cumulative MACs C_k per image under this evaluation mode
    macs         int64 [N]    (property) C_k of each image's exit: the MACs spent on it
    measured_macs int or None total MACs counted while running (None with count_macs=False)
    seconds      float        wall-clock of the model work over all batches
    """

    exits: np.ndarray
    predictions: np.ndarray
    confidences: np.ndarray
    labels: np.ndarray | None
    sample_ids: np.ndarray
    thresholds: np.ndarray
    exit_macs: np.ndarray
    measured_macs: int | None
    seconds: float
    lazy: bool = True
    confidence: str = "max_prob"
    device: str = "cpu"
    batches: int = 0

    @property
    def num_exits(self) -> int:
        return int(self.exit_macs.shape[0])

    @property
    def n_images(self) -> int:
        return int(self.exits.shape[0])

    @property
    def exit_counts(self) -> np.ndarray:
        """n_k: images leaving at each exit, [K]."""
        return np.bincount(self.exits, minlength=self.num_exits).astype(np.int64)

    @property
    def exit_fractions(self) -> np.ndarray:
        n = self.n_images
        return self.exit_counts / n if n else np.zeros(self.num_exits)

    @property
    def macs(self) -> np.ndarray:
        """C_k of the exit each image left at: the MACs spent on it, int64 [N]."""
        return self.exit_macs.astype(np.int64)[self.exits]

    @property
    def expected_macs(self) -> int:
        """sum_k n_k * C_k (total over all images)."""
        return int(self.exit_counts @ self.exit_macs.astype(np.int64))

    @property
    def expected_macs_per_image(self) -> float:
        return self.expected_macs / self.n_images if self.n_images else float("nan")

    @property
    def measured_macs_per_image(self) -> float:
        if self.measured_macs is None or not self.n_images:
            return float("nan")
        return self.measured_macs / self.n_images

    @property
    def seconds_per_image(self) -> float:
        return self.seconds / self.n_images if self.n_images else float("nan")

    @property
    def mean_exit(self) -> float:
        """Average exit, 1-based (1 = everyone left at the first classifier)."""
        return float(self.exits.mean() + 1.0) if self.n_images else float("nan")

    @property
    def correct(self) -> np.ndarray | None:
        return None if self.labels is None else self.predictions == self.labels

    @property
    def accuracy(self) -> float:
        """Top-1 % of the predictions (NaN without labels or images)."""
        if self.labels is None or not self.n_images:
            return float("nan")
        return float(np.mean(self.predictions == self.labels) * 100.0)

    def table(self) -> pd.DataFrame:
        """One row per image: sample_id, label, exit (1-based), prediction, confidence, correct."""
        n = self.n_images
        labels = self.labels if self.labels is not None else np.full(n, -1)
        correct = self.correct if self.labels is not None else np.zeros(n, dtype=bool)
        return pd.DataFrame({"sample_id": self.sample_ids, "label": labels, "exit": self.exits + 1,
                             "prediction": self.predictions, "confidence": self.confidences,
                             "correct": correct})

    def to_json(self) -> dict[str, Any]:
        """The totals (not the per-image arrays) as JSON-safe values."""
        return {
            "n_images": self.n_images, "lazy": self.lazy, "confidence": self.confidence,
            "device": self.device, "thresholds": json_list(self.thresholds),
            "exit_macs": json_list(self.exit_macs), "exit_counts": json_list(self.exit_counts),
            "exit_fractions": json_list(self.exit_fractions), "accuracy": json_number(self.accuracy),
            "mean_exit": json_number(self.mean_exit),
            "measured_macs": json_number(self.measured_macs),
            "expected_macs": json_number(self.expected_macs),
            "measured_macs_per_image": json_number(self.measured_macs_per_image),
            "expected_macs_per_image": json_number(self.expected_macs_per_image),
            "seconds": json_number(self.seconds), "seconds_per_image": json_number(self.seconds_per_image),
        }


@dataclass
class FullEvaluation:
    """Full evaluation (``model(x)``, every exit) of the same batches: timing and last-exit results."""

    predictions: np.ndarray       # int64 [N], argmax of the last exit's logits
    labels: np.ndarray | None
    sample_ids: np.ndarray
    seconds: float
    macs_per_image: int           # C_K without lazy evaluation (every exit head included)
    device: str = "cpu"

    @property
    def n_images(self) -> int:
        return int(self.predictions.shape[0])

    @property
    def seconds_per_image(self) -> float:
        return self.seconds / self.n_images if self.n_images else float("nan")

    @property
    def accuracy(self) -> float:
        if self.labels is None or not self.n_images:
            return float("nan")
        return float(np.mean(self.predictions == self.labels) * 100.0)


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------

def normalize_thresholds(thresholds: Iterable[float] | np.ndarray, num_exits: int) -> np.ndarray:
    """theta as float64 [K] with theta_K = -inf, from K - 1 values (or K values ending in -inf)."""
    try:
        t = np.asarray(list(thresholds) if not isinstance(thresholds, np.ndarray) else thresholds,
                       dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise InferenceError(f"thresholds must be numbers, got {thresholds!r}") from None
    if t.size == num_exits - 1:
        t = np.append(t, -np.inf)
    elif t.size == num_exits and num_exits > 1:
        if t[-1] != -np.inf:
            raise InferenceError(f"got {num_exits} thresholds for {num_exits} exits, but the last must be "
                                 f"-inf (the last exit takes every image left), not {t[-1]}; give "
                                 f"{num_exits - 1} thresholds, one per exit but the last")
    else:
        raise InferenceError(f"got {t.size} thresholds for a model with {num_exits} exits; give "
                             f"{num_exits - 1}, one per exit but the last (it takes every image left)")
    if np.isnan(t).any():
        raise InferenceError(f"thresholds must not be NaN, got {t[:-1].tolist()}")
    return t


def _model_device(model: MultiExitModel, device: str | torch.device | None) -> torch.device:
    """The model's device; ``device``, when given, must name it (the model is never moved)."""
    param = next(model.parameters(), None)
    have = param.device if param is not None else torch.device("cpu")
    if device is None:
        return have
    dev = torch.device(device)
    if param is None:
        return dev
    if dev.type != have.type or (dev.index is not None and dev.index != have.index):
        raise InferenceError(f"the model is on {have} but device {dev} was asked for; move it "
                             f"first (model.to('{dev}'))")
    return have


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _unpack(batch: Any, start: int) -> tuple[torch.Tensor, torch.Tensor | None, np.ndarray]:
    """(x, y, ids) from a batch that is a tensor x, or a tuple (x,), (x, y) or (x, y, ids)."""
    if isinstance(batch, torch.Tensor):
        x, y, ids = batch, None, None
    elif isinstance(batch, (tuple, list)) and 1 <= len(batch) <= 3:
        x = batch[0]
        y = batch[1] if len(batch) > 1 else None
        ids = batch[2] if len(batch) > 2 else None
    else:
        raise InferenceError("each batch must be a tensor x or a tuple (x, y[, ids])")
    if not isinstance(x, torch.Tensor) or x.dim() < 1:
        raise InferenceError("each batch's x must be a tensor [B, ...]")
    n = int(x.shape[0])
    ids_np = (np.arange(start, start + n, dtype=np.int64) if ids is None
              else torch.as_tensor(ids).cpu().numpy().astype(np.int64).reshape(-1))
    return x, y, ids_np


def exit_costs(model: MultiExitModel, lazy: bool, exit_macs: Iterable[int] | None = None) -> np.ndarray:
    """The cumulative per-exit MACs C_k (int64 [K]): ``exit_macs`` when already counted, checked
    against the model's number of exits, else :func:`msdnet.models.cost.count_costs` under ``lazy``."""
    costs = (np.asarray(list(exit_macs), dtype=np.int64) if exit_macs is not None
             else np.array([c.macs for c in count_costs(model, lazy=lazy)], dtype=np.int64))
    if costs.shape != (int(model.num_exits),):
        raise InferenceError(f"exit_macs has {costs.size} entries for {int(model.num_exits)} exits")
    return costs


def classify_batches(batches: Iterable[Any], device: torch.device, classify) -> dict[str, Any]:
    """Run ``classify(x) -> (exits, predictions, confidences)`` on every batch (x moved to
    ``device``), timed between device syncs, and concatenate the per-image results: the keyword
    arguments of :class:`EarlyExitResult` that do not depend on the engine (exits, predictions,
    confidences, labels (None when a batch has none), sample_ids, seconds, batches)."""
    exits, preds, confs, labels, ids_all = [], [], [], [], []
    has_labels, seconds, n_seen, n_batches = True, 0.0, 0, 0
    for batch in batches:
        x, y, ids = _unpack(batch, n_seen)
        x = x.to(device)
        _sync(device)
        t0 = time.perf_counter()
        e, p, c = classify(x)
        _sync(device)
        seconds += time.perf_counter() - t0
        exits.append(e)
        preds.append(p)
        confs.append(c)
        ids_all.append(ids)
        if y is None:
            has_labels = False
        else:
            labels.append(torch.as_tensor(y).cpu().numpy().astype(np.int64).reshape(-1))
        n_seen += int(x.shape[0])
        n_batches += 1

    def cat(parts: list[np.ndarray], dtype: Any) -> np.ndarray:
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)

    return dict(exits=cat(exits, np.int64), predictions=cat(preds, np.int64),
                confidences=cat(confs, np.float64), labels=cat(labels, np.int64) if has_labels else None,
                sample_ids=cat(ids_all, np.int64), seconds=seconds, batches=n_batches)


def _early_exit_batch(model: MultiExitModel, x: torch.Tensor, theta: np.ndarray, lazy: bool,
                      measure: str, device: torch.device) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = int(x.shape[0])
    exits = np.empty(n, dtype=np.int64)
    preds = np.empty(n, dtype=np.int64)
    confs = np.empty(n, dtype=np.float64)
    if n == 0:
        return exits, preds, confs
    last = model.num_exits - 1
    pos = np.arange(n)                     # batch position of each image still in the state
    state = model.begin(x, lazy=lazy)
    for k in range(model.num_exits):
        logits = model.advance(state).float().cpu().numpy()
        conf = confidence_rows(logits, measure)
        leave = np.ones(len(pos), dtype=bool) if k == last else conf >= theta[k]
        out = pos[leave]
        exits[out] = k
        preds[out] = logits[leave].argmax(axis=1)
        confs[out] = conf[leave]
        if leave.all():
            break
        if leave.any():
            keep = np.flatnonzero(~leave)
            state = state.select(torch.from_numpy(keep).to(device))
            pos = pos[keep]
    return exits, preds, confs


# --------------------------------------------------------------------------------------------
# The API
# --------------------------------------------------------------------------------------------

@torch.no_grad()
def run_early_exit(model: MultiExitModel, batches: Iterable[Any], thresholds: Iterable[float] | np.ndarray,
                   *, lazy: bool = True, confidence: str = "max_prob",
                   device: str | torch.device | None = None, count_macs: bool = True,
                   exit_macs: Iterable[int] | None = None) -> EarlyExitResult:
    """Classify ``batches`` exit by exit; images leave at the first exit whose confidence >= theta_k.

    ``batches``: an iterable of tensors x or tuples (x, y[, ids]) (``msdnet.data.iterate_batches``
    gives the latter); x is moved to ``device`` (default: the model's device; the model itself
    is not moved). ``thresholds``: K - 1 values (or K ending in -inf; see the module docstring).
    ``lazy``: lazy evaluation (the paper, Sec. 4) for models that support it (MSDNet); others ignore it.
    ``count_macs``: count the MACs actually executed (``measured_macs``); adds Python overhead
    per op to the timed region. ``exit_macs``: the per-exit cumulative costs if already counted
    (default: ``count_costs(model, lazy=lazy)``). The model runs in eval mode (restored after).
    """
    check_measure(confidence)
    theta = normalize_thresholds(thresholds, int(model.num_exits))
    dev = _model_device(model, device)
    was_training = model.training
    try:
        costs = exit_costs(model, lazy, exit_macs)
        model.eval()
        counter = MeasuredMacCounter() if count_macs else None

        def classify(x: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            with counter if counter is not None else contextlib.nullcontext():
                return _early_exit_batch(model, x, theta, lazy, confidence, dev)

        results = classify_batches(batches, dev, classify)
    finally:
        model.train(was_training)
    return EarlyExitResult(**results, thresholds=theta, exit_macs=costs,
                           measured_macs=int(counter.macs) if counter is not None else None,
                           lazy=lazy, confidence=confidence, device=str(dev))


@torch.no_grad()
def time_full_evaluation(model: MultiExitModel, batches: Iterable[Any], *,
                         device: str | torch.device | None = None) -> FullEvaluation:
    """Time ``model(x)`` (every exit, no early exit) on the batches, timed like :func:`run_early_exit`.

    Returns the last exit's predictions and the wall-clock; ``macs_per_image`` is the full
    network's cost C_K (``count_costs`` without lazy evaluation).
    """
    dev = _model_device(model, device)
    was_training = model.training
    try:
        macs = int(count_costs(model)[-1].macs)
        model.eval()
        last = int(model.num_exits) - 1

        def classify(x: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            pred = model(x)[-1].float().cpu().numpy().argmax(axis=1)
            return np.full(len(pred), last), pred, np.zeros(len(pred))     # every image: last exit

        results = classify_batches(batches, dev, classify)
    finally:
        model.train(was_training)
    return FullEvaluation(predictions=results["predictions"], labels=results["labels"],
                          sample_ids=results["sample_ids"], seconds=results["seconds"], macs_per_image=macs,
                          device=str(dev))


def speedup(early: EarlyExitResult, full: FullEvaluation) -> float:
    """Wall-clock per image of full evaluation / that of early exit (NaN if undefined)."""
    a, b = full.seconds_per_image, early.seconds_per_image
    if not (math.isfinite(a) and math.isfinite(b)) or b <= 0:
        return float("nan")
    return a / b
