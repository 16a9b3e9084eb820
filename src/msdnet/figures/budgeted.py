"""Budgeted batch classification: top-1 accuracy against the average MACs per test image.

Table (long format, one row per point). Columns:
    model         str    curve label (legend name as is; "^MC" drawn as a superscript)
    seed          int    training seed
    kind          str    "dynamic": a curve of points (MSDNet with dynamic evaluation, ResNet^MC
                         / DenseNet^MC / ensembles with early exits), drawn as a line;
                         "single": one network evaluated in full, one point per model and seed
    avg_macs      float  average MACs per test image
    accuracy      float  test top-1 %
    p, val_avg_macs, val_accuracy    optional, not drawn
    family        str    optional, single networks only: networks of one family (e.g.
                         "ResNets" for ResNet-20..110) are joined by a dotted line under that
                         legend name, each point annotated with its model name

Dynamic curves are averaged over seeds on a common MACs grid (``msdnet.figures.common``).
"""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from . import style
from .common import BUDGETED_X, check_budgeted, draw_budgeted, draw_reference, label_axes

ID = "budgeted"
DEFAULT_TITLE = "Budgeted batch classification"


def budgeted_figure(table: pd.DataFrame, reference: pd.DataFrame | None = None,
                    title: str | None = None, source: str = "budgeted table",
                    width: float = 6.5) -> Figure:
    """Accuracy vs average MACs: dynamic curves as lines, single networks as markers, the
    paper's points (``reference``: curve, macs_millions, top1_percent), if any, beside them."""
    df = check_budgeted(table, source)
    with style.theme():
        fig, (ax,) = style.new_figure(width=width)
        draw_budgeted(ax, df)
        draw_reference(ax, reference)
        label_axes(ax, BUDGETED_X)
        style.legend(ax)
        ax.set_title(DEFAULT_TITLE if title is None else title)
    return fig


def draw(tables: dict[str, pd.DataFrame], reference: pd.DataFrame | None = None,
         title: str | None = None, options: dict | None = None,
         sources: dict[str, str] | None = None) -> Figure:
    """The registry's entry point (``msdnet.figures.registry``): tables by name in, figure out."""
    sources = sources or {}
    return budgeted_figure(tables['budgeted'], reference=reference, title=title, source=sources.get('budgeted', 'budgeted table'))
