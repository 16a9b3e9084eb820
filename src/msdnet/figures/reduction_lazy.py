"""Network reduction and lazy evaluation (CIFAR-100, budgeted batch): MSDNet with and without
each, as dynamic-evaluation curves.

Table: the budgeted table's schema (``msdnet.figures.budgeted``), models e.g. "MSDNet",
"MSDNet w/o network reduction", "MSDNet w/o lazy evaluation",
"MSDNet w/o network reduction and lazy evaluation" (kind "dynamic").
"""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from . import style
from .common import BUDGETED_X, check_budgeted, draw_budgeted, draw_reference, label_axes

ID = "reduction-lazy"
DEFAULT_TITLE = "Network reduction and lazy evaluation"


def reduction_lazy_figure(table: pd.DataFrame, reference: pd.DataFrame | None = None,
                          title: str | None = None, source: str = "reduction-lazy table") -> Figure:
    """Budgeted accuracy vs average MACs of MSDNet with/without reduction and lazy evaluation."""
    df = check_budgeted(table, source)
    with style.theme():
        fig, (ax,) = style.new_figure()
        draw_budgeted(ax, df)
        draw_reference(ax, reference)
        label_axes(ax, BUDGETED_X)
        style.legend(ax)
        ax.set_title(DEFAULT_TITLE if title is None else title)
    return fig
