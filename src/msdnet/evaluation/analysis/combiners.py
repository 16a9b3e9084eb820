"""Beyond the paper: exit combiners, per-exit temperature scaling, calibration and conditional
monotonicity of anytime predictions (docs/method.md, "Combining exits and calibration").

The paper's anytime answer at exit k is the softmax of exit k alone. Jazbec et al. (NeurIPS 2023)
show that this answer is not *conditionally monotone*: the probability of the true class can drop
from one exit to a later one; Meronen et al. (WACV 2024) show that early exits are over-confident.
This module is a set of pure functions over predictions files (logits [E, N, C]):

Combiners (``combine``), each mapping per-exit logits to per-exit class probabilities [E, N, C]:

    softmax   the paper's: p_k = softmax(z_k)
    mean      running mean of the softmaxes: p_k = (1/k) sum_{i<=k} softmax(z_i)
    caching   p_k = softmax(z_j) of the most confident exit j among 1..k (confidence = largest
              probability; ties go to the later exit)
    product   a product of experts: p_k(c) proportional to prod_{i<=k} max(z_i(c), 0)^{w_i}
              (w_i = 1 unless ``exponents`` are given); where every class gets 0, p_k falls back
              to softmax(z_k). A class excluded at exit k stays excluded at every later exit.

Temperature scaling (``fit_temperatures``): one temperature T_k > 0 per exit, fitted on the
validation split by minimising the NLL of softmax(z_k / T_k) (convex in 1/T_k: a safeguarded
Newton search, T_k in [0.01, 100]). It is applied to the logits before the combiner. Only the
validation file is read; test images never enter the fit.

Metrics (``exit_metrics``), per exit k of the combined p_k on one split:

    accuracy      top-1 % (argmax of p_k, first index on ties)
    ece_percent   expected calibration error in %: confidences (max_c p_k(c)) in 15 equal-width
                  bins (i/15, (i+1)/15] (a confidence of 0 goes to the first), ECE =
                  sum_b (n_b / N) |accuracy_b - mean confidence_b| * 100
    nll           mean of -log max(p_k(y), 1e-12) (the floor keeps a product that excluded the
                  true class finite)

Conditional monotonicity (``decrease_percent``): the % of images whose true-class probability
falls by more than eps between some exit i and a later exit j (p_i(y) - p_j(y) > eps, i < j).

Budgeted batch classification with a combiner (``combined_predictions``): the paper's threshold
algorithm (``msdnet.evaluation.analysis.budgeted``), unchanged, run on predictions whose logits
are log p_k, so that its confidence (max softmax) is the largest combined probability and its
prediction the argmax of p_k. A per-exit temperature alone never changes a budgeted curve: it
is a monotone map of each exit's confidences, and the thresholds are quantiles taken at each
exit, so the same images leave at the same exits. A combiner can change it.

All arithmetic is float64, in row chunks (an ImageNet file never needs a float64 copy of all
its logits at once).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

from ...core.errors import DataError
from ...inference.predictions import Predictions
from .common import log_softmax

COMBINERS = ("softmax", "mean", "caching", "product")
EPSILONS = (0.01, 0.05, 0.1, 0.2, 0.5)
ECE_BINS = 15
NLL_FLOOR = 1e-12
T_MIN, T_MAX = 0.01, 100.0
_CHUNK_ELEMENTS = 1 << 22    # float64 elements per chunk of [E, rows, C]
_LOG_FLOOR = 1e-300          # log p of an excluded class in combined_predictions


def check_combiner(name: str) -> str:
    if name not in COMBINERS:
        raise DataError(f"unknown combiner {name!r}; choose one of {', '.join(COMBINERS)}")
    return name


# -- combiners ----------------------------------------------------------------------------------

def combine(logits: np.ndarray, combiner: str, temperatures: Sequence[float] | None = None,
            exponents: Sequence[float] | None = None) -> np.ndarray:
    """Per-exit probabilities [E, N, C] (float64) of ``combiner`` over logits [E, N, C].

    ``temperatures`` [E]: logits of exit k are divided by T_k first. ``exponents`` [E]: the
    weights w_i of ``product`` (default 1; other combiners ignore them).
    """
    check_combiner(combiner)
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 3:
        raise DataError(f"logits must be [exits, images, classes], got shape {z.shape}")
    e = z.shape[0]
    if temperatures is not None:
        t = np.asarray(temperatures, dtype=np.float64)
        if t.shape != (e,) or not np.all(np.isfinite(t)) or np.any(t <= 0):
            raise DataError(f"temperatures must be {e} positive numbers, got {t.tolist()}")
        z = z / t[:, None, None]
    soft = np.exp(log_softmax(z))
    if combiner == "softmax":
        return soft
    if combiner == "mean":
        return np.cumsum(soft, axis=0) / np.arange(1, e + 1, dtype=np.float64)[:, None, None]
    if combiner == "caching":
        conf = soft.max(axis=2)                         # [E, N]
        out = np.empty_like(soft)
        best = np.zeros(z.shape[1], dtype=np.int64)
        rows = np.arange(z.shape[1])
        for k in range(e):
            take = conf[k] >= conf[best, rows]          # ties to the later exit
            best = np.where(take, k, best)
            out[k] = soft[best, rows]
        return out
    # product of experts over ReLU'd logits, in the log domain
    w = np.ones(e) if exponents is None else np.asarray(exponents, dtype=np.float64)
    if w.shape != (e,) or not np.all(np.isfinite(w)) or np.any(w <= 0):
        raise DataError(f"exponents must be {e} positive numbers, got {np.asarray(exponents).tolist()}")
    with np.errstate(divide="ignore"):
        logs = np.log(np.maximum(z, 0.0)) * w[:, None, None]      # -inf where z <= 0
    acc = np.cumsum(logs, axis=0)                                   # [E, N, C]
    m = acc.max(axis=2, keepdims=True)
    dead = ~np.isfinite(m)                                          # every class at 0
    m = np.where(dead, 0.0, m)
    with np.errstate(invalid="ignore"):
        p = np.exp(acc - m)
    p = p / np.where(dead, 1.0, p.sum(axis=2, keepdims=True))
    return np.where(dead, soft, p)


def _chunks(n: int, e: int, c: int) -> Iterator[slice]:
    rows = max(1, _CHUNK_ELEMENTS // max(e * c, 1))
    for s in range(0, n, rows):
        yield slice(s, min(n, s + rows))


# -- temperature scaling ------------------------------------------------------------------------

def _nll_grad(z: np.ndarray, y: np.ndarray, beta: float) -> tuple[float, float, float]:
    """NLL of softmax(beta z) on rows z [N, C] and its first two derivatives in beta."""
    logp = log_softmax(beta * z)
    p = np.exp(logp)
    rows = np.arange(len(y))
    zy = z[rows, y]
    ez = (p * z).sum(axis=1)
    ez2 = (p * z * z).sum(axis=1)
    return float(-logp[rows, y].mean()), float((ez - zy).mean()), float((ez2 - ez * ez).mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray, iters: int = 60) -> float:
    """The temperature T in [0.01, 100] minimising the NLL of softmax(z / T) on [N, C] logits.

    The NLL is convex in beta = 1/T; its derivative is increasing, so the root is searched by
    Newton steps kept inside a shrinking bracket (bisection when a step leaves it)."""
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    if len(y) == 0:
        raise DataError("temperature scaling needs validation images; the validation file holds none")
    lo, hi = 1.0 / T_MAX, 1.0 / T_MIN
    if _nll_grad(z, y, lo)[1] >= 0:
        return T_MAX
    if _nll_grad(z, y, hi)[1] <= 0:
        return T_MIN
    beta = 1.0
    for _ in range(iters):
        _, g, h = _nll_grad(z, y, beta)
        if g > 0:
            hi = beta
        else:
            lo = beta
        if abs(g) < 1e-12 or hi - lo < 1e-12 * hi:
            break
        step = beta - g / h if h > 0 else np.nan
        beta = step if lo < step < hi else 0.5 * (lo + hi)
    return float(1.0 / beta)


def fit_temperatures(val: Predictions) -> np.ndarray:
    """One temperature per exit [E], fitted on the validation file only (see the module doc)."""
    return np.array([fit_temperature(val.logits[k], val.labels) for k in range(val.num_exits)])


# -- metrics ------------------------------------------------------------------------------------

@dataclass
class Metrics:
    """Per-exit metrics of one combiner on one split (arrays [E]) and its monotonicity."""

    accuracy: np.ndarray
    ece_percent: np.ndarray
    nll: np.ndarray
    decrease_percent: dict[float, float]      # epsilon -> % of images
    bins: np.ndarray                          # [E, B, 3]: count, sum of confidence, sum correct


def ece_from_bins(bins: np.ndarray) -> np.ndarray:
    """ECE (%) from per-bin (count, sum of confidence, sum of correct) [..., B, 3]."""
    n = bins[..., 0].sum(axis=-1)
    gap = np.abs(bins[..., 2] - bins[..., 1]).sum(axis=-1)    # sum_b |n_b acc_b - n_b conf_b|
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, gap / n * 100.0, np.nan)


def bin_index(conf: np.ndarray, n_bins: int = ECE_BINS) -> np.ndarray:
    """Bin of each confidence: (i/B, (i+1)/B] is bin i; 0 goes to bin 0."""
    return np.clip(np.ceil(np.asarray(conf) * n_bins).astype(np.int64) - 1, 0, n_bins - 1)


def exit_metrics(preds: Predictions, combiner: str = "softmax",
                 temperatures: Sequence[float] | None = None,
                 exponents: Sequence[float] | None = None,
                 epsilons: Sequence[float] = EPSILONS, n_bins: int = ECE_BINS) -> Metrics:
    """Accuracy, ECE, NLL per exit and decrease % per epsilon of ``combiner`` on ``preds``."""
    e, n, c = preds.logits.shape
    labels = np.asarray(preds.labels, dtype=np.int64)
    correct = np.zeros(e)
    nll = np.zeros(e)
    bins = np.zeros((e, n_bins, 3))
    drop = np.empty(n)
    for sl in _chunks(n, e, c):
        p = combine(preds.logits[:, sl], combiner, temperatures, exponents)
        y = labels[sl]
        rows = np.arange(len(y))
        py = p[:, rows, y]                                    # [E, n]
        pred = p.argmax(axis=2)
        ok = pred == y[None, :]
        conf = p.max(axis=2)
        correct += ok.sum(axis=1)
        nll += -np.log(np.maximum(py, NLL_FLOOR)).sum(axis=1)
        b = bin_index(conf, n_bins)
        for k in range(e):
            bins[k, :, 0] += np.bincount(b[k], minlength=n_bins)
            bins[k, :, 1] += np.bincount(b[k], weights=conf[k], minlength=n_bins)
            bins[k, :, 2] += np.bincount(b[k], weights=ok[k].astype(np.float64), minlength=n_bins)
        drop[sl] = largest_drop(py)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = correct / n * 100.0 if n else np.full(e, np.nan)
        nll = nll / n if n else np.full(e, np.nan)
    dec = {float(eps): (float((drop > eps).mean() * 100.0) if n else float("nan")) for eps in epsilons}
    return Metrics(accuracy=acc, ece_percent=ece_from_bins(bins), nll=nll, decrease_percent=dec,
                   bins=bins)


def largest_drop(p_true: np.ndarray) -> np.ndarray:
    """Per image, max over i < j of p_i(y) - p_j(y) (0 with one exit or no drop); p_true [E, N]."""
    p = np.asarray(p_true, dtype=np.float64)
    if p.shape[0] < 2:
        return np.zeros(p.shape[1])
    best_before = np.maximum.accumulate(p, axis=0)[:-1]       # max_{i <= j-1} p_i
    return np.maximum((best_before - p[1:]).max(axis=0), 0.0)


def decrease_percent(p_true: np.ndarray, epsilons: Sequence[float] = EPSILONS) -> dict[float, float]:
    """% of images whose true-class probability falls by more than eps from an exit to a later one."""
    d = largest_drop(p_true)
    return {float(eps): float((d > eps).mean() * 100.0) for eps in epsilons}


# -- budgeted batch classification with a combiner -----------------------------------------------

def combined_predictions(preds: Predictions, combiner: str,
                         temperatures: Sequence[float] | None = None,
                         exponents: Sequence[float] | None = None) -> Predictions:
    """``preds`` with logits log p_k of the combined probabilities (float64), so that the
    budgeted thresholds' max-softmax confidence is max_c p_k(c) and the prediction argmax p_k.
    The uncalibrated ``softmax`` combiner returns ``preds`` itself (the paper's curve, bit for
    bit)."""
    check_combiner(combiner)
    if combiner == "softmax" and temperatures is None:
        return preds
    e, n, c = preds.logits.shape
    out = np.empty((e, n, c), dtype=np.float64)
    for sl in _chunks(n, e, c):
        out[:, sl] = np.log(np.maximum(combine(preds.logits[:, sl], combiner, temperatures,
                                               exponents), _LOG_FLOOR))
    return Predictions(logits=out, labels=preds.labels, exit_macs=preds.exit_macs,
                       sample_ids=preds.sample_ids, meta=preds.meta, exit_params=preds.exit_params)
