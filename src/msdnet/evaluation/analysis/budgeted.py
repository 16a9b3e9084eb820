"""Budgeted batch classification: the paper's dynamic-evaluation thresholds (docs/method.md).

The procedure (the authors' published PyTorch code, which made the paper's curves):

1. Confidence of exit k for an image = its max softmax probability (``max_prob``; options:
   ``entropy`` = negative entropy, ``margin`` = top-1 minus top-2 probability). Computed once per
   split, float64.
2. Sweep p = j/20, j = 1..39. For each p, q_k = p^k / sum_j p^j for k = 1..K.
3. Walk exits k = 1..K-1 on the VALIDATION split: among the images not yet exited, sorted by
   exit-k confidence (descending), n_k = floor(N_val * q_k); theta_k = confidence of the n_k-th
   of them. If n_k = 0 or fewer than n_k images remain, theta_k = +inf (nobody leaves at k).
   Every remaining image with confidence >= theta_k leaves at k (ties at theta_k can make more
   than n_k leave: that is the paper's behaviour). theta_K = -inf.
   The floor is taken with a relative tolerance of 1e-12 so that products that are integers
   mathematically (e.g. N * 1/K at p = 1) are not lost to float rounding.
4. Apply theta to a split in exit order with >=: an image leaves at the first exit k whose
   confidence >= theta_k. Report accuracy (top-1 %, of the exit the image left at), the exit
   fractions and the average cost sum_k (share leaving at k) * C_k, C_k = cumulative MACs of
   exit k (``exit_macs``). Reported for the test split (``accuracy``, ``avg_macs``,
   ``exit_fractions``) and the validation split (``val_*``).

Known property (checked in the tests): with untied confidences the validation share of exit
k < K is floor(N q_k)/N, within 1/N of q_k. Average cost is NOT exactly monotone in p, not even
on validation: the floors can move one image later or earlier between neighbouring p (e.g.
K = 3, N = 4, p = 0.35 -> 0.40 lowers the validation cost). It stays within the rounding bound
sum_{k<K} k (C_{k+1} - C_k) / N above the ideal cost sum_k q_k C_k, which is non-decreasing in p.

Target budget (``at_budget``): search p in [0, inf] (p = 0 means q = (1, 0, ..., 0): every
validation image leaves at exit 1 because theta_1 = the smallest confidence; p = inf means
q = (0, ..., 0, 1): every image reaches the last exit). The search evaluates a grid uniform in
t = p / (1 + p) (201 points) plus the 39 sweep values, then bisects (40 steps in t) every
neighbouring pair of grid points whose validation costs straddle B, and returns the evaluated
point with the largest validation cost <= B (ties: higher validation accuracy, then smaller p).
The returned point's validation cost never exceeds B. If B < C_1 (even exiting every image at
exit 1 costs more) it raises DataError.

Envelope over several models (``envelope``): the paper draws MSDNet's budgeted curve as the
best-on-validation envelope of 3 models. For each budget b of a grid (default: every distinct
validation cost of every point of every model), among all points of all models with
val_avg_macs <= b, pick the one with the highest val_accuracy (ties: lower val_avg_macs, then the
model given first, then smaller p) and report that point's test accuracy and test cost. Budgets
below every point's validation cost give no row.

JSON (``BudgetedPoint.to_json``): one object per point with keys
``p, avg_macs, accuracy, exit_fractions, thresholds, val_accuracy, val_avg_macs,
val_exit_fractions`` (plus ``budget`` for a budget point, ``model`` and ``curve`` in multi-model
output). Infinite numbers are written as the strings "inf" and "-inf" (theta_k = "inf": nobody
leaves at k; theta_K is always "-inf"; p may be "inf" for a budget point); NaN as null.

Tables (long format):

``budgeted_table(points)``: one row per point. Columns:
    point          int    index of the point in the list given
    model          str    model name
    curve          str    "sweep" (a swept p), "budget" (a target budget), "envelope"
    confidence     str    max_prob | entropy | margin
    p              float  the p of q_k ~ p^k (inf allowed)
    budget         float  target budget in MACs (NaN for sweep points)
    accuracy       float  test top-1 %
    avg_macs       float  test average MACs per image
    val_accuracy   float  validation top-1 %
    val_avg_macs   float  validation average MACs per image

``budgeted_exit_table(points)``: one row per (point, split, exit). Columns:
    point, model, curve, p, budget   as above
    split          str    "test" | "val"
    exit           int    1-based exit index
    macs           float  cumulative MACs of the exit
    threshold      float  theta_k (+inf: nobody leaves; the last exit is -inf)
    fraction       float  share of the split's images leaving at this exit
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ...core.errors import DataError
from ...inference.predictions import Predictions, check_pair as check_provenance
from .common import check_measure, exit_scores, json_list, json_number

_FLOOR_RTOL = 1e-12


def sweep_ps() -> np.ndarray:
    """The paper's p values: j/20 for j = 1..39."""
    return np.arange(1, 40, dtype=np.float64) / 20.0


def exit_distribution(p: float, n_exits: int) -> np.ndarray:
    """q_k proportional to p^k, k = 1..K, normalised to sum 1 (p = 0 and p = inf as limits)."""
    if n_exits < 1:
        raise ValueError("n_exits must be >= 1")
    p = float(p)
    if math.isnan(p) or p < 0:
        raise ValueError(f"p must be >= 0, got {p}")
    q = np.zeros(n_exits)
    if p == 0:
        q[0] = 1.0
        return q
    if math.isinf(p):
        q[-1] = 1.0
        return q
    k = np.arange(1, n_exits + 1, dtype=np.float64)
    logw = k * math.log(p)
    w = np.exp(logw - logw.max())
    return w / w.sum()


def exit_counts(q: np.ndarray, n_images: int) -> np.ndarray:
    """n_k = floor(N * q_k) for the first K-1 exits (relative tolerance 1e-12)."""
    return np.floor(n_images * np.asarray(q[:-1]) * (1.0 + _FLOOR_RTOL)).astype(np.int64)


@dataclass
class _Split:
    conf: np.ndarray      # [E, N] float64
    correct: np.ndarray   # [E, N] bool
    order: np.ndarray | None = None        # [E, N] argsort of conf, descending (val only)
    conf_sorted: np.ndarray | None = None  # [E, N] conf in that order (val only)

    @property
    def n(self) -> int:
        return int(self.conf.shape[1])


def _split(preds: Predictions, measure: str, sort: bool) -> _Split:
    conf, correct = exit_scores(preds, measure)
    s = _Split(conf, correct)
    if sort:
        s.order = np.argsort(-conf, axis=1, kind="stable")
        s.conf_sorted = np.take_along_axis(conf, s.order, axis=1)
    return s


def find_thresholds(conf: np.ndarray, q: np.ndarray, order: np.ndarray | None = None,
                    conf_sorted: np.ndarray | None = None) -> np.ndarray:
    """Thresholds theta [E] from validation confidences conf [E, N] and exit shares q [E].

    ``order`` / ``conf_sorted`` (the descending sort of each exit's confidences) may be passed
    to avoid re-sorting when called for many q.
    """
    conf = np.asarray(conf, dtype=np.float64)
    e, n = conf.shape
    if order is None:
        order = np.argsort(-conf, axis=1, kind="stable")
    if conf_sorted is None:
        conf_sorted = np.take_along_axis(conf, order, axis=1)
    theta = np.full(e, np.inf)
    theta[-1] = -np.inf
    counts = exit_counts(np.asarray(q, dtype=np.float64), n)
    exited = np.zeros(n, dtype=bool)
    left = n
    for k in range(e - 1):
        nk = int(counts[k])
        if nk <= 0 or left < nk:
            continue
        remaining = np.cumsum(~exited[order[k]])
        idx = int(np.searchsorted(remaining, nk))  # first sorted position with nk remaining
        theta[k] = conf_sorted[k, idx]
        exited |= conf[k] >= theta[k]
        left = n - int(exited.sum())
    return theta


def assign_exits(conf: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """0-based exit of each image: the first k with conf[k] >= theta[k] (the last exit takes all)."""
    conf = np.asarray(conf)
    mask = conf >= np.asarray(theta)[:, None]
    mask[-1] = True
    return mask.argmax(axis=0)


def _evaluate(split: _Split, exits: np.ndarray, macs: np.ndarray) -> tuple[float, float, np.ndarray]:
    e, n = split.conf.shape
    if n == 0:
        return float("nan"), float("nan"), np.zeros(e)
    frac = np.bincount(exits, minlength=e) / n
    acc = float(split.correct[exits, np.arange(n)].mean() * 100.0)
    return acc, float(frac @ macs), frac


@dataclass
class BudgetedPoint:
    """One point of a budgeted-batch curve (see the module docstring for the fields)."""

    p: float
    thresholds: np.ndarray
    accuracy: float
    avg_macs: float
    exit_fractions: np.ndarray
    val_accuracy: float
    val_avg_macs: float
    val_exit_fractions: np.ndarray
    exit_macs: np.ndarray
    model: str = "model"
    curve: str = "sweep"
    confidence: str = "max_prob"
    budget: float = float("nan")

    def to_json(self, with_model: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "p": json_number(self.p),
            "avg_macs": json_number(self.avg_macs),
            "accuracy": json_number(self.accuracy),
            "exit_fractions": json_list(self.exit_fractions),
            "thresholds": json_list(self.thresholds),
            "val_accuracy": json_number(self.val_accuracy),
            "val_avg_macs": json_number(self.val_avg_macs),
            "val_exit_fractions": json_list(self.val_exit_fractions),
        }
        if not math.isnan(self.budget):
            out["budget"] = json_number(self.budget)
        if with_model:
            out["model"] = self.model
            out["curve"] = self.curve
        return out


def check_pair(val: Predictions, test: Predictions, val_name: str = "validation predictions",
               test_name: str = "test predictions", provenance: bool = True) -> None:
    """Raise one DataError line naming the files unless val and test can be used together:
    the same exits, classes and costs, and (``provenance``) the checks of
    :func:`msdnet.inference.predictions.check_pair` (the right splits, one run, one data split, different
    images)."""
    if provenance:
        check_provenance(val, test, val_name, test_name)
    if val.num_exits != test.num_exits:
        raise DataError(f"{val_name} has {val.num_exits} exits but {test_name} has {test.num_exits}; "
                        "both must come from the same model")
    if val.num_classes != test.num_classes:
        raise DataError(f"{val_name} has {val.num_classes} classes but {test_name} has "
                        f"{test.num_classes}; both must come from the same model")
    for name, pr in ((val_name, val), (test_name, test)):
        macs = np.asarray(pr.exit_macs, dtype=np.float64)
        if not np.all(np.isfinite(macs)) or (macs.size > 1 and np.any(np.diff(macs) <= 0)):
            raise DataError(f"{name}: exit_macs {macs.tolist()} are not finite and strictly increasing; "
                            "re-create the file with cumulative MACs per exit")
    if not np.allclose(val.exit_macs, test.exit_macs, rtol=1e-9, atol=0.0):
        raise DataError(f"{val_name} and {test_name} have different exit_macs "
                        f"({np.asarray(val.exit_macs).tolist()} vs {np.asarray(test.exit_macs).tolist()}); "
                        "both must come from the same model")
    if len(val) == 0:
        raise DataError(f"{val_name} holds no images; thresholds need a validation split")


class BudgetedEvaluator:
    """Confidences computed once per split; evaluates any p (or q) cheaply.

    ``val`` and ``test`` pass :func:`check_pair` (so every caller, the workflow included, refuses
    a mixed-up pair). ``test=None``: thresholds from ``val`` alone (the test fields of a point
    then describe ``val``), as ``msdnet infer`` needs.
    """

    def __init__(self, val: Predictions, test: Predictions | None, confidence: str = "max_prob",
                 model: str | None = None, val_name: str = "validation predictions",
                 test_name: str = "test predictions"):
        check_measure(confidence)
        if test is None:
            test, test_name = val, val_name
            check_pair(val, test, val_name, test_name, provenance=False)
        else:
            check_pair(val, test, val_name, test_name)
        self.confidence = confidence
        self.model = model or _name_of(test, val)
        self.macs = np.asarray(test.exit_macs, dtype=np.float64)
        self.val = _split(val, confidence, sort=True)
        self.test = _split(test, confidence, sort=False)

    @property
    def n_exits(self) -> int:
        return int(self.macs.shape[0])

    def thresholds(self, p: float) -> np.ndarray:
        q = exit_distribution(p, self.n_exits)
        return find_thresholds(self.val.conf, q, self.val.order, self.val.conf_sorted)

    def val_cost(self, p: float) -> tuple[float, float]:
        theta = self.thresholds(p)
        acc, cost, _ = _evaluate(self.val, assign_exits(self.val.conf, theta), self.macs)
        return cost, acc

    def point(self, p: float, curve: str = "sweep", budget: float = float("nan")) -> BudgetedPoint:
        theta = self.thresholds(p)
        vacc, vcost, vfrac = _evaluate(self.val, assign_exits(self.val.conf, theta), self.macs)
        tacc, tcost, tfrac = _evaluate(self.test, assign_exits(self.test.conf, theta), self.macs)
        return BudgetedPoint(p=float(p), thresholds=theta, accuracy=tacc, avg_macs=tcost,
                             exit_fractions=tfrac, val_accuracy=vacc, val_avg_macs=vcost,
                             val_exit_fractions=vfrac, exit_macs=self.macs, model=self.model,
                             curve=curve, confidence=self.confidence, budget=float(budget))

    def sweep(self, ps: Sequence[float] | None = None) -> list[BudgetedPoint]:
        return [self.point(p) for p in (sweep_ps() if ps is None else ps)]

    def at_budget(self, budget: float, grid: int = 201, bisect_steps: int = 40) -> BudgetedPoint:
        """The point whose validation cost is the largest not exceeding ``budget`` (see module doc)."""
        budget = float(budget)
        if not math.isfinite(budget):
            raise DataError(f"budget must be a finite number of MACs, got {budget}")
        if budget < self.macs[0]:
            raise DataError(f"budget {budget:.6g} MACs is below the cost of exit 1 ({self.macs[0]:.6g} "
                            f"MACs) of {self.model}: even exiting every image at the first classifier "
                            "exceeds it")
        cache: dict[float, tuple[float, float]] = {}

        def cost_t(t: float) -> tuple[float, float]:
            if t not in cache:
                cache[t] = self.val_cost(_p_of_t(t))
            return cache[t]

        ts = set(np.linspace(0.0, 1.0, grid).tolist())
        ts.update((sweep_ps() / (1.0 + sweep_ps())).tolist())
        ts = sorted(ts)
        costs = [cost_t(t)[0] for t in ts]
        for a, b, ca, cb in zip(ts[:-1], ts[1:], costs[:-1], costs[1:]):
            if (ca <= budget) == (cb <= budget):
                continue
            lo, hi = (a, b) if ca <= budget else (b, a)  # lo feasible, hi infeasible
            for _ in range(bisect_steps):
                mid = 0.5 * (lo + hi)
                if mid in (lo, hi):
                    break
                if cost_t(mid)[0] <= budget:
                    lo = mid
                else:
                    hi = mid
        feasible = [(c, acc, -t, t) for t, (c, acc) in cache.items() if c <= budget]
        if not feasible:  # cannot happen: t = 0 costs C_1 <= budget
            raise DataError(f"no thresholds of {self.model} meet the budget {budget:.6g} MACs")
        best = max(feasible, key=lambda r: (r[0], r[1], r[2]))
        return self.point(_p_of_t(best[3]), curve="budget", budget=budget)


def _p_of_t(t: float) -> float:
    if t <= 0.0:
        return 0.0
    if t >= 1.0:
        return float("inf")
    return t / (1.0 - t)


def _name_of(*preds: Predictions) -> str:
    for pr in preds:
        for key in ("model", "arch"):
            v = pr.meta.get(key) if isinstance(pr.meta, dict) else None
            if v:
                return str(v)
    return "model"


def budgeted_sweep(val: Predictions, test: Predictions, confidence: str = "max_prob",
                   ps: Sequence[float] | None = None, model: str | None = None,
                   val_name: str = "validation predictions",
                   test_name: str = "test predictions") -> list[BudgetedPoint]:
    """The paper's sweep: one point per p (default j/20, j = 1..39)."""
    ev = BudgetedEvaluator(val, test, confidence, model, val_name, test_name)
    return ev.sweep(ps)


def at_budget(val: Predictions, test: Predictions, budget: float, confidence: str = "max_prob",
              model: str | None = None, val_name: str = "validation predictions",
              test_name: str = "test predictions") -> BudgetedPoint:
    """Thresholds whose validation average cost is the closest to ``budget`` without exceeding it."""
    ev = BudgetedEvaluator(val, test, confidence, model, val_name, test_name)
    return ev.at_budget(budget)


def envelope(points_by_model: Mapping[str, Sequence[BudgetedPoint]],
             budgets: Sequence[float] | None = None) -> list[BudgetedPoint]:
    """Best-on-validation envelope over models (see the module docstring for the exact rule).

    Returns copies of the chosen points with ``curve="envelope"``, ``budget`` set and ``model``
    the name of the model the point came from, one per budget that some point meets, in order
    of increasing budget.
    """
    cands: list[tuple[int, BudgetedPoint]] = []
    for rank, (name, pts) in enumerate(points_by_model.items()):
        for pt in pts:
            cands.append((rank, replace(pt, model=name)))
    if not cands:
        return []
    vcost = np.array([pt.val_avg_macs for _, pt in cands])
    vacc = np.array([pt.val_accuracy for _, pt in cands])
    rank = np.array([r for r, _ in cands])
    pval = np.array([pt.p for _, pt in cands])
    if budgets is None:
        budgets = np.unique(vcost[np.isfinite(vcost)])
    # preference order: val accuracy desc, val cost asc, model rank asc, p asc
    pref = np.lexsort((pval, rank, vcost, -vacc))
    out = []
    for b in sorted(float(x) for x in budgets):
        ok = vcost[pref] <= b
        if not ok.any():
            continue
        _, pt = cands[int(pref[int(np.argmax(ok))])]
        out.append(replace(pt, curve="envelope", budget=b))
    return out


_POINT_COLUMNS = ["point", "model", "curve", "confidence", "p", "budget", "accuracy", "avg_macs",
                  "val_accuracy", "val_avg_macs"]
_EXIT_COLUMNS = ["point", "model", "curve", "p", "budget", "split", "exit", "macs", "threshold",
                 "fraction"]


def budgeted_table(points: Sequence[BudgetedPoint]) -> pd.DataFrame:
    """One row per point (columns in the module docstring)."""
    rows = [{"point": i, "model": pt.model, "curve": pt.curve, "confidence": pt.confidence,
             "p": pt.p, "budget": pt.budget, "accuracy": pt.accuracy, "avg_macs": pt.avg_macs,
             "val_accuracy": pt.val_accuracy, "val_avg_macs": pt.val_avg_macs}
            for i, pt in enumerate(points)]
    return pd.DataFrame(rows, columns=_POINT_COLUMNS)


def budgeted_exit_table(points: Sequence[BudgetedPoint]) -> pd.DataFrame:
    """One row per (point, split, exit) (columns in the module docstring)."""
    rows = []
    for i, pt in enumerate(points):
        for split, frac in (("test", pt.exit_fractions), ("val", pt.val_exit_fractions)):
            for k in range(len(pt.thresholds)):
                rows.append({"point": i, "model": pt.model, "curve": pt.curve, "p": pt.p,
                             "budget": pt.budget, "split": split, "exit": k + 1,
                             "macs": float(pt.exit_macs[k]), "threshold": float(pt.thresholds[k]),
                             "fraction": float(frac[k])})
    return pd.DataFrame(rows, columns=_EXIT_COLUMNS)
