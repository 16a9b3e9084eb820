"""Beyond the paper: exit combiners and calibration (``msdnet.evaluation.analysis.combiners``).

Four figures, each a registry entry (``msdnet.figures.registry``):

``anytime-combiners`` (table ``combiners``, columns model, seed, combiner, calibrated, exit,
macs, accuracy, ece_percent, nll): top-1 % against the MACs up to each exit, a line per combiner
(mean +- std band over seeds); one panel without and one with per-exit temperature scaling.

``monotonicity`` (table ``monotonicity``, columns model, seed, combiner, calibrated, epsilon,
decrease_percent): the % of test images whose true-class probability falls by more than epsilon
between two exits, against epsilon, a line per combiner; the same two panels.

``calibration`` (tables ``calibration``: model, seed, exit, macs, temperature, ece_percent,
ece_percent_calibrated, nll, nll_calibrated; and ``reliability``: model, seed, exit, calibrated,
bin, lower, upper, count, confidence, accuracy): ECE % per exit before (dashed) and after (solid)
temperature scaling; the reliability diagram (accuracy against confidence per bin, seeds pooled)
of the first and the last exit of the first model.

``budgeted-combiners`` (table ``budgeted_combiners``: the budgeted table's columns plus
combiner): the paper's budgeted curve with the thresholds on each combiner's confidence.

With several models in a table, a curve is named "<model>: <combiner>".
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..core.errors import DataError
from . import style
from .common import (ANYTIME_X, BUDGETED_X, check_table, draw_anytime, draw_budgeted,
                     finish_macs, model_order, seed_counts, seeds_note)

COMBINERS_COLUMNS = ["model", "seed", "combiner", "calibrated", "exit", "macs", "accuracy"]
MONOTONICITY_COLUMNS = ["model", "seed", "combiner", "calibrated", "epsilon", "decrease_percent"]
CALIBRATION_COLUMNS = ["model", "seed", "exit", "macs", "ece_percent", "ece_percent_calibrated"]
RELIABILITY_COLUMNS = ["model", "seed", "exit", "calibrated", "count", "confidence", "accuracy"]
BUDGETED_COMBINERS_COLUMNS = ["model", "seed", "combiner", "avg_macs", "accuracy"]
PANELS = {False: "as trained", True: "temperature-scaled per exit"}


def _bool(values: pd.Series, source: str) -> pd.Series:
    text = values.astype(str).str.strip().str.lower()
    bad = sorted(set(text) - {"true", "false", "1", "0", "1.0", "0.0"})
    if bad:
        raise DataError(f"{source}: column calibrated holds {bad[0]!r}; use True or False")
    return text.isin(["true", "1", "1.0"])


def _curve_names(df: pd.DataFrame) -> pd.Series:
    """The combiner alone with one model, "<model>: <combiner>" with several."""
    if df["model"].astype(str).nunique() == 1:
        return df["combiner"].astype(str)
    return df["model"].astype(str) + ": " + df["combiner"].astype(str)


def anytime_combiners_figure(table: pd.DataFrame, title: str | None = None,
                             source: str = "combiners table") -> Figure:
    df = check_table(table, COMBINERS_COLUMNS, source, numeric=["exit", "macs", "accuracy"])
    df["calibrated"] = _bool(df["calibrated"], source)
    df["model"] = _curve_names(df)
    panels = sorted(set(df["calibrated"]))
    with style.theme():
        fig, axes = style.new_figure(ncols=len(panels), width=5.2)
        notes = {}
        for ax, cal in zip(axes, panels):
            means = draw_anytime(ax, df[df["calibrated"] == cal])
            ax.set_title(PANELS[cal])
            notes[ax] = [seeds_note(seed_counts(means))]
        finish_macs(fig, [(ax, ANYTIME_X) for ax in axes], notes)
        fig.suptitle("Anytime prediction: combining exits" if title is None else title)
    return fig


def _mean_std(df: pd.DataFrame, keys: list[str], value: str) -> pd.DataFrame:
    return (df.groupby(keys, sort=False)[value]
            .agg(mean="mean", std=lambda v: v.std(ddof=1) if len(v) > 1 else np.nan,
                 n_seeds="count").reset_index())


def monotonicity_figure(table: pd.DataFrame, title: str | None = None,
                        source: str = "monotonicity table") -> Figure:
    df = check_table(table, MONOTONICITY_COLUMNS, source, numeric=["epsilon", "decrease_percent"])
    df["calibrated"] = _bool(df["calibrated"], source)
    df["curve"] = _curve_names(df)
    panels = sorted(set(df["calibrated"]))
    with style.theme():
        fig, axes = style.new_figure(ncols=len(panels), width=5.2)
        for ax, cal in zip(axes, panels):
            d = df[df["calibrated"] == cal]
            m = _mean_std(d, ["curve", "epsilon"], "decrease_percent")
            for curve in model_order(m, "curve"):
                c = m[m["curve"] == curve].sort_values("epsilon")
                colour = style.colour(curve)
                ax.plot(c["epsilon"], c["mean"], color=colour, marker=style.marker(curve),
                        label=curve, gid=curve)
                s = np.nan_to_num(c["std"].to_numpy(float))
                if s.any():
                    ax.fill_between(c["epsilon"], c["mean"] - s, c["mean"] + s, color=colour,
                                    alpha=0.2, linewidth=0)
            ax.set_xscale("log")
            ax.set_xlabel("ε")
            ax.set_ylabel("images whose p(true class) drops > ε (%)")
            ax.set_title(PANELS[cal])
            style.legend(ax, title=seeds_note(m.groupby("curve")["n_seeds"].max().tolist()))
        fig.suptitle("Conditional monotonicity" if title is None else title)
    return fig


_EXIT_COLOURS = (style.colour("softmax"), style.colour("product"))


def calibration_figure(calibration: pd.DataFrame, reliability: pd.DataFrame,
                       title: str | None = None, source: str = "calibration table",
                       reliability_source: str = "reliability table") -> Figure:
    cal = check_table(calibration, CALIBRATION_COLUMNS, source,
                      numeric=["exit", "macs", "ece_percent", "ece_percent_calibrated"])
    rel = check_table(reliability, RELIABILITY_COLUMNS, reliability_source,
                      numeric=["exit", "count", "confidence", "accuracy"])
    rel["calibrated"] = _bool(rel["calibrated"], reliability_source)
    cal["model"] = cal["model"].astype(str)
    with style.theme():
        fig, (left, right) = style.new_figure(ncols=2, width=5.2)
        counts = []
        for model in model_order(cal):
            d = cal[cal["model"] == model]
            colour, mk = style.colour(model), style.marker(model)
            for col, dashed, what in (("ece_percent", True, "as trained"),
                                      ("ece_percent_calibrated", False, "temperature-scaled")):
                m = _mean_std(d, ["exit"], col).sort_values("exit")
                x = d.groupby("exit")["macs"].mean().loc[m["exit"]].to_numpy(float)
                name = f"{style.display_name(model)}, {what}"
                ax_line = left.plot(x, m["mean"], color=colour, marker=mk,
                                    linestyle="--" if dashed else "-",
                                    markerfacecolor="none" if dashed else colour, label=name)[0]
                ax_line.set_gid(name)
                s = np.nan_to_num(m["std"].to_numpy(float))
                if s.any():
                    left.fill_between(x, m["mean"] - s, m["mean"] + s, color=colour, alpha=0.15,
                                      linewidth=0)
                counts.append(int(m["n_seeds"].max()))
        left.set_title("expected calibration error per exit")
        style.macs_axis(left, ANYTIME_X)
        left.set_ylabel("ECE (%, 15 bins)")
        style.legend(left, title=seeds_note(counts))
        right.plot([0, 1], [0, 100], color="0.5", linewidth=0.8, linestyle=":", label="perfect")
        first = model_order(rel)[0] if len(rel) else None
        r = rel[rel["model"].astype(str) == str(first)]
        exits = sorted(set(r["exit"].astype(int)))
        for i, k in enumerate(exits):
            for calibrated in (False, True):
                d = r[(r["exit"] == k) & (r["calibrated"] == calibrated) & (r["count"] > 0)]
                if d.empty:
                    continue
                w = d["count"]
                pooled = (d.assign(cw=d["confidence"] * w, aw=d["accuracy"] * w)
                          .groupby("bin" if "bin" in d.columns else "confidence")
                          .agg(cw=("cw", "sum"), aw=("aw", "sum"), n=("count", "sum")))
                x, y = pooled["cw"] / pooled["n"], pooled["aw"] / pooled["n"]
                colour = _EXIT_COLOURS[min(i, 1)]
                right.plot(x, y, color=colour, marker="o" if calibrated else "s",
                           linestyle="-" if calibrated else "--",
                           markerfacecolor=colour if calibrated else "none",
                           label=f"exit {k}, {PANELS[calibrated]}")
        right.set_xlim(0, 1)
        right.set_ylim(0, 100)
        right.set_xlabel("confidence (largest probability)")
        right.set_ylabel("accuracy of the bin (%)")
        right.set_title(f"reliability diagram{'' if first is None else f' ({style.display_name(first)})'}")
        style.legend(right, title="seeds pooled")
        fig.suptitle("Calibration of the exits" if title is None else title)
    return fig


def budgeted_combiners_figure(table: pd.DataFrame, title: str | None = None,
                              source: str = "budgeted_combiners table") -> Figure:
    df = check_table(table, BUDGETED_COMBINERS_COLUMNS, source, numeric=["avg_macs", "accuracy"])
    df["model"] = _curve_names(df)
    df["kind"] = "dynamic"
    with style.theme():
        fig, (ax,) = style.new_figure()
        drawn = draw_budgeted(ax, df)
        ax.set_title("Budgeted batch classification: combining exits" if title is None else title)
        finish_macs(fig, [(ax, BUDGETED_X)], {ax: [seeds_note(seed_counts(drawn))]})
    return fig


# -- the registry's entry points -------------------------------------------------------------------

def draw_anytime_combiners(tables, reference=None, title=None, options=None, sources=None) -> Figure:
    sources = sources or {}
    return anytime_combiners_figure(tables["combiners"], title=title,
                                    source=sources.get("combiners", "combiners table"))


def draw_monotonicity(tables, reference=None, title=None, options=None, sources=None) -> Figure:
    sources = sources or {}
    return monotonicity_figure(tables["monotonicity"], title=title,
                               source=sources.get("monotonicity", "monotonicity table"))


def draw_calibration(tables, reference=None, title=None, options=None, sources=None) -> Figure:
    sources = sources or {}
    return calibration_figure(tables["calibration"], tables["reliability"], title=title,
                              source=sources.get("calibration", "calibration table"),
                              reliability_source=sources.get("reliability", "reliability table"))


def draw_budgeted_combiners(tables, reference=None, title=None, options=None, sources=None) -> Figure:
    sources = sources or {}
    return budgeted_combiners_figure(tables["budgeted_combiners"], title=title,
                                     source=sources.get("budgeted_combiners",
                                                        "budgeted_combiners table"))
