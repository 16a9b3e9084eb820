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
from .common import (ANYTIME_X, check_anytime, draw_anytime, draw_reference, finish_macs,
                     reference_note, seed_counts, seeds_note, select_reference)

ID = "anytime"
DEFAULT_TITLE = "Anytime prediction"


def anytime_figure(table: pd.DataFrame, reference: pd.DataFrame | None = None,
                   title: str | None = None, source: str = "anytime table",
                   figure_id: str = ID) -> Figure:
    """Accuracy vs MACs, one line per model (markers at exits, +-std band over seeds); the
    paper's points (``reference``: curve, macs_millions, top1_percent, and optionally figure:
    then only the rows of ``figure_id``), if any, beside them; a note when ``reference`` has
    none. The legend's title says the spread shown (mean +- std over N seeds)."""
    df = check_anytime(table, source)
    ref = select_reference(reference, figure_id)
    with style.theme():
        fig, (ax,) = style.new_figure()
        means = draw_anytime(ax, df)
        draw_reference(ax, ref)
        ax.set_title(DEFAULT_TITLE if title is None else title)
        finish_macs(fig, [(ax, ANYTIME_X)],
                    {ax: [seeds_note(seed_counts(means)), reference_note(ref)]})
    return fig


def draw(tables: dict[str, pd.DataFrame], reference: pd.DataFrame | None = None,
         title: str | None = None, options: dict | None = None,
         sources: dict[str, str] | None = None) -> Figure:
    """The registry's entry point (``msdnet.figures.registry``): tables by name in, figure out."""
    sources = sources or {}
    return anytime_figure(tables['anytime'], reference=reference, title=title, source=sources.get('anytime', 'anytime table'))
