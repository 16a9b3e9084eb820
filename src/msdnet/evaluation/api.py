"""``msdnet.early_exit``: early exit on one batch, at given thresholds or at a budget.

At a budget the thresholds are the paper's budgeted batch classification (Sec. 5.2): chosen on
the run's validation predictions (``val``: the ``val.npz`` that ``msdnet predict`` records) so
that their average cost there is the largest not above the budget (as ``msdnet infer --val
--budget``). The result is :class:`msdnet.inference.early_exit.EarlyExitResult`: per image
``predictions`` (class), ``exits`` (0-based exit it left at) and ``macs`` (MACs spent on it),
plus the totals (``accuracy`` when labels are given, ``expected_macs_per_image``, ...).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.errors import MsdnetError


def early_exit(model, images: Any, *, thresholds: float | list[float] | None = None,
               budget: float | None = None, val: str | Path | Any = None,
               labels: Any = None, lazy: bool = True, confidence: str = "max_prob",
               batch_size: int = 256):
    """Classify ``images`` exit by exit; each leaves at the first exit confident enough.

    ``model``: from :func:`msdnet.load_model` (or any ``MultiExitModel``). ``images``: the
    normalised batch ``[B, C, H, W]`` (``model.transforms()(raw)``). Either ``thresholds`` (one
    value for every exit but the last, or one per exit but the last) or ``budget`` (average MACs
    per image) with ``val`` (a validation predictions file of this model, or loaded
    :class:`~msdnet.inference.predictions.Predictions`). ``labels``: optional, for ``accuracy``.
    """
    from ..inference.early_exit import run_early_exit
    from ..models.cost import count_costs

    if (thresholds is None) == (budget is None):
        raise MsdnetError("give thresholds= or budget= (with val=), one of them")
    k = int(model.num_exits)
    exit_macs = getattr(model, "exit_macs", None) if lazy else None
    if exit_macs is None:
        exit_macs = [c.macs for c in count_costs(model, lazy=lazy)]
    exit_macs = np.asarray(exit_macs, dtype=np.int64)
    if budget is not None:
        theta = _thresholds_at_budget(model, float(budget), val, exit_macs, confidence)
    elif np.ndim(thresholds) == 0:
        theta = [float(thresholds)] * (k - 1)
    else:
        theta = list(thresholds)
    x = torch.as_tensor(images)
    y = None if labels is None else torch.as_tensor(labels, dtype=torch.int64)
    ids = torch.arange(len(x))
    batches = [(x[i:i + batch_size], None if y is None else y[i:i + batch_size], ids[i:i + batch_size])
               for i in range(0, len(x), batch_size)]
    return run_early_exit(model, batches, theta, lazy=lazy, confidence=confidence,
                          count_macs=False, exit_macs=exit_macs)


def _thresholds_at_budget(model, budget: float, val, exit_macs: np.ndarray, confidence: str):
    from dataclasses import replace

    from ..inference.predictions import Predictions, load
    from .analysis.budgeted import BudgetedEvaluator

    if val is None:
        raise MsdnetError("budget= needs val=: the run's validation predictions (val.npz, written by "
                          "msdnet predict), on which the thresholds are chosen")
    preds = val if isinstance(val, Predictions) else load(val)
    if preds.num_exits != int(model.num_exits):
        raise MsdnetError(f"{val} has {preds.num_exits} exits but the model has {model.num_exits}; "
                          "record it from this model with msdnet predict")
    preds = replace(preds, exit_macs=exit_macs.astype(np.float64))   # this run's cost model
    point = BudgetedEvaluator(preds, None, confidence, val_name=str(val)).at_budget(budget)
    return point.thresholds
