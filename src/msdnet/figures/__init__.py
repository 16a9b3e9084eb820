"""The paper's figures: one module per figure, each a pure function from tables (pandas, long
format) to a matplotlib ``Figure``, all drawn in the one style of :mod:`msdnet.figures.style`.

Which tables a figure draws, who builds them and which function draws them is declared once, in
:mod:`msdnet.figures.registry` (``FIGURES``). Each figure module documents its table's columns
and has a ``draw(tables, reference=, title=, options=)`` entry point besides its plain function:

| id              | function                                   | table schema in            |
|-----------------|--------------------------------------------|----------------------------|
| anytime         | ``anytime_figure(table)``                  | ``figures.anytime``        |
| budgeted        | ``budgeted_figure(table)``                 | ``figures.budgeted``       |
| staircase       | ``staircase_figure(table)``                | ``figures.staircase``      |
| ablation        | ``ablation_figure(table)``                 | anytime schema             |
| easy-hard       | ``easy_hard_figure(table, images, ids)``   | ``figures.easy_hard``      |
| densenet-star   | ``densenet_star_figure(anytime, budgeted)``| anytime + budgeted schemas |
| reduction-lazy  | ``reduction_lazy_figure(table)``           | budgeted schema            |
| anytime-combiners, monotonicity, calibration, budgeted-combiners: ``figures.combiners``     |
| (beyond the paper: exit combiners and per-exit temperature scaling)                         |

The MACs figures take ``reference=`` (the paper's points of one data set and figure, from
``common.load_reference``) and draw them beside the reproduced curves. ``style.save(fig, stem)``
writes ``stem.pdf`` and ``stem.png``. ``msdnet figure ID ...`` is the command-line front door.

Importing this package loads no plotting library; the names below are imported on first use.
"""

from __future__ import annotations

import importlib

from .registry import FIGURES

FIGURE_IDS = tuple(FIGURES)

_LAZY = {
    "ablation_figure": "ablation", "anytime_figure": "anytime", "budgeted_figure": "budgeted",
    "densenet_star_figure": "densenet_star", "easy_hard_figure": "easy_hard",
    "reduction_lazy_figure": "reduction_lazy",
    "staircase_figure": "staircase", "load_reference": "common", "read_table": "common",
    "save": "style",
}

__all__ = ["FIGURES", "FIGURE_IDS", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
