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

from ..core.errors import DataError
from ..evaluation.analysis.common import STRING_COLUMNS, read_csv_strict
from . import style

ANYTIME_COLUMNS = ["model", "seed", "exit", "macs", "accuracy"]
ANYTIME_OPTIONAL = ["params"]
BUDGETED_COLUMNS = ["model", "seed", "kind", "avg_macs", "accuracy"]
BUDGETED_OPTIONAL = ["p", "val_avg_macs", "val_accuracy", "family"]
BUDGETED_KINDS = ("dynamic", "single")
REFERENCE_COLUMNS = ["dataset", "curve", "macs_millions", "top1_percent", "figure"]


# -- tables ------------------------------------------------------------------------------------

def read_table(path: str | Path, what: str = "table") -> pd.DataFrame:
    """A CSV table read strictly (:func:`msdnet.evaluation.analysis.common.read_csv_strict`: names
    stay strings, a row cut short is refused); a missing, unreadable or empty file is a one-line
    DataError naming it."""
    return read_csv_strict(path, what)


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
        values = pd.to_numeric(df[col], errors="coerce").astype(float)
        bad = ~np.isfinite(values.to_numpy())
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(f"{source}: row {i + 1} (line {i + 2}): column {col} holds "
                            f"{df[col].iloc[i]!r}, not a finite number")
        df[col] = values
    for col in columns:
        if col in STRING_COLUMNS and df[col].dtype == object:
            empty = (df[col].isna() | (df[col].astype(str).str.strip() == "")).to_numpy()
            if empty.any():
                i = int(np.flatnonzero(empty)[0])
                raise DataError(f"{source}: row {i + 1} (line {i + 2}): column {col} is empty")
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
#
# Every curve, marker and paper curve drawn here carries its legend name as the line's ``gid``:
# :func:`finish_macs` reads the drawn points back by it (outliers, legend placement).

def _band(ax: Axes, x, y, s, c) -> None:
    s = np.asarray(s, dtype=float)
    if np.isfinite(s).any():
        s = np.nan_to_num(s, nan=0.0)
        ax.fill_between(x, np.asarray(y) - s, np.asarray(y) + s, color=c, alpha=0.2, linewidth=0)


def draw_anytime(ax: Axes, df: pd.DataFrame) -> pd.DataFrame:
    """Accuracy vs MACs, a line per model with a marker per exit and a +-std band over seeds;
    a single-exit model is a marker with an error bar. Returns the means drawn. The caller
    finishes the axes last (:func:`finish_macs`), once every curve is on them."""
    means = anytime_mean(df)
    for model in model_order(means):
        m = means[means["model"] == model]
        c, mk, label = style.colour(model), style.marker(model), style.display_name(model)
        if len(m) == 1:
            eb = ax.errorbar(m["macs"], m["accuracy"], yerr=np.nan_to_num(m["accuracy_std"].to_numpy()),
                             color=c, marker=mk, markersize=8, linestyle="none", capsize=3, label=label)
            eb.lines[0].set_gid(label)
            continue
        ax.plot(m["macs"], m["accuracy"], color=c, marker=mk, label=label, gid=label)
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
        c, mk, label = style.colour(model), style.marker(model), style.display_name(model)
        every = max(1, len(m) // 20)
        ax.plot(m["avg_macs"], m["accuracy"], color=c, marker=mk, markersize=4, markevery=every,
                label=label, gid=label)
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
            c, mk, label = style.colour(family), style.marker(family), style.display_name(family)
            eb = ax.errorbar(rows["avg_macs"], rows["accuracy"],
                             xerr=np.nan_to_num(rows["avg_macs_std"].to_numpy(float)),
                             yerr=np.nan_to_num(rows["accuracy_std"].to_numpy(float)),
                             color=c, marker=mk, markersize=7, capsize=2,
                             linestyle=":" if len(rows) > 1 else "none", label=label)
            eb.lines[0].set_gid(label)
            if len(rows) > 1 or family != rows.index[0]:
                for name, r in rows.iterrows():
                    ax.annotate(style.display_name(name), (r["avg_macs"], r["accuracy"]),
                                textcoords="offset points", xytext=(4, -10), fontsize=7, color=c)
    return drawn


def seed_counts(drawn) -> list[int]:
    """The number of seeds behind each curve or point drawn (``draw_anytime``'s or
    ``draw_budgeted``'s return value; a curve counts its best-covered point)."""
    frames = [drawn] if isinstance(drawn, pd.DataFrame) else list(drawn.values())
    out = []
    for f in frames:
        if "model" in f.columns:
            out += [int(n) for n in f.groupby("model", sort=False)["n_seeds"].max()]
        elif len(f):
            out += [int(f["n_seeds"].max())]
    return out


def seeds_note(counts) -> str | None:
    """The legend's note on the spread: "mean ± std over 3 seeds" (bands and error bars), "mean
    ± std over 2-3 seeds", or "one seed: no spread shown"; None when nothing was drawn."""
    counts = [int(n) for n in counts if n and n > 0]
    if not counts:
        return None
    lo, hi = min(counts), max(counts)
    if hi <= 1:
        return "one seed: no spread shown"
    n = f"{hi}" if lo == hi else f"{lo}–{hi}"
    return f"mean ± std over {n} seeds"


def label_axes(ax: Axes, x_label: str, unit: tuple[float, str] | None = None) -> None:
    """x in MMACs (GMACs from 1e9 on, or ``unit``) fitted to the data drawn, y in top-1 %."""
    xmax = max(abs(v) for v in ax.get_xlim()) if unit is None else None
    style.macs_axis(ax, x_label, xmax=xmax, unit=unit)
    style.accuracy_axis(ax)


ANYTIME_X = "budget (MACs per image)"
BUDGETED_X = "average budget (MACs per image)"


# -- outliers ----------------------------------------------------------------------------------

OUTLIER_GAP = 3.0          # a cost this many times the next lower one starts an outlier
OUTLIER_SHARE = 0.25       # at most this share of the points (and half of the curves)


def drawn_points(ax: Axes) -> dict[str, tuple[tuple, np.ndarray, np.ndarray]]:
    """The points of every named curve on ``ax`` (lines carrying a ``gid``): name -> (colour,
    x, y), a curve's segments (the paper's "continued" ones) merged."""
    out: dict[str, tuple[tuple, list, list]] = {}
    for ln in ax.get_lines():
        name = ln.get_gid()
        if not name:
            continue
        xy = np.ma.filled(np.ma.asarray(ln.get_xydata(), dtype=float), np.nan).reshape(-1, 2)
        xy = xy[np.isfinite(xy).all(axis=1)]
        c, xs, ys = out.setdefault(name, (ln.get_color(), [], []))
        xs += list(xy[:, 0])
        ys += list(xy[:, 1])
    return {k: (c, np.asarray(x, float), np.asarray(y, float)) for k, (c, x, y) in out.items()}


def outlier_cut(points: dict[str, tuple[tuple, np.ndarray, np.ndarray]],
                gap: float = OUTLIER_GAP, share: float = OUTLIER_SHARE) -> float | None:
    """The largest cost of the bulk of the curves, or None when nothing stands out.

    Costs sorted, the lowest jump by a factor >= ``gap`` above which lie at most ``share`` of
    all points and at most half of the curves (at least one of each) starts the outliers:
    e.g. a Wide ResNet at 10x the cost of every other network."""
    allx = np.concatenate([x for _, x, _ in points.values()] or [np.empty(0)])
    allx = allx[np.isfinite(allx) & (allx > 0)]
    xs = np.unique(allx)
    if len(xs) < 3:
        return None
    n_items = len(points)
    for k in range(1, len(xs)):
        if xs[k] / xs[k - 1] < gap:
            continue
        above = int((allx >= xs[k]).sum())
        items = sum(1 for _, x, _ in points.values() if (x >= xs[k]).any())
        if above <= max(1, share * len(allx)) and items <= max(1, n_items // 2):
            return float(xs[k - 1])
    return None


def clip_outliers(ax: Axes) -> list[tuple[str, tuple, float, float, int]]:
    """Clip the x range of ``ax`` to the bulk of its curves (:func:`outlier_cut`); returns the
    outliers to mark: (name, colour, x, y, points beyond the edge) per curve, its best point."""
    points = drawn_points(ax)
    cut = outlier_cut(points)
    if cut is None:
        return []
    inside = np.concatenate([x[x <= cut] for _, x, _ in points.values()])
    lo = float(inside.min()) if len(inside) else 0.0
    span = cut - lo if cut > lo else abs(cut) * 0.2 or 1.0
    ax.set_xlim(lo - 0.05 * span, cut + 0.05 * span)
    out = []
    for name, (c, x, y) in points.items():
        beyond = x > cut
        if beyond.any():
            i = int(np.flatnonzero(beyond)[np.argmax(y[beyond])])
            out.append((name, c, float(x[i]), float(y[i]), int(beyond.sum())))
    return out


def mark_outliers(ax: Axes, outliers, unit: tuple[float, str]) -> None:
    """An arrow at the right edge of ``ax`` per outlier, at its accuracy, with its cost (in the
    axis' unit) and accuracy: "Wide ResNet: 312 MMACs, 71.2 %"."""
    if not outliers:
        return
    scale, name = unit
    lo, hi = ax.get_ylim()
    step = 0.06 * (hi - lo)
    last = None
    for label, c, x, y, n in sorted(outliers, key=lambda o: -o[3]):
        ty = y if last is None else min(y, last - step)
        last = ty
        more = f" (+{n - 1} more)" if n > 1 else ""
        text = f"{label}: {x / scale:.4g} {name}, {y:.1f} %{more}"
        ax.annotate(text, xy=(1.0, y), xycoords=("axes fraction", "data"),
                    xytext=(0.93, ty), textcoords=("axes fraction", "data"), ha="right",
                    va="center", fontsize=7, color=c, annotation_clip=False,
                    bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "none",
                          "alpha": 0.8},
                    arrowprops={"arrowstyle": "-|>", "color": c, "shrinkA": 0, "shrinkB": 0})


def finish_macs(fig, panels, notes=None) -> tuple[float, str]:
    """Finish every MACs panel of ``fig`` once all is drawn and titled: clip each panel's x range
    to the bulk of its curves and mark the outliers at the edge; one MACs unit for the whole
    figure (MMACs, GMACs when the largest visible cost is >= 1e9); top-1 % on y; legends where
    they cover no data, titled with the panel's notes. ``panels``: (axes, x label) pairs;
    ``notes``: axes -> lines of its legend's note. Returns the unit."""
    notes = notes or {}
    marks = {ax: clip_outliers(ax) for ax, _ in panels}
    visible = []                     # the largest cost drawn inside each panel's x range
    for ax, _ in panels:
        hi = ax.get_xlim()[1]
        xs = [x[x <= hi] for _, x, _ in drawn_points(ax).values()]
        xs = np.concatenate(xs) if xs else np.empty(0)
        visible.append(float(np.abs(xs).max()) if len(xs) else abs(hi))
    unit = style.macs_unit(max(visible, default=1.0))
    for ax, x_label in panels:
        label_axes(ax, x_label, unit=unit)
        mark_outliers(ax, marks[ax], unit)
    for ax, _ in panels:
        lines = [n for n in notes.get(ax, []) if n]
        style.legend(ax, title="\n".join(lines) or None)
    return unit


# -- the paper's points ------------------------------------------------------------------------

def known_reference_figures() -> tuple[str, ...]:
    """The figure ids that draw the paper's points (a MACs axis)."""
    from .registry import FIGURES

    return tuple(f.id for f in FIGURES.values() if f.macs_axis)


def load_reference(path: str | Path, dataset: str, figure: str | None = None) -> pd.DataFrame:
    """The paper's points of ``dataset`` (exact match; none is an empty table, not an error).

    Columns: dataset, curve, macs_millions, top1_percent, figure (``reference_points.csv``;
    every column required). ``figure`` names the one figure id a row belongs to; a row with an
    empty ``figure`` belongs to no figure, and an unknown id is a DataError. Given ``figure``,
    only that figure's rows are returned (strict equality); without it, all of the data set's
    rows (the figure functions keep their own, :func:`select_reference`). The result's
    ``attrs`` hold ``dataset`` and ``figure``, for the note a figure draws when it is empty.
    """
    src = f"reference points {path}"
    df = check_table(read_table(path, "reference points"), REFERENCE_COLUMNS, src,
                     numeric=["macs_millions", "top1_percent"])
    fig = df["figure"].where(df["figure"].notna(), "").astype(str).str.strip()
    known = known_reference_figures()
    bad = sorted(set(fig) - set(known) - {""})
    if bad:
        raise DataError(f"{src}: column figure holds {bad[0]!r}; use one of {', '.join(known)} "
                        "(or leave it empty: the row belongs to no figure)")
    df["figure"] = fig
    df = df[df["dataset"].astype(str) == str(dataset)]
    if figure is not None:
        df = df[df["figure"] == str(figure)]
    df = df.reset_index(drop=True)
    df.attrs = {"dataset": str(dataset), "figure": figure}
    return df


def select_reference(ref: pd.DataFrame | None, figure: str) -> pd.DataFrame | None:
    """The rows of ``ref`` that belong to ``figure`` when it has a ``figure`` column (strict: an
    empty cell belongs to no figure); ``ref`` as given otherwise (the caller chose the rows)."""
    if ref is None or "figure" not in ref.columns:
        return ref
    keep = ref["figure"].where(ref["figure"].notna(), "").astype(str).str.strip() == figure
    out = ref[keep].reset_index(drop=True)
    out.attrs = {**ref.attrs, "figure": figure}
    return out


def reference_note(ref: pd.DataFrame | None) -> str | None:
    """The note a figure shows when it was given the paper's points but has none: "no published
    points for imagenet in this figure"; None when points were drawn or none were asked for."""
    if ref is None or not ref.empty:
        return None
    dataset = ref.attrs.get("dataset")
    return f"no published points for {dataset} in this figure" if dataset else \
        "no published points in this figure"


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
                markerfacecolor="none", markeredgewidth=1.1, label=label, zorder=1.5,
                gid=style.paper_label(base))
        n += 1
    return n


# -- every curve the spec names ----------------------------------------------------------------

def check_complete(tables: dict[str, pd.DataFrame], figure_spec: dict,
                   sources: dict[str, str] | None = None) -> None:
    """Refuse (one-line DataError) tables that lack a curve or a seed the figure's spec (its key
    file: ``{"figure", "tables": [{"table", "section", "sources"}, ...]}``) names: a figure
    drawn from them would silently drop it."""
    from .registry import TABLES

    for tspec in figure_spec.get("tables", []):
        name = tspec.get("table")
        if name not in tables:
            raise DataError(f"the figure's spec names table {name!r}, which was not given")
        df, src = tables[name], (sources or {}).get(name, f"{name} table")
        _, table = TABLES[name]
        for column, value, seed in table.expected(tspec):
            if column not in df.columns:
                raise DataError(f"{src} lacks column {column}")
            rows = df[df[column].astype(str) == value]
            if seed is not None and "seed" in df.columns:
                rows = rows[pd.to_numeric(rows["seed"], errors="coerce") == seed]
            if rows.empty:
                what = f"{value!r}" + (f" seed {seed}" if seed is not None else "")
                raise DataError(f"{src} has no rows of {what}, which the figure's spec names; "
                                f"rebuild the table (snakemake --forcerun table) instead of drawing "
                                f"a figure without it")
