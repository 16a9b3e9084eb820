"""Anytime prediction (paper: MSDNet vs ResNet^MC, DenseNet^MC, FractalNet and ensembles):
top-1 accuracy against the MACs spent up to each exit.

Table (long format, one row per model, seed and exit). Columns:
    model     str    curve label (legend name as is; "^MC" drawn as a superscript)
    seed      int    training seed (mean +- std over seeds)
    exit      int    1-based exit (or ensemble step)
    macs      float  cumulative MACs up to this exit
    params    float  optional, not drawn
    accuracy  float  top-1 % of this exit
"""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from . import style
from .common import ANYTIME_X, check_anytime, draw_anytime, draw_reference, label_axes

ID = "anytime"
DEFAULT_TITLE = "Anytime prediction"


def anytime_figure(table: pd.DataFrame, reference: pd.DataFrame | None = None,
                   title: str | None = None, source: str = "anytime table") -> Figure:
    """Accuracy vs MACs, one line per model (markers at exits, +-std band over seeds); the
    paper's points (``reference``: curve, macs_millions, top1_percent), if any, beside them."""
    df = check_anytime(table, source)
    with style.theme():
        fig, (ax,) = style.new_figure()
        draw_anytime(ax, df)
        draw_reference(ax, reference)
        label_axes(ax, ANYTIME_X)
        style.legend(ax)
        ax.set_title(DEFAULT_TITLE if title is None else title)
    return fig


def draw(tables: dict[str, pd.DataFrame], reference: pd.DataFrame | None = None,
         title: str | None = None, options: dict | None = None,
         sources: dict[str, str] | None = None) -> Figure:
    """The registry's entry point (``msdnet.figures.registry``): tables by name in, figure out."""
    sources = sources or {}
    return anytime_figure(tables['anytime'], reference=reference, title=title, source=sources.get('anytime', 'anytime table'))
