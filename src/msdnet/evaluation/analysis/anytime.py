"""Anytime prediction: top-1 accuracy of every exit against its cumulative cost.

An ensemble is treated like any multi-exit model: its predictions file's exits are the ensemble
steps (see :mod:`msdnet.evaluation.analysis.ensemble`).

Table (long format), ``anytime_table(preds, model=None)``: one row per exit. Columns:
    model      str    model name (argument, else ``meta["model"]``, ``meta["arch"]``, "model")
    exit       int    1-based exit (or ensemble step)
    macs       float  cumulative MACs up to and including this exit (batch size 1)
    params     float  cumulative parameters up to this exit; NaN when the file has none
    accuracy   float  top-1 accuracy (%) of this exit on the file's split (NaN if no images)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...inference.predictions import Predictions
from .common import exit_accuracy, model_name

COLUMNS = ["model", "exit", "macs", "params", "accuracy"]


def anytime_table(preds: Predictions, model: str | None = None) -> pd.DataFrame:
    """One row per exit: model, exit, macs, params, accuracy (see the module docstring)."""
    e = preds.num_exits
    params = (np.asarray(preds.exit_params, dtype=np.float64) if preds.exit_params is not None
              else np.full(e, np.nan))
    return pd.DataFrame({
        "model": [model or model_name(preds)] * e,
        "exit": np.arange(1, e + 1, dtype=np.int64),
        "macs": np.asarray(preds.exit_macs, dtype=np.float64),
        "params": params,
        "accuracy": exit_accuracy(preds),
    }, columns=COLUMNS)
