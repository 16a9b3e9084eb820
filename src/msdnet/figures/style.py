"""The one look every figure shares: seaborn theme, a colour and marker fixed per curve name,
the paper's legend names, axis labels in MACs, the paper's points, and an atomic ``save``.

Every figure function draws inside ``with theme():`` on a ``Figure`` it creates with
:func:`new_figure` (no pyplot state), so the style never leaks into a caller's plots.

Colours: a curve keeps its colour in every figure. Known names (and the paper's names for the
same curve, e.g. "ResNet with early-exits" for "ResNet^MC") have fixed entries in ``COLOURS``;
any other name gets a colour picked by a stable hash of its canonical name, from a palette
disjoint from the fixed one. Grey is reserved: nothing reproduced is drawn grey.

The paper's points (``reference_points.csv``) are drawn in the colour of the matching reproduced
curve, dashed, with hollow markers, and labelled "<paper's curve name> (paper)".
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import re
from pathlib import Path
from typing import Iterator

# No pyplot anywhere: a bare Figure renders through Agg when saved, so no backend is chosen
# here and a notebook's own (inline) backend is left alone.
import matplotlib as mpl
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from ..io import atomic_path

__all__ = [
    "ACCURACY_LABEL", "DPI", "colour", "display_name", "macs_axis", "marker", "new_figure",
    "paper_label", "save", "theme",
]

DPI = 150
ACCURACY_LABEL = "top-1 accuracy (%)"

# seaborn's colour-blind palette, by index: 0 blue, 1 orange, 2 green, 3 vermillion, 4 purple,
# 5 brown, 6 pink, 7 grey (reserved), 8 yellow, 9 sky blue; "dark" gives darker shades.
_CB = sns.color_palette("colorblind", 10)
_DARK = sns.color_palette("dark", 10)
_MUTED = sns.color_palette("muted", 10)

COLOURS: dict[str, tuple[float, float, float]] = {
    "MSDNet": _CB[3],
    "ResNet^MC": _CB[0],
    "DenseNet^MC": _CB[2],
    "FractalNet": _CB[5],
    "Ensemble of ResNets (all shallow)": _CB[9],
    "Ensemble of ResNets (varying depth)": _DARK[0],
    "Ensemble of DenseNets (varying depth)": _DARK[2],
    # staircase families and the appendix's DenseNet*
    "ResNet": _CB[0],
    "DenseNet": _CB[2],
    "DenseNet*": _CB[4],
    # ablations (anytime, CIFAR-100)
    "MSDNet w/o dense connection": _CB[1],
    "MSDNet w/o dense connection and multi-scale": _CB[4],
    "MSDNet w/o dense connection, multi-scale and intermediate classifiers": _DARK[6],
    # network reduction and lazy evaluation (budgeted, CIFAR-100)
    "MSDNet w/o network reduction": _CB[1],
    "MSDNet w/o lazy evaluation": _CB[4],
    "MSDNet w/o network reduction and lazy evaluation": _DARK[6],
    "MSDNet w/o dynamic evaluation": _CB[1],
    # single networks of the budgeted figures
    "ResNets": _DARK[0],
    "DenseNets": _DARK[2],
    "Stochastic Depth": _CB[8],
    "WideResNet": _DARK[4],
}

MARKERS: dict[str, str] = {
    "MSDNet": "o", "ResNet^MC": "s", "DenseNet^MC": "D", "FractalNet": "P",
    "Ensemble of ResNets (all shallow)": "v", "Ensemble of ResNets (varying depth)": "^",
    "Ensemble of DenseNets (varying depth)": "<", "ResNet": "s", "DenseNet": "D", "DenseNet*": "d",
    "MSDNet w/o dense connection": "^", "MSDNet w/o dense connection and multi-scale": "v",
    "MSDNet w/o dense connection, multi-scale and intermediate classifiers": "X",
    "MSDNet w/o network reduction": "^", "MSDNet w/o lazy evaluation": "v",
    "MSDNet w/o network reduction and lazy evaluation": "X", "MSDNet w/o dynamic evaluation": "^",
    "ResNets": "s", "DenseNets": "D", "Stochastic Depth": "h", "WideResNet": "*",
}

# The paper's names (legends of its figures, reference_points.csv) for the curves above.
ALIASES: dict[str, str] = {
    "MSDNet with dynamic evaluation": "MSDNet",
    "MSDNet with early-exits": "MSDNet",
    "ResNet with early-exits": "ResNet^MC",
    "DenseNet with early-exits": "DenseNet^MC",
    "Stochastic Depth-110": "Stochastic Depth",
    "WideResNet-40": "WideResNet",
    "resnet": "ResNet", "densenet": "DenseNet", "msdnet": "MSDNet",
}

# Colours and markers for names not listed above: a stable hash picks one (muted shades, so
# they never equal a fixed colour).
_SPARE_COLOURS = [_MUTED[i] for i in (0, 1, 2, 3, 4, 5, 6, 8, 9)] + \
    [_DARK[i] for i in (1, 3, 5, 8, 9)]
_SPARE_MARKERS = ["o", "s", "D", "^", "v", "<", ">", "p", "h", "*", "P", "X"]

_SUFFIXES = re.compile(r"\s*\((continued|paper)\)\s*$")
_CITATION = re.compile(r"\s*\([^()]*et al\.?[^()]*\)\s*$")


def canonical(name: str) -> str:
    """The key of a curve name: without " (continued)", " (paper)" or a citation like
    " (He et al., 2015)", and with the paper's aliases resolved."""
    name = str(name)
    prev = None
    while prev != name:
        prev = name
        name = _SUFFIXES.sub("", name)
        name = _CITATION.sub("", name)
    return ALIASES.get(name, name)


def _pick(name: str, options: list) -> object:
    h = int(hashlib.sha256(name.encode()).hexdigest(), 16)
    return options[h % len(options)]


def colour(name: str) -> tuple[float, float, float]:
    """The colour of a curve: the same in every figure."""
    key = canonical(name)
    return COLOURS.get(key) or _pick(key, _SPARE_COLOURS)  # type: ignore[return-value]


def marker(name: str) -> str:
    """The marker of a curve: the same in every figure."""
    key = canonical(name)
    return MARKERS.get(key) or str(_pick(key, _SPARE_MARKERS))


def display_name(name: str) -> str:
    """The legend name: the name as given, with "^MC" as a mathtext superscript."""
    return str(name).replace("^MC", r"$^{MC}$")


def paper_label(curve: str) -> str:
    """Legend label of one of the paper's curves."""
    return f"{display_name(curve)} (paper)"


# -- theme -------------------------------------------------------------------------------------

_RC = {
    **sns.axes_style("whitegrid"),
    **sns.plotting_context("paper", font_scale=1.2),
    "axes.titlesize": 12,
    "legend.fontsize": 8,
    "legend.title_fontsize": 9,
    "figure.titlesize": 13,
    "lines.linewidth": 1.6,
    "lines.markersize": 5,
    "savefig.dpi": DPI,
    "pdf.fonttype": 42,      # TrueType in PDFs: the text stays text
    "axes.formatter.useoffset": False,
}


@contextlib.contextmanager
def theme() -> Iterator[None]:
    """The shared seaborn theme, for the duration of the block only."""
    with mpl.rc_context(_RC):
        yield


def new_figure(ncols: int = 1, nrows: int = 1, width: float = 6.0, height: float = 4.2,
               **kwargs) -> tuple[Figure, list[Axes]]:
    """A pyplot-free figure with a grid of axes (call inside :func:`theme`)."""
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kwargs)
    return fig, [ax for row in axes for ax in row]


# -- axes --------------------------------------------------------------------------------------

def macs_axis(ax: Axes, label: str = "budget (MACs per image)", xmax: float | None = None) -> int:
    """Label the x axis in MACs with a power-of-ten factor, e.g. "budget (MACs per image,
    x10^8)"; the data stay in MACs (the ticks are divided). Returns the exponent used."""
    if xmax is None:
        xmax = max((abs(v) for v in ax.get_xlim()), default=1.0)
    exp = int(math.floor(math.log10(xmax))) if xmax and xmax > 0 and math.isfinite(xmax) else 0
    scale = 10.0 ** exp
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v / scale:g}"))
    suffix = rf" $\times 10^{{{exp}}}$" if exp else ""
    ax.set_xlabel(f"{label}{suffix}")
    return exp


def accuracy_axis(ax: Axes) -> None:
    ax.set_ylabel(ACCURACY_LABEL)


def legend(ax: Axes, outside: bool | None = None, loc: str = "lower right", **kwargs) -> None:
    """The legend, inside (at ``loc``) or to the right of the axes; nothing if no labels.
    ``outside=None`` decides by size: outside for more than 5 entries or a label over 32
    characters (it would hide the curves)."""
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return
    if outside is None:
        outside = len(labels) > 5 or max(len(lbl) for lbl in labels) > 32
    # the reproduced curves first, then the paper's (each group in drawing order)
    pairs = sorted(zip(handles, labels), key=lambda hl: hl[1].endswith(" (paper)"))
    handles, labels = [h for h, _ in pairs], [lbl for _, lbl in pairs]
    if outside:
        leg = ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0),
                        borderaxespad=0.0, frameon=False, **kwargs)
        # widen the figure by the legend's width so that the axes keep their size
        fig = ax.get_figure(root=True)
        width = leg.get_window_extent(FigureCanvasAgg(fig).get_renderer()).width / fig.dpi
        w, h = fig.get_size_inches()
        fig.set_size_inches(w + width + 0.2, h)
    else:
        ax.legend(handles, labels, loc=loc, **kwargs)


# -- output ------------------------------------------------------------------------------------

def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save(fig: Figure, out_stem: str | Path) -> tuple[Path, Path]:
    """Write ``<stem>.pdf`` and ``<stem>.png`` (dpi 150): both to temporary names first, then both
    renamed, so a failure leaves neither half-written. Returns the two paths."""
    stem = Path(out_stem)
    pdf, png = stem.with_name(stem.name + ".pdf"), stem.with_name(stem.name + ".png")
    with contextlib.ExitStack() as stack:
        tmp_pdf = stack.enter_context(atomic_path(pdf))
        tmp_png = stack.enter_context(atomic_path(png))
        fig.savefig(tmp_pdf, format="pdf", bbox_inches="tight", metadata={"CreationDate": None})
        fig.savefig(tmp_png, format="png", dpi=DPI, bbox_inches="tight")
        mode = 0o666 & ~_umask()      # temporary files are private; the figures are not
        tmp_pdf.chmod(mode)
        tmp_png.chmod(mode)
    return pdf, png
