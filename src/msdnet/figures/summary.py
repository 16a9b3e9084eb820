"""Small summary tables for the notebooks, from the same tables the figures draw.

``anytime_summary``: per model: exits, seeds, MACs of the last exit, mean +- std accuracy of the
first and last exits, best mean accuracy over exits.
``anytime_at_budgets``: per model and budget B, the best mean accuracy of an exit with MACs <= B
(what an anytime model can answer when stopped at B); NaN when even exit 1 costs more.
``budgeted_summary``: per model: kind, seeds, MACs range and best mean accuracy.
``common_budgets``: a few budgets inside the MACs range every curve covers.
``budgeted_at_budgets``: per model and budget B, the mean curve's accuracy interpolated at B
(dynamic curves, NaN outside the curve's range); single networks: their mean accuracy when their
mean cost is <= B, else NaN.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from .common import anytime_mean, check_anytime, check_budgeted, mean_curve, model_order, single_mean


def anytime_summary(table: pd.DataFrame, source: str = "anytime table") -> pd.DataFrame:
    df = check_anytime(table, source)
    means = anytime_mean(df)
    rows = []
    for model in model_order(means):
        m = means[means["model"] == model]
        first, last = m.iloc[0], m.iloc[-1]
        rows.append({"model": model, "exits": len(m), "seeds": int(m["n_seeds"].max()),
                     "first_exit_macs": first["macs"], "first_exit_accuracy": first["accuracy"],
                     "last_exit_macs": last["macs"], "last_exit_accuracy": last["accuracy"],
                     "last_exit_accuracy_std": last["accuracy_std"],
                     "best_accuracy": m["accuracy"].max()})
    return pd.DataFrame(rows)


def anytime_at_budgets(table: pd.DataFrame, budgets: Sequence[float],
                       source: str = "anytime table") -> pd.DataFrame:
    means = anytime_mean(check_anytime(table, source))
    out = {}
    for model in model_order(means):
        m = means[means["model"] == model]
        out[model] = [m.loc[m["macs"] <= b, "accuracy"].max() if (m["macs"] <= b).any() else np.nan
                      for b in budgets]
    return pd.DataFrame(out, index=pd.Index([float(b) for b in budgets], name="budget (MACs)")).T


def budgeted_summary(table: pd.DataFrame, source: str = "budgeted table") -> pd.DataFrame:
    df = check_budgeted(table, source)
    rows = []
    for model in model_order(df):
        d = df[df["model"] == model]
        kind = d["kind"].iloc[0]
        curve = mean_curve(d) if kind == "dynamic" else single_mean(d).to_frame().T
        rows.append({"model": model, "kind": kind, "seeds": d["seed"].nunique(),
                     "points": len(curve), "min_avg_macs": curve["avg_macs"].min(),
                     "max_avg_macs": curve["avg_macs"].max(),
                     "best_accuracy": curve["accuracy"].max()})
    return pd.DataFrame(rows)


def budgeted_at_budgets(table: pd.DataFrame, budgets: Sequence[float],
                        source: str = "budgeted table") -> pd.DataFrame:
    df = check_budgeted(table, source)
    out = {}
    for model in model_order(df):
        d = df[df["model"] == model]
        if d["kind"].iloc[0] == "dynamic":
            c = mean_curve(d)
            x, y = c["avg_macs"].to_numpy(float), c["accuracy"].to_numpy(float)
            out[model] = [float(np.interp(b, x, y)) if len(x) and x[0] <= b <= x[-1] else np.nan
                          for b in budgets]
        else:
            s = single_mean(d)
            out[model] = [s["accuracy"] if s["avg_macs"] <= b else np.nan for b in budgets]
    return pd.DataFrame(out, index=pd.Index([float(b) for b in budgets], name="budget (MACs)")).T


def common_budgets(table: pd.DataFrame, x: str = "avg_macs", n: int = 4) -> list[float]:
    """``n`` budgets evenly spaced strictly inside the MACs range that every curve covers (the
    dynamic curves when the table has a ``kind`` column), to 3 significant digits; the whole
    range when the curves do not overlap. For "accuracy at a few budgets" tables."""
    df = table
    if x not in df.columns or "model" not in df.columns:
        return []
    if "kind" in df.columns and (df["kind"] == "dynamic").any():
        df = df[df["kind"] == "dynamic"]
    costs = pd.to_numeric(df[x], errors="coerce")
    per = costs.groupby(df["model"]).agg(["min", "max"]).dropna()
    if per.empty:
        return []
    lo, hi = float(per["min"].max()), float(per["max"].min())
    if not lo < hi:
        lo, hi = float(per["min"].min()), float(per["max"].max())
    grid = np.linspace(lo, hi, n + 2)[1:-1] if lo < hi else np.array([lo])
    return sorted({float(f"{b:.3g}") for b in grid})
