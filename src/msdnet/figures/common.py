"""Shared by the figure modules: reading and checking tables, means over seeds, drawing the
anytime and budgeted panels, and the paper's points.

Means over seeds (a figure that claims a difference shows the mean and the spread):

* anytime (a point per exit): per (model, exit), the mean and sample std (ddof 1) over seeds of
  ``accuracy``; ``macs`` is the mean too (it is the same for every seed of a model).
* budgeted, dynamic curves: the seeds' curves do not share their x values (the average cost of a
  swept p depends on the seed's confidences), so each seed's curve (sorted by ``avg_macs``) is
  linearly interpolated onto a common grid: the union of every seed's ``avg_macs`` that lies
  inside EVERY seed's range (no extrapolation). The mean and std of the interpolated accuracies
  are drawn at those grid points. This works whatever the points are (a p sweep, target budgets,
  an envelope); averaging "per p" would not. If the seeds' ranges do not overlap, the curve is
  drawn over the union of grid points with the seeds available at each point.
* budgeted, single networks: mean +- std over seeds of ``avg_macs`` and ``accuracy``.

With one seed the std is NaN and only the line (or marker) is drawn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from ..errors import DataError
from . import style

ANYTIME_COLUMNS = ["model", "seed", "exit", "macs", "accuracy"]
ANYTIME_OPTIONAL = ["params"]
BUDGETED_COLUMNS = ["model", "seed", "kind", "avg_macs", "accuracy"]
BUDGETED_OPTIONAL = ["p", "val_avg_macs", "val_accuracy", "family"]
BUDGETED_KINDS = ("dynamic", "single")
REFERENCE_COLUMNS = ["dataset", "curve", "macs_millions", "top1_percent"]


# -- tables ------------------------------------------------------------------------------------

def read_table(path: str | Path, what: str = "table") -> pd.DataFrame:
    """A CSV table; a missing, unreadable or empty file is a one-line DataError naming it."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what} {path} does not exist; run the step that writes it first")
    try:
        df = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise DataError(f"{what} {path} is empty (no header, no rows)") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{what} {path} is not a readable CSV: {first}") from None
    return df


def check_table(df: pd.DataFrame, columns: Sequence[str], source: str,
                numeric: Sequence[str] = ()) -> pd.DataFrame:
    """``df`` with its columns checked: every one of ``columns`` present (else a DataError naming
    ``source`` and the missing ones), at least one row, ``numeric`` columns numbers."""
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"{source}: expected a table (pandas DataFrame), got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(f"{source} lacks column(s) {', '.join(missing)} "
                        f"(expected {', '.join(columns)})")
    if df.empty:
        raise DataError(f"{source} has no rows")
    df = df.copy()
    for col in numeric:
        values = pd.to_numeric(df[col], errors="coerce")
        bad = values.isna() & df[col].notna()
        if bad.any():
            raise DataError(f"{source}: column {col} holds a non-number: {df[col][bad].iloc[0]!r}")
        df[col] = values.astype(float)
    return df


def model_order(df: pd.DataFrame, column: str = "model") -> list[str]:
    """Models in order of first appearance (the table's writer chooses the legend order)."""
    return list(dict.fromkeys(df[column].astype(str)))


def check_anytime(df: pd.DataFrame, source: str) -> pd.DataFrame:
    df = check_table(df, ANYTIME_COLUMNS, source, numeric=["exit", "macs", "accuracy"])
    df["model"] = df["model"].astype(str)
    return df


def check_budgeted(df: pd.DataFrame, source: str) -> pd.DataFrame:
    df = check_table(df, BUDGETED_COLUMNS, source, numeric=["avg_macs", "accuracy"])
    df["model"] = df["model"].astype(str)
    df["kind"] = df["kind"].astype(str)
    bad = sorted(set(df["kind"]) - set(BUDGETED_KINDS))
    if bad:
        raise DataError(f"{source}: column kind holds {bad[0]!r}; use "
                        f"{' or '.join(BUDGETED_KINDS)}")
    return df


# -- means over seeds --------------------------------------------------------------------------

def _std(values: pd.Series) -> float:
    return float(values.std(ddof=1)) if len(values) > 1 else float("nan")


def anytime_mean(df: pd.DataFrame) -> pd.DataFrame:
    """Per (model, exit): macs, accuracy (means), accuracy_std, n_seeds; models in table order,
    exits ascending."""
    order = {m: i for i, m in enumerate(model_order(df))}
    out = (df.groupby(["model", "exit"], sort=False)
           .agg(macs=("macs", "mean"), accuracy=("accuracy", "mean"),
                accuracy_std=("accuracy", _std), n_seeds=("seed", "nunique"))
           .reset_index())
    out["_o"] = out["model"].map(order)
    return out.sort_values(["_o", "exit"], kind="stable").drop(columns="_o").reset_index(drop=True)


def mean_curve(points: pd.DataFrame, x: str = "avg_macs", y: str = "accuracy") -> pd.DataFrame:
    """Mean and std over seeds of one model's curves (the interpolation in the module doc).

    Returns columns x, y, ``{y}_std`` and ``n_seeds`` (seeds covering each grid point), sorted by x.
    """
    curves = []
    for _seed, g in points.groupby("seed", sort=True):
        g = g[[x, y]].dropna().groupby(x, as_index=False)[y].mean().sort_values(x)
        if len(g):
            curves.append((g[x].to_numpy(float), g[y].to_numpy(float)))
    if not curves:
        return pd.DataFrame(columns=[x, y, f"{y}_std", "n_seeds"])
    if len(curves) == 1:
        xs, ys = curves[0]
        return pd.DataFrame({x: xs, y: ys, f"{y}_std": np.nan, "n_seeds": 1})
    grid = np.unique(np.concatenate([c[0] for c in curves]))
    lo, hi = max(c[0][0] for c in curves), min(c[0][-1] for c in curves)
    inside = grid[(grid >= lo) & (grid <= hi)]
    if len(inside):
        grid = inside
    vals = np.full((len(curves), len(grid)), np.nan)
    for i, (xs, ys) in enumerate(curves):
        ok = (grid >= xs[0]) & (grid <= xs[-1])
        vals[i, ok] = np.interp(grid[ok], xs, ys)
    count = np.sum(~np.isnan(vals), axis=0)
    mean = np.array([col[~np.isnan(col)].mean() for col in vals.T])
    std = np.array([col[~np.isnan(col)].std(ddof=1) if n > 1 else np.nan
                    for col, n in zip(vals.T, count)])
    return pd.DataFrame({x: grid, y: mean, f"{y}_std": std, "n_seeds": count})


def single_mean(points: pd.DataFrame) -> pd.Series:
    """Mean and std over seeds of a single network's point."""
    return pd.Series({"avg_macs": points["avg_macs"].mean(), "avg_macs_std": _std(points["avg_macs"]),
                      "accuracy": points["accuracy"].mean(), "accuracy_std": _std(points["accuracy"]),
                      "n_seeds": points["seed"].nunique()})


# -- drawing -----------------------------------------------------------------------------------

def _band(ax: Axes, x, y, s, c) -> None:
    s = np.asarray(s, dtype=float)
    if np.isfinite(s).any():
        s = np.nan_to_num(s, nan=0.0)
        ax.fill_between(x, np.asarray(y) - s, np.asarray(y) + s, color=c, alpha=0.2, linewidth=0)


def draw_anytime(ax: Axes, df: pd.DataFrame) -> pd.DataFrame:
    """Accuracy vs MACs, a line per model with a marker per exit and a +-std band over seeds;
    a single-exit model is a marker with an error bar. Returns the means drawn. The caller
    labels the axes last (:func:`label_axes`), once every curve is on them."""
    means = anytime_mean(df)
    for model in model_order(means):
        m = means[means["model"] == model]
        c, mk, label = style.colour(model), style.marker(model), style.display_name(model)
        if len(m) == 1:
            ax.errorbar(m["macs"], m["accuracy"], yerr=np.nan_to_num(m["accuracy_std"].to_numpy()),
                        color=c, marker=mk, markersize=8, linestyle="none", capsize=3, label=label)
            continue
        ax.plot(m["macs"], m["accuracy"], color=c, marker=mk, label=label)
        _band(ax, m["macs"], m["accuracy"], m["accuracy_std"], c)
    return means


def draw_budgeted(ax: Axes, df: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Accuracy vs average MACs per image: dynamic curves as lines (mean +- std band over
    seeds), single networks as markers (+- std error bars in both directions). Single networks
    sharing an optional ``family`` value (e.g. "ResNets") are joined by a dotted line under
    one legend entry, each point annotated with its model name. Returns the means drawn."""
    drawn: dict[str, pd.DataFrame] = {}
    dyn = df[df["kind"] == "dynamic"]
    for model in model_order(dyn):
        m = mean_curve(dyn[dyn["model"] == model])
        drawn[model] = m
        c, mk = style.colour(model), style.marker(model)
        every = max(1, len(m) // 20)
        ax.plot(m["avg_macs"], m["accuracy"], color=c, marker=mk, markersize=4, markevery=every,
                label=style.display_name(model))
        _band(ax, m["avg_macs"], m["accuracy"], m["accuracy_std"], c)
    single = df[df["kind"] == "single"].copy()
    if len(single):
        has_family = "family" in single.columns
        if has_family:
            single["family"] = single["family"].where(single["family"].notna(), single["model"])
        else:
            single["family"] = single["model"]
        single["family"] = single["family"].astype(str)
        for family in model_order(single, "family"):
            f = single[single["family"] == family]
            rows = pd.DataFrame([single_mean(f[f["model"] == mdl]).rename(mdl)
                                 for mdl in model_order(f)]).sort_values("avg_macs")
            drawn[family] = rows
            c, mk = style.colour(family), style.marker(family)
            ax.errorbar(rows["avg_macs"], rows["accuracy"],
                        xerr=np.nan_to_num(rows["avg_macs_std"].to_numpy(float)),
                        yerr=np.nan_to_num(rows["accuracy_std"].to_numpy(float)),
                        color=c, marker=mk, markersize=7, capsize=2,
                        linestyle=":" if len(rows) > 1 else "none", label=style.display_name(family))
            if len(rows) > 1 or family != rows.index[0]:
                for name, r in rows.iterrows():
                    ax.annotate(style.display_name(name), (r["avg_macs"], r["accuracy"]),
                                textcoords="offset points", xytext=(4, -10), fontsize=7, color=c)
    return drawn


def label_axes(ax: Axes, x_label: str) -> None:
    """x in MACs (a power-of-ten factor fitted to the data drawn), y in top-1 %."""
    xmax = float(ax.dataLim.x1) if np.isfinite(ax.dataLim.x1) else None
    style.macs_axis(ax, x_label, xmax=xmax)
    style.accuracy_axis(ax)


ANYTIME_X = "budget (MACs per image)"
BUDGETED_X = "average budget (MACs per image)"


# -- the paper's points ------------------------------------------------------------------------

def load_reference(path: str | Path, dataset: str, figure: str | None = None) -> pd.DataFrame:
    """The paper's points of ``dataset`` (exact match; none is an empty table, not an error).

    Columns: dataset, curve, macs_millions, top1_percent (``reference_points.csv``). An optional
    ``figure`` column restricts rows to one figure id when ``figure`` is given; rows with an
    empty ``figure`` apply to every figure.
    """
    df = check_table(read_table(path, "reference points"), REFERENCE_COLUMNS, f"reference points {path}",
                     numeric=["macs_millions", "top1_percent"])
    df = df[df["dataset"].astype(str) == str(dataset)]
    if figure is not None and "figure" in df.columns:
        df = df[df["figure"].isna() | (df["figure"].astype(str) == figure)]
    return df.reset_index(drop=True)


def draw_reference(ax: Axes, ref: pd.DataFrame | None) -> int:
    """The paper's curves: dashed, hollow markers, the reproduced curve's colour, labelled
    "<curve> (paper)". A "<curve> (continued)" segment shares its curve's style and legend entry.
    A one-point curve is a hollow marker. Returns the number of curves drawn."""
    if ref is None or ref.empty:
        return 0
    check_table(ref, ["curve", "macs_millions", "top1_percent"], "reference points",
                numeric=["macs_millions", "top1_percent"])
    labelled: set[str] = set()
    n = 0
    for curve in model_order(ref, "curve"):
        pts = ref[ref["curve"].astype(str) == curve]
        base = curve[: -len(" (continued)")] if curve.endswith(" (continued)") else curve
        label = style.paper_label(base) if base not in labelled else f"_{curve}"
        labelled.add(base)
        c, mk = style.colour(base), style.marker(base)
        x = pts["macs_millions"].to_numpy(float) * 1e6
        y = pts["top1_percent"].to_numpy(float)
        ax.plot(x, y, color=c, alpha=0.75, linestyle="--" if len(pts) > 1 else "none",
                linewidth=1.1, marker=mk, markersize=5 if len(pts) > 1 else 8,
                markerfacecolor="none", markeredgewidth=1.1, label=label, zorder=1.5)
        n += 1
    return n
