"""Easy and hard images (the paper's figure of images that exit at the first classifier versus
those only the last classifier gets right), from a test predictions file with >= 2 exits.

Definitions (confidence = the chosen measure of exit 1, default the max softmax probability):
    easy   exit 1 is correct AND the image would leave at exit 1: its exit-1 confidence
           >= theta, where theta is
             - ``threshold`` when given; else
             - ``theta_1`` of the budgeted-batch thresholds at ``p`` computed on a validation
               file (``easy_hard_from_budget``: exactly the images the dynamic evaluation lets
               leave at the first classifier; theta_1 = +inf at that p gives no easy image); else
             - by default the confidence of the ceil(top_share * N)-th most confident image at
               exit 1 (top_share = 0.2: the most confident 20 % of the split, ties at theta
               included).
    hard   every exit but the last is wrong and the last exit is right.

Table (long format), ``easy_hard_table(...)``: one row per selected image. Columns:
    sample_id   int    the image's index in its data set split
    label       int    its true class
    kind        str    "easy" | "hard"
    confidence  float  its exit-1 confidence (the quantity that decides leaving early)

Order: by label, then kind (easy first); easy images by confidence descending (most confident
first), hard ones by confidence ascending (least confident first); then sample_id.
``per_class`` keeps only the first N of each (label, kind) in that order.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ...core.errors import DataError
from ...inference.predictions import Predictions
from .budgeted import BudgetedEvaluator
from .common import check_measure, exit_scores

COLUMNS = ["sample_id", "label", "kind", "confidence"]


def top_share_threshold(conf1: np.ndarray, top_share: float) -> float:
    """Confidence of the ceil(top_share * N)-th most confident image (+inf when N = 0)."""
    if not 0.0 < top_share <= 1.0:
        raise DataError(f"top share must lie in (0, 1], got {top_share}")
    n = conf1.shape[0]
    if n == 0:
        return math.inf
    m = max(1, math.ceil(top_share * n - 1e-9))
    return float(np.sort(conf1)[::-1][m - 1])


def easy_hard_table(preds: Predictions, threshold: float | None = None, top_share: float = 0.2,
                    per_class: int | None = None, confidence: str = "max_prob",
                    source: str = "<predictions>") -> pd.DataFrame:
    """Easy and hard images of a test predictions file (see the module docstring)."""
    check_measure(confidence)
    if preds.num_exits < 2:
        raise DataError(f"{source} has {preds.num_exits} exit; easy/hard images need at least 2 exits")
    if per_class is not None and per_class < 1:
        raise DataError(f"per-class limit must be >= 1, got {per_class}")
    conf, correct = exit_scores(preds, confidence)
    conf1 = conf[0]
    theta = float(threshold) if threshold is not None else top_share_threshold(conf1, top_share)
    easy = correct[0] & (conf1 >= theta)
    hard = ~correct[:-1].any(axis=0) & correct[-1]
    parts = []
    for kind, mask, sign in (("easy", easy, -1.0), ("hard", hard, 1.0)):
        idx = np.flatnonzero(mask)
        parts.append(pd.DataFrame({"sample_id": np.asarray(preds.sample_ids)[idx],
                                   "label": np.asarray(preds.labels)[idx],
                                   "kind": kind, "confidence": conf1[idx],
                                   "_key": sign * conf1[idx], "_kind": 0 if kind == "easy" else 1}))
    df = pd.concat(parts, ignore_index=True)
    df = df.sort_values(["label", "_kind", "_key", "sample_id"], kind="stable")
    if per_class is not None:
        df = df.groupby(["label", "_kind"], sort=False).head(per_class)
    df = df.reset_index(drop=True)[COLUMNS]
    df["sample_id"] = df["sample_id"].astype(np.int64)
    df["label"] = df["label"].astype(np.int64)
    df["confidence"] = df["confidence"].astype(np.float64)
    return df


def easy_hard_from_budget(test: Predictions, val: Predictions, p: float,
                          per_class: int | None = None, confidence: str = "max_prob",
                          val_name: str = "validation predictions",
                          test_name: str = "test predictions") -> pd.DataFrame:
    """Easy = correct at exit 1 and leaving there under the budgeted thresholds at ``p``."""
    if not (p >= 0):
        raise DataError(f"p must be >= 0, got {p}")
    ev = BudgetedEvaluator(val, test, confidence, val_name=val_name, test_name=test_name)
    theta1 = float(ev.thresholds(p)[0])
    return easy_hard_table(test, threshold=theta1, per_class=per_class, confidence=confidence,
                           source=test_name)


def add_fallback_hard(table: pd.DataFrame, preds, per_class: int | None = 4,
                      confidence: str = "max_prob") -> pd.DataFrame:
    """``table`` (easy_hard_table's) with its hard rows filled up to ``per_class`` per class of
    ``preds`` (test predictions): the class's other images with the lowest confidence at the
    last exit (least confident first), ``hard_by`` "last_exit_confidence".
    Rows already there get ``hard_by`` "last_exit_only" (hard) or empty (easy); every row gets
    ``last_confidence``. Table builders call this so that no class shows an empty hard cell."""
    conf, _correct = exit_scores(preds, confidence)
    last, first = conf[-1], conf[0]
    ids = np.asarray(preds.sample_ids).astype(np.int64)
    labels = np.asarray(preds.labels).astype(np.int64)
    df = table.copy()
    df["hard_by"] = np.where(df["kind"].astype(str) == "hard", "last_exit_only", "")
    by_id = dict(zip(ids.tolist(), last.tolist()))
    df["last_confidence"] = [by_id.get(int(i), np.nan) for i in df["sample_id"]]
    hard = df[df["kind"].astype(str) == "hard"]
    have = hard.groupby(hard["label"].astype(np.int64)).size().to_dict()
    shown = set(hard["sample_id"].astype(np.int64).tolist())
    extra = []
    for label in sorted(set(labels.tolist())):
        missing = None if per_class is None else per_class - have.get(label, 0)
        if (missing is not None and missing <= 0) or (missing is None and have.get(label, 0)):
            continue
        idx = np.flatnonzero(labels == label)
        idx = idx[~np.isin(ids[idx], list(shown))]
        idx = idx[np.lexsort((ids[idx], last[idx]))]
        if missing is not None:
            idx = idx[:missing]
        extra.append(pd.DataFrame({"sample_id": ids[idx], "label": label, "kind": "hard",
                                   "confidence": first[idx], "hard_by": "last_exit_confidence",
                                   "last_confidence": last[idx]}))
    out = pd.concat([df, *extra], ignore_index=True) if extra else df
    order = {"easy": 0, "hard": 1}
    out = out.assign(_k=out["kind"].map(order)).sort_values(["label", "_k"], kind="stable")
    return out.drop(columns="_k").reset_index(drop=True)
