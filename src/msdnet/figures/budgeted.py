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
from .common import (BUDGETED_X, check_budgeted, draw_budgeted, draw_reference, finish_macs,
                     reference_note, seed_counts, seeds_note, select_reference)

ID = "budgeted"
DEFAULT_TITLE = "Budgeted batch classification"


def budgeted_figure(table: pd.DataFrame, reference: pd.DataFrame | None = None,
                    title: str | None = None, source: str = "budgeted table",
                    width: float = 6.5, figure_id: str = ID) -> Figure:
    """Accuracy vs average MACs: dynamic curves as lines (mean +- std band over seeds), single
    networks as markers (+- std error bars), the paper's points (``reference``: curve,
    macs_millions, top1_percent, and optionally figure: then only the rows of ``figure_id``),
    if any, beside them; a note when ``reference`` has none. An outlier (a network at several
    times the cost of the rest) is marked at the right edge instead of squeezing the curves."""
    df = check_budgeted(table, source)
    ref = select_reference(reference, figure_id)
    with style.theme():
        fig, (ax,) = style.new_figure(width=width)
        drawn = draw_budgeted(ax, df)
        draw_reference(ax, ref)
        ax.set_title(DEFAULT_TITLE if title is None else title)
        finish_macs(fig, [(ax, BUDGETED_X)],
                    {ax: [seeds_note(seed_counts(drawn)), reference_note(ref)]})
    return fig


def draw(tables: dict[str, pd.DataFrame], reference: pd.DataFrame | None = None,
         title: str | None = None, options: dict | None = None,
         sources: dict[str, str] | None = None) -> Figure:
    """The registry's entry point (``msdnet.figures.registry``): tables by name in, figure out."""
    sources = sources or {}
    return budgeted_figure(tables['budgeted'], reference=reference, title=title, source=sources.get('budgeted', 'budgeted table'))
