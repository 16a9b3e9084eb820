"""The one look every figure shares: seaborn theme, a colour and marker fixed per curve name,
the paper's legend names, MACs axes in one unit (MMACs, or GMACs from 1e9 MACs on), legends
that cover no data, the paper's points, and an atomic ``save``.

Every figure function draws inside ``with theme():`` on a ``Figure`` it creates with
:func:`new_figure` (no pyplot state), so the style never leaks into a caller's plots.

Colours: a curve keeps its colour in every figure. Every legend label of the presets (and the
paper's names for the same curve, e.g. "ResNet with early-exits" for "ResNet^MC", resolved by
``ALIASES``) has a fixed entry in ``COLOURS`` and ``MARKERS`` (``has_style``; the tests check
every preset), and the labels drawn together in one figure have distinct colours. Any other
name gets a colour picked by a stable hash of its canonical name, from a palette disjoint from
the fixed one. Grey is reserved: nothing reproduced is drawn grey.

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
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.path import Path as MplPath
from matplotlib.ticker import FuncFormatter

from ..core.io import atomic_path

__all__ = [
    "ACCURACY_LABEL", "DPI", "canonical", "colour", "display_name", "has_style", "legend",
    "macs_axis", "macs_label", "macs_unit", "marker", "new_figure", "paper_label", "save", "theme",
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
    # single networks of the budgeted figures (distinct from every dynamic curve drawn with them)
    "ResNets": _DARK[9],
    "DenseNets": _DARK[5],
    "Stochastic Depth": _DARK[6],
    "WideResNet": _DARK[4],
    "AlexNet": _DARK[3],
    "GoogLeNet": _CB[4],
    # exit combiners (the combiner figures; softmax is the paper's answer)
    "softmax": _CB[3],
    "mean": _CB[0],
    "caching": _CB[2],
    "product": _CB[4],
}

MARKERS: dict[str, str] = {
    "MSDNet": "o", "ResNet^MC": "s", "DenseNet^MC": "D", "FractalNet": "P",
    "Ensemble of ResNets (all shallow)": "v", "Ensemble of ResNets (varying depth)": "^",
    "Ensemble of DenseNets (varying depth)": "<", "ResNet": "s", "DenseNet": "D", "DenseNet*": "d",
    "MSDNet w/o dense connection": "^", "MSDNet w/o dense connection and multi-scale": "v",
    "MSDNet w/o dense connection, multi-scale and intermediate classifiers": "X",
    "MSDNet w/o network reduction": "^", "MSDNet w/o lazy evaluation": "v",
    "MSDNet w/o network reduction and lazy evaluation": "X", "MSDNet w/o dynamic evaluation": "v",
    "ResNets": "p", "DenseNets": "H", "Stochastic Depth": "h", "WideResNet": "*",
    "AlexNet": "X", "GoogLeNet": ">",
    "softmax": "o", "mean": "s", "caching": "D", "product": "^",
}

# Other names of the curves above: the presets' legend labels and the paper's (its figures'
# legends, reference_points.csv). A budgeted curve "X with early-exits" / "X with dynamic
# evaluation" is the anytime model X evaluated dynamically, so it keeps X's colour.
ALIASES: dict[str, str] = {
    "MSDNet with dynamic evaluation": "MSDNet",
    "MSDNet with early-exits": "MSDNet",
    "ResNet^MC with early-exits": "ResNet^MC",
    "DenseNet^MC with early-exits": "DenseNet^MC",
    "ResNet with early-exits": "ResNet^MC",
    "DenseNet with early-exits": "DenseNet^MC",
    "Ensemble of ResNets with early-exits": "Ensemble of ResNets (varying depth)",
    "Ensemble of DenseNets with early-exits": "Ensemble of DenseNets (varying depth)",
    "Stochastic Depth-110": "Stochastic Depth",
    "Stochastic Depth ResNet": "Stochastic Depth",
    "WideResNet-40": "WideResNet",
    "Wide ResNet": "WideResNet",
    "DenseNet-88": "DenseNets",          # the largest of the paper's DenseNets (appendix figure)
    "resnet": "ResNet", "densenet": "DenseNet", "msdnet": "MSDNet",
}

# Colours and markers for names not listed above: a stable hash picks one (muted shades, so
# they never equal a fixed colour).
_SPARE_COLOURS = [_MUTED[i] for i in (0, 1, 2, 3, 4, 5, 6, 8, 9)] + \
    [_DARK[i] for i in (1, 3, 5, 8, 9)]
_SPARE_MARKERS = ["o", "s", "D", "^", "v", "<", ">", "p", "h", "*", "P", "X"]

_SUFFIXES = re.compile(r"\s*\((continued|paper)\)\s*$")
_CITATION = re.compile(r"\s*\([^()]*et al\.?[^()]*\)\s*$")


# Names are matched without regard to case ("msdnet" is "MSDNet"): a preset's labels are unique
# within a figure case-insensitively (msdnet.planning.workflow checks it).
_FOLDED = {k.casefold(): k for k in COLOURS} | {k.casefold(): v for k, v in ALIASES.items()}


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


def _key(name: str) -> str:
    """The style key of a curve name: its canonical name matched in any case against the fixed
    styles; a name without one is its case-folded self (so "Foo" and "foo" share a colour)."""
    name = canonical(name)
    if name in COLOURS:
        return name
    return _FOLDED.get(name.casefold(), name.casefold())


def _index(name: str, n: int) -> int:
    return int(hashlib.sha256(name.encode()).hexdigest(), 16) % n


def _pick(name: str, options: list) -> object:
    return options[_index(name, len(options))]


# The colours and markers of the names drawn together in one figure (:func:`figure_labels`):
# names without a fixed style get their hashed pick, moved on to the next free one of the spare
# palette when another name of the figure already has it.
_ASSIGNED: dict[str, tuple[tuple[float, float, float], str]] = {}


def _assign(names) -> dict[str, tuple[tuple[float, float, float], str]]:
    keys = list(dict.fromkeys(_key(n) for n in names))
    fixed = [k for k in keys if k in COLOURS]
    used_c = {COLOURS[k] for k in fixed}
    used_m = {MARKERS.get(k) for k in fixed}
    out = {}
    for k in sorted(k for k in keys if k not in COLOURS):
        c_i, m_i = _index(k, len(_SPARE_COLOURS)), _index(k, len(_SPARE_MARKERS))
        c = next((_SPARE_COLOURS[(c_i + j) % len(_SPARE_COLOURS)] for j in range(len(_SPARE_COLOURS))
                  if _SPARE_COLOURS[(c_i + j) % len(_SPARE_COLOURS)] not in used_c), _SPARE_COLOURS[c_i])
        m = next((_SPARE_MARKERS[(m_i + j) % len(_SPARE_MARKERS)] for j in range(len(_SPARE_MARKERS))
                  if _SPARE_MARKERS[(m_i + j) % len(_SPARE_MARKERS)] not in used_m), _SPARE_MARKERS[m_i])
        used_c.add(c)
        used_m.add(m)
        out[k] = (c, m)
    return out


@contextlib.contextmanager
def figure_labels(names) -> Iterator[None]:
    """Within the block, the names of one figure (``names``) have distinct colours and markers:
    fixed ones as always, the others their hashed pick unless another name of the figure has it."""
    global _ASSIGNED
    before = _ASSIGNED
    _ASSIGNED = _assign(names)
    try:
        yield
    finally:
        _ASSIGNED = before


def has_style(name: str) -> bool:
    """Whether ``name`` (or the curve it is another name of) has a fixed colour and marker."""
    key = _key(name)
    return key in COLOURS and key in MARKERS


def colour(name: str) -> tuple[float, float, float]:
    """The colour of a curve: the same in every figure (:func:`figure_labels` for names without a
    fixed one)."""
    key = _key(name)
    if key in COLOURS:
        return COLOURS[key]
    return _ASSIGNED[key][0] if key in _ASSIGNED else _pick(key, _SPARE_COLOURS)  # type: ignore[return-value]


def marker(name: str) -> str:
    """The marker of a curve: the same in every figure (:func:`figure_labels` for names without a
    fixed one)."""
    key = _key(name)
    if key in MARKERS:
        return MARKERS[key]
    return _ASSIGNED[key][1] if key in _ASSIGNED else str(_pick(key, _SPARE_MARKERS))


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

MACS_UNITS = ((1e9, "GMACs"), (1e6, "MMACs"))


def macs_unit(xmax: float | None) -> tuple[float, str]:
    """The unit of a MACs axis whose largest visible value is ``xmax``: (1e9, "GMACs") from 1e9
    MACs on, else (1e6, "MMACs"). One unit per figure; never a x10^n multiplier."""
    if xmax is not None and math.isfinite(xmax) and abs(xmax) >= 1e9:
        return MACS_UNITS[0]
    return MACS_UNITS[1]


def macs_label(label: str, unit: str) -> str:
    """``label`` with its "MACs" in ``unit``: "budget (MACs per image)" -> "budget (MMACs per
    image)"; a label without "MACs" gets " (<unit>)"."""
    out, n = re.subn(r"(?<![MG])MACs\b", unit, label, count=1)
    return out if n else f"{label} ({unit})"


def macs_axis(ax: Axes, label: str = "budget (MACs per image)", xmax: float | None = None,
              unit: tuple[float, str] | None = None) -> int:
    """Label the x axis in MMACs (GMACs when ``xmax`` >= 1e9), e.g. "budget (MMACs per image)";
    the data stay in MACs, the tick labels are divided (plain numbers: no offset, no x10^n).
    ``unit`` (from :func:`macs_unit`) forces the unit, so that every panel of a figure shares
    one. Returns the exponent of the unit (6 or 9)."""
    if unit is None:
        if xmax is None:
            xmax = max((abs(v) for v in ax.get_xlim()), default=1.0)
        unit = macs_unit(xmax)
    scale, name = unit
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: _tick(v / scale)))
    ax.set_xlabel(macs_label(label, name))
    return int(round(math.log10(scale)))


def _tick(v: float) -> str:
    v = round(v, 10)
    return f"{v:g}" if abs(v) < 1e5 else f"{v:.0f}"


def accuracy_axis(ax: Axes) -> None:
    ax.set_ylabel(ACCURACY_LABEL)


# -- legends -----------------------------------------------------------------------------------

CORNERS = ("lower right", "upper left", "lower left", "upper right")
MAX_INSIDE_SHARE = 0.3      # a legend inside the axes takes at most this share of their area


def renderer(fig: Figure):
    """An Agg renderer of ``fig`` (attaching an Agg canvas when the figure has none)."""
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    return canvas.get_renderer()


def _densify(d: np.ndarray, n: int = 12) -> np.ndarray:
    if len(d) < 2:
        return d
    t = np.linspace(0.0, 1.0, n)
    seg = d[:-1, None, :] + (d[1:, None, :] - d[:-1, None, :]) * t[None, :, None]
    return seg.reshape(-1, 2)


def _finite(xy) -> np.ndarray:
    xy = np.ma.filled(np.ma.asarray(xy, dtype=float), np.nan).reshape(-1, 2)
    return xy[np.isfinite(xy).all(axis=1)]


def obstacles(ax: Axes, rend) -> tuple[np.ndarray, list, list]:
    """What a legend inside ``ax`` must not cover, in display coordinates: the points of every
    line (markers, and samples along drawn segments), error bars, band outlines; the filled
    bands as paths; the boxes of texts and annotations (outlier arrows, point labels)."""
    pts, fills, boxes = [np.empty((0, 2))], [], []
    for ln in ax.get_lines():
        if not ln.get_visible():
            continue
        d = ln.get_transform().transform(_finite(ln.get_xydata()))
        pts.append(_densify(d) if ln.get_linestyle() not in ("None", "none", "", " ") else d)
    for coll in ax.collections:
        if not coll.get_visible():
            continue
        tr = coll.get_transform()
        for path in coll.get_paths():
            d = tr.transform(_finite(path.vertices))
            pts.append(_densify(d, 4))
            if isinstance(coll, PolyCollection) and len(d) > 2:
                fills.append(MplPath(d))
        offsets = _finite(coll.get_offsets())
        if len(offsets) and not isinstance(coll, PolyCollection):
            pts.append(coll.get_offset_transform().transform(offsets))
    for t in ax.texts:
        if t.get_visible() and t.get_text():
            boxes.append(t.get_window_extent(rend))
    return np.concatenate(pts), fills, boxes


def _covers(bbox, pts: np.ndarray, fills: list, boxes: list, pad: float = 3.0) -> bool:
    x0, y0, x1, y1 = bbox.x0 - pad, bbox.y0 - pad, bbox.x1 + pad, bbox.y1 + pad
    if len(pts) and ((pts[:, 0] >= x0) & (pts[:, 0] <= x1) & (pts[:, 1] >= y0) & (pts[:, 1] <= y1)).any():
        return True
    probe = np.array([[x0, y0], [x0, y1], [x1, y0], [x1, y1], [(x0 + x1) / 2, (y0 + y1) / 2]])
    if any(f.contains_points(probe).any() for f in fills):
        return True
    return any(b.x0 < x1 and b.x1 > x0 and b.y0 < y1 and b.y1 > y0 for b in boxes)


def legend(ax: Axes, outside: bool | None = None, loc: str | None = None,
           title: str | None = None, **kwargs) -> str | None:
    """The legend, where it covers no data; nothing if there are no labels (nor a ``title``).

    ``outside=None`` (the default) tries ``loc`` (if given) and the four corners inside the axes
    and keeps the first whose box touches no drawn point, line, band or text (the figure's
    layout is computed first) and takes at most ``MAX_INSIDE_SHARE`` of the axes; when none
    does, the legend goes to the right of the axes and
    the figure is widened by its width, so the axes keep their size. ``outside=True`` puts it
    there directly; ``outside=False`` puts it at ``loc`` whatever it covers. ``title``: a note
    above the entries (spread over seeds, missing paper points). Entries: the reproduced curves
    first, then the paper's (each group in drawing order). Returns where it went ("outside" or
    the corner), None when there is no legend."""
    handles, labels = ax.get_legend_handles_labels()
    if not handles and not title:
        return None
    pairs = sorted(zip(handles, labels), key=lambda hl: hl[1].endswith(" (paper)"))
    handles, labels = [h for h, _ in pairs], [lbl for _, lbl in pairs]
    opts = {"title": title, **kwargs}
    if title:
        opts.setdefault("alignment", "left")
    fig = ax.get_figure(root=True)
    if outside is False:
        ax.legend(handles, labels, loc=loc or "best", **opts)
        return loc or "best"
    if outside is None:
        rend = renderer(fig)
        fig.draw_without_rendering()                 # the layout, so the axes have their size
        axbox = ax.get_window_extent(rend)
        corners = ([loc] if loc and loc != "best" else []) + [c for c in CORNERS if c != loc]
        leg = ax.legend(handles, labels, loc=corners[0], **opts)
        box = leg.get_window_extent(rend)
        if box.width * box.height <= MAX_INSIDE_SHARE * axbox.width * axbox.height:
            pts, fills, boxes = obstacles(ax, rend)
            for corner in corners:
                leg.set_loc(corner)
                box = leg.get_window_extent(rend)
                inside = (box.x0 >= axbox.x0 - 1 and box.x1 <= axbox.x1 + 1
                          and box.y0 >= axbox.y0 - 1 and box.y1 <= axbox.y1 + 1)
                if inside and not _covers(box, pts, fills, boxes):
                    return corner
        leg.remove()
    leg = ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0),
                    borderaxespad=0.0, frameon=False, **opts)
    # widen the figure by the legend's width so that the axes keep their size
    width = leg.get_window_extent(renderer(fig)).width / fig.dpi
    w, h = fig.get_size_inches()
    fig.set_size_inches(w + width + 0.2, h)
    return "outside"


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
