"""DenseNet vs DenseNet* vs MSDNet (appendix, CIFAR-100): left anytime, right budgeted.

Tables: ``anytime`` with the anytime schema (``msdnet.figures.anytime``) and ``budgeted`` with
the budgeted schema (``msdnet.figures.budgeted``); models e.g. "DenseNet", "DenseNet*", "MSDNet".
"""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from . import style
from .common import (ANYTIME_X, BUDGETED_X, check_anytime, check_budgeted, draw_anytime,
                     draw_budgeted, draw_reference, label_axes)

ID = "densenet-star"
DEFAULT_TITLE = "DenseNet, DenseNet* and MSDNet"


def densenet_star_figure(anytime: pd.DataFrame, budgeted: pd.DataFrame,
                         reference: pd.DataFrame | None = None, title: str | None = None,
                         anytime_source: str = "anytime table",
                         budgeted_source: str = "budgeted table") -> Figure:
    """Two panels: anytime accuracy vs MACs, budgeted accuracy vs average MACs. The paper's
    points (``reference``), if any, go on the budgeted panel."""
    a = check_anytime(anytime, anytime_source)
    b = check_budgeted(budgeted, budgeted_source)
    with style.theme():
        fig, (left, right) = style.new_figure(ncols=2, width=5.2)
        draw_anytime(left, a)
        label_axes(left, ANYTIME_X)
        left.set_title("anytime prediction")
        style.legend(left)
        draw_budgeted(right, b)
        draw_reference(right, reference)
        label_axes(right, BUDGETED_X)
        right.set_title("budgeted batch classification")
        style.legend(right)
        fig.suptitle(DEFAULT_TITLE if title is None else title)
    return fig


def draw(tables: dict[str, pd.DataFrame], reference: pd.DataFrame | None = None,
         title: str | None = None, options: dict | None = None,
         sources: dict[str, str] | None = None) -> Figure:
    """The registry's entry point (``msdnet.figures.registry``): tables by name in, figure out."""
    sources = sources or {}
    return densenet_star_figure(tables['densenet_star_anytime'], tables['densenet_star_budgeted'], reference=reference, title=title, anytime_source=sources.get('densenet_star_anytime', 'anytime table'), budgeted_source=sources.get('densenet_star_budgeted', 'budgeted table'))
