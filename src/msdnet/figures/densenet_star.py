"""DenseNet vs DenseNet* vs MSDNet (appendix, CIFAR-100): left anytime, right budgeted.

Tables: ``anytime`` with the anytime schema (``msdnet.figures.anytime``) and ``budgeted`` with
the budgeted schema (``msdnet.figures.budgeted``); models e.g. "DenseNet", "DenseNet*", "MSDNet".
"""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from . import style
from .common import (ANYTIME_X, BUDGETED_X, check_anytime, check_budgeted, draw_anytime,
                     draw_budgeted, draw_reference, finish_macs, reference_note, seed_counts,
                     seeds_note, select_reference)

ID = "densenet-star"
DEFAULT_TITLE = "DenseNet, DenseNet* and MSDNet"


def densenet_star_figure(anytime: pd.DataFrame, budgeted: pd.DataFrame,
                         reference: pd.DataFrame | None = None, title: str | None = None,
                         anytime_source: str = "anytime table",
                         budgeted_source: str = "budgeted table") -> Figure:
    """Two panels: anytime accuracy vs MACs, budgeted accuracy vs average MACs, both with the
    spread over seeds and one MACs unit. The paper's points of this figure (``reference``; rows
    of ``densenet-star`` when it has a figure column), if any, go on the budgeted panel, with a
    note there when there are none."""
    a = check_anytime(anytime, anytime_source)
    b = check_budgeted(budgeted, budgeted_source)
    ref = select_reference(reference, ID)
    with style.theme():
        fig, (left, right) = style.new_figure(ncols=2, width=5.2)
        means = draw_anytime(left, a)
        left.set_title("anytime prediction")
        drawn = draw_budgeted(right, b)
        draw_reference(right, ref)
        right.set_title("budgeted batch classification")
        fig.suptitle(DEFAULT_TITLE if title is None else title)
        finish_macs(fig, [(left, ANYTIME_X), (right, BUDGETED_X)],
                    {left: [seeds_note(seed_counts(means))],
                     right: [seeds_note(seed_counts(drawn)), reference_note(ref)]})
    return fig


def draw(tables: dict[str, pd.DataFrame], reference: pd.DataFrame | None = None,
         title: str | None = None, options: dict | None = None,
         sources: dict[str, str] | None = None) -> Figure:
    """The registry's entry point (``msdnet.figures.registry``): tables by name in, figure out."""
    sources = sources or {}
    return densenet_star_figure(tables['densenet_star_anytime'], tables['densenet_star_budgeted'], reference=reference, title=title, anytime_source=sources.get('densenet_star_anytime', 'anytime table'), budgeted_source=sources.get('densenet_star_budgeted', 'budgeted table'))
