"""Per-exit confidences and JSON-safe numbers, shared by real early-exit inference
(:mod:`msdnet.inference.early_exit`, :mod:`msdnet.inference.fast_exit`) and the analyses of
predictions files (:mod:`msdnet.evaluation.analysis.common` re-exports them): one function, so an
image takes the same exit in both.

Confidence measures (higher = more confident), computed from the softmax of each exit's logits:

    max_prob   the largest softmax probability (the paper's measure, the default)
    entropy    the negative entropy  sum_c p_c log p_c  (<= 0; 0 = one-hot)
    margin     top-1 minus top-2 probability (equals the top-1 probability with one class)

All arithmetic is float64.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np

from ..core.errors import DataError

CONFIDENCES = ("max_prob", "entropy", "margin")


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    m = x.max(axis=-1, keepdims=True)
    z = x - m
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, float64."""
    return np.exp(_log_softmax(logits))


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Log-softmax over the last axis, float64."""
    return _log_softmax(logits)


def confidence_rows(logits2d: np.ndarray, measure: str) -> np.ndarray:
    logp = _log_softmax(logits2d)
    p = np.exp(logp)
    if measure == "max_prob":
        return p.max(axis=1)
    if measure == "entropy":
        return (p * logp).sum(axis=1)
    if measure == "margin":
        c = p.shape[1]
        if c == 1:
            return p[:, 0]
        top2 = np.partition(p, c - 2, axis=1)[:, c - 2:]
        return top2[:, 1] - top2[:, 0]
    raise DataError(f"unknown confidence measure {measure!r}; choose one of {', '.join(CONFIDENCES)}")


def check_measure(measure: str) -> str:
    if measure not in CONFIDENCES:
        raise DataError(f"unknown confidence measure {measure!r}; choose one of {', '.join(CONFIDENCES)}")
    return measure


def json_number(x: Any) -> Any:
    """A JSON-safe number: +inf -> "inf", -inf -> "-inf", NaN -> None; ints stay ints."""
    if x is None:
        return None
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    x = float(x)
    if math.isnan(x):
        return None
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def json_list(xs: Iterable[Any]) -> list[Any]:
    return [json_number(x) for x in xs]


def parse_json_number(x: Any) -> float:
    """Inverse of :func:`json_number` (None -> NaN, "inf"/"-inf" -> +-inf)."""
    if x is None:
        return float("nan")
    return float(x)
