"""Helpers shared by the analysis modules: per-exit confidences and correctness, JSON-safe
numbers, atomic CSV writing.

Confidence measures (higher = more confident), computed from the softmax of each exit's logits:

    max_prob   the largest softmax probability (the paper's measure, the default)
    entropy    the negative entropy  sum_c p_c log p_c  (<= 0; 0 = one-hot)
    margin     top-1 minus top-2 probability (equals the top-1 probability with one class)

All arithmetic is float64, done exit by exit in row chunks so that an ImageNet-sized file
(50,000 images x 1,000 classes) never needs a float64 copy of all its logits at once.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from ...core.errors import DataError
from ...core.io import atomic_path
from ...inference.predictions import Predictions

CONFIDENCES = ("max_prob", "entropy", "margin")

_CHUNK_ELEMENTS = 1 << 22  # float64 elements per chunk (32 MiB)


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


def exit_scores(preds: Predictions, measure: str = "max_prob") -> tuple[np.ndarray, np.ndarray]:
    """Per-exit confidence [E, N] (float64) and correctness [E, N] (bool) of a predictions file.

    Correct means argmax of that exit's logits equals the label (first index on ties).
    """
    check_measure(measure)
    logits = preds.logits
    e, n, c = logits.shape
    conf = np.empty((e, n), dtype=np.float64)
    correct = np.empty((e, n), dtype=bool)
    rows = max(1, _CHUNK_ELEMENTS // max(c, 1))
    labels = np.asarray(preds.labels)
    for k in range(e):
        for s in range(0, n, rows):
            block = logits[k, s:s + rows]
            conf[k, s:s + rows] = confidence_rows(block, measure)
            correct[k, s:s + rows] = block.argmax(axis=1) == labels[s:s + rows]
    return conf, correct


def exit_accuracy(preds: Predictions) -> np.ndarray:
    """Top-1 accuracy (%) of every exit, [E]; NaN for an empty file."""
    if len(preds) == 0:
        return np.full(preds.num_exits, np.nan)
    pred = preds.logits.argmax(axis=2)
    return (pred == np.asarray(preds.labels)[None, :]).mean(axis=1) * 100.0


def model_name(preds: Predictions, default: str = "model") -> str:
    """The model name recorded in ``meta`` (``model``, then ``arch``), else ``default``."""
    for key in ("model", "arch"):
        value = preds.meta.get(key) if isinstance(preds.meta, dict) else None
        if value:
            return str(value)
    return default


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


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """DataFrame rows as JSON-safe dicts."""
    out = []
    for row in df.to_dict(orient="records"):
        out.append({k: (json_number(v) if isinstance(v, (int, float, np.number)) else v)
                    for k, v in row.items()})
    return out


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, allow_nan=False)


def write_csv(df: pd.DataFrame, path: str | Path) -> None:
    """Write a table as CSV atomically (a temporary name, then rename)."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)


def format_table(df: pd.DataFrame) -> str:
    """A readable fixed-width rendering for the terminal."""
    if df.empty:
        return "(no rows)"
    return df.to_string(index=False, float_format=lambda v: f"{v:.6g}")
