"""The paper's figures: one module per figure, each a pure function from tables (pandas, long
format) to a matplotlib ``Figure``, all drawn in the one style of :mod:`msdnet.figures.style`.

| id              | function                                   | table schema in            |
|-----------------|--------------------------------------------|----------------------------|
| anytime         | ``anytime_figure(table)``                  | ``figures.anytime``        |
| budgeted        | ``budgeted_figure(table)``                 | ``figures.budgeted``       |
| staircase       | ``staircase_figure(table)``                | ``figures.staircase``      |
| ablation        | ``ablation_figure(table)``                 | anytime schema             |
| easy-hard       | ``easy_hard_figure(table, images, ids)``   | ``figures.easy_hard``      |
| densenet-star   | ``densenet_star_figure(anytime, budgeted)``| anytime + budgeted schemas |
| reduction-lazy  | ``reduction_lazy_figure(table)``           | budgeted schema            |

The MACs figures take ``reference=`` (the paper's points of one data set, from
``common.load_reference``) and draw them beside the reproduced curves. ``style.save(fig, stem)``
writes ``stem.pdf`` and ``stem.png``. ``msdnet figure ID ...`` is the command-line front door.
"""

from __future__ import annotations

from .ablation import ablation_figure
from .anytime import anytime_figure
from .budgeted import budgeted_figure
from .common import load_reference, read_table
from .densenet_star import densenet_star_figure
from .easy_hard import easy_hard_figure, load_test_images
from .reduction_lazy import reduction_lazy_figure
from .staircase import staircase_figure
from .style import save

FIGURE_IDS = ("anytime", "budgeted", "staircase", "ablation", "easy-hard", "densenet-star",
              "reduction-lazy")

__all__ = [
    "FIGURE_IDS", "ablation_figure", "anytime_figure", "budgeted_figure", "densenet_star_figure",
    "easy_hard_figure", "load_reference", "load_test_images", "read_table",
    "reduction_lazy_figure", "save", "staircase_figure",
]
