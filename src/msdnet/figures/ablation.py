"""Ablation of MSDNet (CIFAR-100): anytime accuracy vs MACs of MSDNet and of MSDNet without
dense connectivity, without dense connectivity and multi-scale, and without those and the
intermediate classifiers (one exit: drawn as a single marker with its error bar).

Table: the anytime table's schema (``msdnet.figures.anytime``), models e.g. "MSDNet",
"MSDNet w/o dense connection", "MSDNet w/o dense connection and multi-scale",
"MSDNet w/o dense connection, multi-scale and intermediate classifiers".
"""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from .anytime import anytime_figure

ID = "ablation"
DEFAULT_TITLE = "Ablation of MSDNet"


def ablation_figure(table: pd.DataFrame, reference: pd.DataFrame | None = None,
                    title: str | None = None, source: str = "ablation table") -> Figure:
    """Anytime accuracy vs MACs of MSDNet and its ablations (see the module docstring)."""
    return anytime_figure(table, reference, DEFAULT_TITLE if title is None else title, source,
                          figure_id=ID)


def draw(tables: dict[str, pd.DataFrame], reference: pd.DataFrame | None = None,
         title: str | None = None, options: dict | None = None,
         sources: dict[str, str] | None = None) -> Figure:
    """The registry's entry point (``msdnet.figures.registry``): tables by name in, figure out."""
    sources = sources or {}
    return ablation_figure(tables['ablation'], reference=reference, title=title, source=sources.get('ablation', 'ablation table'))
