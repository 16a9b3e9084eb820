"""The "staircase" figure: a single intermediate classifier inserted at different depths.

Input tables (one row per training run):

``runs``: networks with ONE intermediate classifier. Columns:
    family                 str    network family (e.g. resnet, densenet, msdnet)
    seed                   int    training seed
    location               float  relative depth of the intermediate classifier, in (0, 1)
    intermediate_accuracy  float  top-1 % of the intermediate classifier
    final_accuracy         float  top-1 % of the final classifier of the same run
``baseline``: the same networks WITHOUT an intermediate classifier. Columns:
    family, seed, final_accuracy

Output, ``staircase_table(runs, baseline)`` (long format), one row per
(family, location, metric). Columns:
    family     str
    location   float
    metric     str    "relative_intermediate" = intermediate_accuracy / final_accuracy of the
                      same run; "relative_final" = final_accuracy / B_family where B_family is
                      the mean over seeds of the family's baseline final_accuracy
    mean       float  mean over seeds of the per-run ratio (a ratio, not %: 1.0 = equal)
    std        float  sample standard deviation over seeds (ddof = 1; NaN with one seed)
    n_seeds    int    number of runs averaged

Rows are sorted by family, metric, location. A family without a baseline, a location outside
(0, 1), a zero accuracy in a denominator, a missing column or a duplicated
(family, seed, location) run is a DataError.

Helpers build the input rows from predictions files: ``run_row(preds, family, seed, location)``
(a 2-exit model: exit 1 = intermediate, exit 2 = final) and ``baseline_row(preds, family, seed)``
(last exit = final). Arguments left as None are read from ``meta["family"]``, ``meta["seed"]``,
``meta["location"]``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ...core.errors import DataError
from ...inference.predictions import Predictions
from .common import exit_accuracy

RUN_COLUMNS = ["family", "seed", "location", "intermediate_accuracy", "final_accuracy"]
BASELINE_COLUMNS = ["family", "seed", "final_accuracy"]
COLUMNS = ["family", "location", "metric", "mean", "std", "n_seeds"]


def _need(df: pd.DataFrame, cols: list[str], what: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise DataError(f"{what} table lacks column(s) {', '.join(missing)}; expected {', '.join(cols)}")


def staircase_table(runs: pd.DataFrame, baseline: pd.DataFrame) -> pd.DataFrame:
    """Relative accuracies per family and location, mean and std over seeds (see module doc)."""
    _need(runs, RUN_COLUMNS, "runs")
    _need(baseline, BASELINE_COLUMNS, "baseline")
    runs = runs[RUN_COLUMNS].copy()
    runs["family"] = runs["family"].astype(str)
    runs["location"] = runs["location"].astype(float)
    base = baseline[BASELINE_COLUMNS].copy()
    base["family"] = base["family"].astype(str)
    bad = runs[~((runs["location"] > 0) & (runs["location"] < 1))]
    if len(bad):
        raise DataError(f"location must lie in (0, 1) (a fraction of depth); got {bad['location'].tolist()} "
                        f"for family {bad['family'].iloc[0]}")
    dup = runs.duplicated(["family", "seed", "location"], keep=False)
    if dup.any():
        r = runs[dup].iloc[0]
        raise DataError(f"run family={r['family']} seed={r['seed']} location={r['location']} is given "
                        "more than once")
    if (runs["final_accuracy"] <= 0).any():
        r = runs[runs["final_accuracy"] <= 0].iloc[0]
        raise DataError(f"run family={r['family']} seed={r['seed']} location={r['location']} has final "
                        "accuracy 0; the intermediate/final ratio is undefined")
    base_mean = base.groupby("family")["final_accuracy"].mean()
    missing = sorted(set(runs["family"]) - set(base_mean.index))
    if missing:
        raise DataError(f"no baseline (network without the intermediate classifier) for famil"
                        f"{'y' if len(missing) == 1 else 'ies'} {', '.join(missing)}")
    if (base_mean <= 0).any():
        raise DataError(f"baseline final accuracy of {base_mean[base_mean <= 0].index[0]} is 0; "
                        "the relative final accuracy is undefined")
    runs["relative_intermediate"] = runs["intermediate_accuracy"] / runs["final_accuracy"]
    runs["relative_final"] = runs["final_accuracy"] / runs["family"].map(base_mean)
    long = runs.melt(id_vars=["family", "seed", "location"],
                     value_vars=["relative_intermediate", "relative_final"], var_name="metric")
    out = (long.groupby(["family", "metric", "location"])["value"]
           .agg(mean="mean", std=lambda v: v.std(ddof=1), n_seeds="count").reset_index())
    out["n_seeds"] = out["n_seeds"].astype(np.int64)
    out = out.sort_values(["family", "metric", "location"], kind="stable").reset_index(drop=True)
    return out[COLUMNS]


def _from_meta(preds: Predictions, key: str, value: Any, source: str) -> Any:
    if value is not None:
        return value
    if isinstance(preds.meta, dict) and preds.meta.get(key) is not None:
        return preds.meta[key]
    raise DataError(f"{source}: no {key} given and none in its meta; pass it explicitly")


def run_row(preds: Predictions, family: str | None = None, seed: int | None = None,
            location: float | None = None, source: str = "<predictions>") -> dict[str, Any]:
    """The runs-table row of a 2-exit model (exit 1 intermediate, exit 2 final)."""
    if preds.num_exits != 2:
        raise DataError(f"{source} has {preds.num_exits} exits; a staircase run has exactly 2 "
                        "(the intermediate classifier and the final one)")
    acc = exit_accuracy(preds)
    return {"family": str(_from_meta(preds, "family", family, source)),
            "seed": int(_from_meta(preds, "seed", seed, source)),
            "location": float(_from_meta(preds, "location", location, source)),
            "intermediate_accuracy": float(acc[0]), "final_accuracy": float(acc[-1])}


def baseline_row(preds: Predictions, family: str | None = None, seed: int | None = None,
                 source: str = "<predictions>") -> dict[str, Any]:
    """The baseline-table row of a network without intermediate classifier (its last exit)."""
    acc = exit_accuracy(preds)
    return {"family": str(_from_meta(preds, "family", family, source)),
            "seed": int(_from_meta(preds, "seed", seed, source)),
            "final_accuracy": float(acc[-1])}
