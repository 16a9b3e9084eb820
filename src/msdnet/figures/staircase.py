"""The staircase figure (CIFAR-100): a single intermediate classifier inserted at different
depths of ResNet, DenseNet and MSDNet. Left: the intermediate classifier's accuracy relative to
the final classifier of the same net; right: the final classifier's accuracy relative to the
same net trained without the intermediate classifier. x: location as a fraction of depth.

Table: ``msdnet.evaluation.analysis.staircase.staircase_table``'s output (long format). Columns:
    family    str    network family ("resnet", "densenet", "msdnet" are shown as ResNet,
                     DenseNet, MSDNet; other names as given)
    location  float  relative depth of the intermediate classifier, in (0, 1)
    metric    str    "relative_intermediate" (left panel) | "relative_final" (right panel)
    mean      float  mean over seeds of the ratio (1.0 = equal accuracy)
    std       float  optional: std over seeds (error bars; NaN or absent: none)
    n_seeds   int    optional, not drawn
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..core.errors import DataError
from . import style
from .common import check_table, model_order, seeds_note

ID = "staircase"
DEFAULT_TITLE = "A single intermediate classifier at different depths"
COLUMNS = ["family", "location", "metric", "mean"]
METRICS = {
    "relative_intermediate": ("intermediate classifier vs final classifier",
                              "relative accuracy (intermediate / final)"),
    "relative_final": ("final classifier vs net without intermediate classifier",
                       "relative accuracy (final / without intermediate)"),
}


def family_name(family: str) -> str:
    """Legend name of a family ("resnet" -> "ResNet")."""
    return style.display_name(style.canonical(family))


def staircase_figure(table: pd.DataFrame, title: str | None = None,
                     source: str = "staircase table") -> Figure:
    """Two panels, one line per family with +-std error bars over seeds (see the module
    docstring; the legend's title says how many seeds when the table has ``n_seeds``). Legends go
    where they cover no data."""
    df = check_table(table, COLUMNS, source, numeric=["location", "mean"])
    if "std" in df.columns:
        df["std"] = pd.to_numeric(df["std"], errors="coerce")
    else:
        df["std"] = np.nan
    df["metric"] = df["metric"].astype(str)
    bad = sorted(set(df["metric"]) - set(METRICS))
    if bad:
        raise DataError(f"{source}: column metric holds {bad[0]!r}; use {' or '.join(METRICS)}")
    df["family"] = df["family"].astype(str)
    order = {"ResNet": 0, "DenseNet": 1, "MSDNet": 2}      # the paper's order, then the table's
    families = sorted(model_order(df, "family"), key=lambda f: order.get(family_name(f), 3))
    note = None
    if "n_seeds" in df.columns:
        counts = pd.to_numeric(df["n_seeds"], errors="coerce").dropna()
        note = seeds_note(counts.astype(int).tolist()) if len(counts) else None
    with style.theme():
        fig, axes = style.new_figure(ncols=2, width=5.0)
        for ax, (metric, (panel_title, ylabel)) in zip(axes, METRICS.items()):
            d = df[df["metric"] == metric]
            for family in families:
                f = d[d["family"] == family].sort_values("location")
                if f.empty:
                    continue
                name = family_name(family)
                ax.errorbar(f["location"], f["mean"], yerr=np.nan_to_num(f["std"].to_numpy(float)),
                            color=style.colour(name), marker=style.marker(name), capsize=3,
                            label=name)
            if d.empty:
                ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center")
            if metric == "relative_final":
                ax.axhline(1.0, color="0.5", linewidth=0.8, linestyle=":")
            ax.set_xlim(0.0, 1.0)
            ax.set_xlabel("location of the intermediate classifier (relative depth)")
            ax.set_ylabel(ylabel)
            ax.set_title(panel_title)
        fig.suptitle(DEFAULT_TITLE if title is None else title)
        for ax in axes:
            style.legend(ax, title=note)
    return fig


def draw(tables: dict[str, pd.DataFrame], reference: pd.DataFrame | None = None,
         title: str | None = None, options: dict | None = None,
         sources: dict[str, str] | None = None) -> Figure:
    """The registry's entry point (``msdnet.figures.registry``): tables by name in, figure out."""
    sources = sources or {}
    return staircase_figure(tables['staircase'], title=title, source=sources.get('staircase', 'staircase table'))
