"""Network reduction and lazy evaluation (CIFAR-100, budgeted batch): MSDNet with and without
each, as dynamic-evaluation curves.

Table: the budgeted table's schema (``msdnet.figures.budgeted``), models e.g. "MSDNet",
"MSDNet w/o network reduction", "MSDNet w/o lazy evaluation",
"MSDNet w/o network reduction and lazy evaluation" (kind "dynamic").
"""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from .budgeted import budgeted_figure

ID = "reduction-lazy"
DEFAULT_TITLE = "Network reduction and lazy evaluation"


def reduction_lazy_figure(table: pd.DataFrame, reference: pd.DataFrame | None = None,
                          title: str | None = None, source: str = "reduction-lazy table") -> Figure:
    """Budgeted accuracy vs average MACs of MSDNet with/without reduction and lazy evaluation."""
    return budgeted_figure(table, reference, DEFAULT_TITLE if title is None else title, source,
                           width=6.0, figure_id=ID)


def draw(tables: dict[str, pd.DataFrame], reference: pd.DataFrame | None = None,
         title: str | None = None, options: dict | None = None,
         sources: dict[str, str] | None = None) -> Figure:
    """The registry's entry point (``msdnet.figures.registry``): tables by name in, figure out."""
    sources = sources or {}
    return reduction_lazy_figure(tables['reduction_lazy'], reference=reference, title=title, source=sources.get('reduction_lazy', 'reduction-lazy table'))
