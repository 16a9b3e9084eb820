"""Figures a reader trusts on every preset: the paper's points only where they belong, one colour
and marker per curve shared with its paper curve, a note where a data set has no published
points, one MACs unit, legends that cover no data, outliers marked at the edge, the spread over
seeds, and easy/hard rows that are filled and named."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.container import ErrorbarContainer

from msdnet.cli import main
from msdnet.core.config import load_yaml
from msdnet.core.errors import DataError
from msdnet.figures import (FIGURES, anytime_figure, budgeted_figure, densenet_star_figure,
                            easy_hard_figure, load_reference, reduction_lazy_figure,
                            staircase_figure, style)
from msdnet.figures.common import outlier_cut, select_reference
from msdnet.evaluation.images import load_test_images
from msdnet.figures.easy_hard import add_fallback_hard
from msdnet.inference.predictions import Predictions

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_figures import (ABLATION_MODELS, REDUCTION_MODELS, anytime_table,  # noqa: E402
                          budgeted_table, staircase_table)

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "data" / "paper" / "reference_points.csv"
PRESETS = sorted((REPO / "config").glob("*.yaml"))
MACS_FIGURES = tuple(f.id for f in FIGURES.values() if f.macs_axis)
# the paper's curves with no reproduced counterpart in any preset (drawn for comparison only)
PAPER_ONLY = {"MSDNet w/o dynamic evaluation", "DenseNet-88"}


def raw_reference() -> pd.DataFrame:
    return pd.read_csv(REFERENCE, keep_default_na=False)


def base_name(curve: str) -> str:
    """A paper curve's name as a legend label: no " (continued)", no citation."""
    name = re.sub(r"\s*\(continued\)\s*$", "", str(curve))
    return re.sub(r"\s*\([^()]*et al\.?[^()]*\)\s*$", "", name)


def preset_labels(section: dict, fid: str) -> list[list[str]]:
    """The legend labels of one figure's section, a list per panel."""
    if fid == "budgeted":
        return [list(section.get("dynamic", {})) + list(section.get("single", {}))]
    if fid == "densenet-star":
        return [list(section["anytime"]), list(section["budgeted"])]
    if fid == "easy-hard":
        return []
    return [list(section)]


def presets():
    for path in PRESETS:
        cfg = load_yaml(path)
        yield path.name, cfg


def paper_curves(dataset: str | None, fid: str) -> list[str]:
    if not dataset:
        return []
    ref = raw_reference()
    rows = ref[(ref["dataset"] == dataset) & (ref["figure"] == fid)]
    return list(dict.fromkeys(rows["curve"]))


# -- reference_points.csv and load_reference ---------------------------------------------------

def test_every_reference_row_names_one_macs_figure():
    ref = raw_reference()
    assert list(ref.columns) == ["dataset", "curve", "macs_millions", "top1_percent", "figure"]
    assert set(ref["figure"]) <= set(MACS_FIGURES) and (ref["figure"] != "").all()
    counts = ref.groupby(["figure", "dataset"]).size().to_dict()
    assert counts == {("budgeted", "cifar10"): 135, ("budgeted", "cifar100"): 200,
                      ("densenet-star", "cifar100"): 1}
    budgeted = {base_name(c) for c in ref.loc[ref["figure"] == "budgeted", "curve"]}
    assert "MSDNet with dynamic evaluation" in budgeted and "ResNet^MC with early-exits" in budgeted
    assert not any("DenseNet*" in c for c in budgeted)


def test_load_reference_is_strict(tmp_path):
    ref = pd.DataFrame({"dataset": ["cifar100"] * 3, "curve": ["A", "B", "C"],
                        "macs_millions": [1.0, 2.0, 3.0], "top1_percent": [50.0, 60.0, 70.0],
                        "figure": ["budgeted", "", "anytime"]})
    path = tmp_path / "r.csv"
    ref.to_csv(path, index=False)
    for fid in MACS_FIGURES:                          # "B" (no figure) belongs to no figure
        got = load_reference(path, "cifar100", figure=fid)
        assert "B" not in set(got["curve"])
        assert got.attrs == {"dataset": "cifar100", "figure": fid}
    assert list(load_reference(path, "cifar100", figure="anytime")["curve"]) == ["C"]
    ref.drop(columns="figure").to_csv(path, index=False)
    with pytest.raises(DataError, match="figure"):    # the column is required
        load_reference(path, "cifar100")
    ref.assign(figure=["budgeted", "budget", "anytime"]).to_csv(path, index=False)
    with pytest.raises(DataError, match="'budget'"):  # an unknown id is an error, not silence
        load_reference(path, "cifar100")


def paper_lines(fig, ax=None):
    axes = [ax] if ax is not None else fig.axes
    return [ln.get_label() for a in axes for ln in a.get_lines() if ln.get_label().endswith("(paper)")]


def test_anytime_never_draws_a_budgeted_point():
    everything = load_reference(REFERENCE, "cifar100")      # every figure's rows of the data set
    assert set(everything["figure"]) == {"budgeted", "densenet-star"}
    for fig in (anytime_figure(anytime_table(), reference=everything),
                anytime_figure(anytime_table(), reference=load_reference(REFERENCE, "cifar100",
                                                                         figure="anytime"))):
        assert paper_lines(fig) == []
        assert "no published points for cifar100 in this figure" in legend_title(fig.axes[0])


def test_densenet_star_budgeted_panel_draws_only_its_own_points():
    everything = load_reference(REFERENCE, "cifar100")
    fig = densenet_star_figure(anytime_table(["DenseNet", "DenseNet*", "MSDNet"]),
                               budgeted_table(["DenseNet", "DenseNet*", "MSDNet"], singles=()),
                               reference=everything)
    left, right = fig.axes
    assert paper_lines(fig, left) == []
    assert paper_lines(fig, right) == [style.paper_label(c)
                                       for c in paper_curves("cifar100", "densenet-star")]
    assert paper_lines(fig, right) == ["DenseNet-88 (Huang et al. 2016) (paper)"]


def test_budgeted_draws_every_budgeted_curve_and_no_other():
    ref = load_reference(REFERENCE, "cifar10")
    fig = budgeted_figure(budgeted_table(), reference=ref)
    want = {style.paper_label(c) for c in paper_curves("cifar10", "budgeted") if "(continued)" not in c}
    assert set(paper_lines(fig)) == want
    only_star = select_reference(load_reference(REFERENCE, "cifar100"), "densenet-star")
    assert set(only_star["figure"]) == {"densenet-star"}


# -- colours and markers -----------------------------------------------------------------------

def test_every_preset_label_has_an_explicit_colour_and_marker():
    missing = []
    for name, cfg in presets():
        for fid, section in cfg["figures"].items():
            for panel in preset_labels(section, fid):
                missing += [(name, fid, lbl) for lbl in panel if not style.has_style(lbl)]
    assert missing == []
    assert not style.has_style("some new net")


def test_labels_drawn_together_have_distinct_colours_and_markers():
    for name, cfg in presets():
        for fid, section in cfg["figures"].items():
            papers = [base_name(c) for c in paper_curves(cfg.get("reference_dataset"), fid)]
            for i, panel in enumerate(preset_labels(section, fid)):
                # the paper's curves go on the (last) budgeted panel; one key per curve
                names = panel + (papers if i == len(preset_labels(section, fid)) - 1 else [])
                keys = {style.canonical(n): n for n in names}
                colours = [style.colour(n) for n in keys.values()]
                markers = [style.marker(n) for n in keys.values()]
                assert len(set(colours)) == len(colours), (name, fid, keys)
                assert len(set(markers)) == len(markers), (name, fid, keys)
                assert (0.5, 0.5, 0.5) not in colours


def test_each_label_shares_colour_and_marker_with_its_paper_curve():
    matched = set()
    for name, cfg in presets():
        dataset = cfg.get("reference_dataset")
        for fid, section in cfg["figures"].items():
            labels = {lbl for panel in preset_labels(section, fid) for lbl in panel}
            for curve in paper_curves(dataset, fid):
                base = base_name(curve)
                if base in PAPER_ONLY:
                    continue
                # the csv names the curve as the preset's legend does
                assert base in labels, (name, fid, curve)
                assert style.colour(curve) == style.colour(base), curve
                assert style.marker(curve) == style.marker(base), curve
                matched.add((dataset, fid, base))
    assert ("cifar100", "budgeted", "ResNet^MC with early-exits") in matched
    assert ("cifar10", "budgeted", "MSDNet with dynamic evaluation") in matched
    assert ("cifar10", "budgeted", "WideResNet") in matched
    assert ("cifar100", "budgeted", "Stochastic Depth-110") in matched


def test_reproduced_and_paper_lines_share_colour_and_marker():
    ref = load_reference(REFERENCE, "cifar100", figure="budgeted")
    t = budgeted_table(models=("MSDNet with dynamic evaluation", "ResNet^MC with early-exits"),
                       singles=(("WideResNet", 8e7, 69.0),))
    fig = budgeted_figure(t, reference=ref)
    ax = fig.axes[0]
    by_label = {ln.get_label(): ln for ln in ax.get_lines()}
    for c in ax.containers:
        by_label[c.get_label()] = c.lines[0]
    for label in ("MSDNet with dynamic evaluation", "ResNet^MC with early-exits", "WideResNet"):
        mine = by_label[style.display_name(label)]
        paper = next(ln for lbl, ln in by_label.items()
                     if lbl.endswith("(paper)") and lbl.startswith(style.display_name(label)))
        assert mine.get_color() == paper.get_color() and mine.get_marker() == paper.get_marker()


# -- notes, units, legends, outliers -----------------------------------------------------------

def legend_title(ax) -> str:
    leg = ax.get_legend()
    return leg.get_title().get_text() if leg is not None else ""


def test_a_data_set_without_published_points_says_so(tmp_path, capsys):
    t = budgeted_table()
    path = tmp_path / "budgeted.csv"
    t.to_csv(path, index=False)
    ref = load_reference(REFERENCE, "imagenet", figure="budgeted")
    fig = budgeted_figure(t, reference=ref)
    assert "no published points for imagenet in this figure" in legend_title(fig.axes[0])
    assert paper_lines(fig) == []
    fig = budgeted_figure(t)                                  # no points asked for: no note
    assert "published" not in legend_title(fig.axes[0])
    fig = budgeted_figure(t, reference=load_reference(REFERENCE, "cifar100", figure="budgeted"))
    assert "published" not in legend_title(fig.axes[0])
    assert main(["figure", "budgeted", "--table", str(path), "--reference", str(REFERENCE),
                 "--dataset", "imagenet", "--out", str(tmp_path / "b")]) == 0
    assert "no published points" in capsys.readouterr().err


def all_macs_figures(ref=None, scale=1.0):
    a = anytime_table()
    a["macs"] *= scale
    b = budgeted_table(singles=())
    b["avg_macs"] *= scale
    return {
        "anytime": anytime_figure(a, reference=ref),
        "budgeted": budgeted_figure(b, reference=ref),
        "ablation": anytime_figure(anytime_table(ABLATION_MODELS, single=ABLATION_MODELS[-1:]),
                                   reference=ref),
        "densenet-star": densenet_star_figure(anytime_table(["DenseNet", "DenseNet*", "MSDNet"]),
                                              budgeted_table(["DenseNet", "DenseNet*", "MSDNet"]),
                                              reference=ref),
        "reduction-lazy": reduction_lazy_figure(budgeted_table(REDUCTION_MODELS, singles=()),
                                                reference=ref),
    }


def tick_texts(fig, ax):
    fig.draw_without_rendering()
    return [t.get_text() for t in ax.get_xticklabels()], ax.xaxis.get_offset_text().get_text()


@pytest.mark.parametrize("scale, unit", [(1.0, "MMACs"), (20.0, "GMACs"), (0.01, "MMACs")])
def test_one_macs_unit_and_no_multiplier(scale, unit):
    figs = all_macs_figures(scale=scale) if scale == 1.0 else \
        {"anytime": anytime_figure(anytime_table().assign(macs=lambda d: d.macs * scale)),
         "densenet-star": densenet_star_figure(
             anytime_table(["DenseNet", "MSDNet"]).assign(macs=lambda d: d.macs * scale),
             budgeted_table(["DenseNet", "MSDNet"], singles=()).assign(
                 avg_macs=lambda d: d.avg_macs * scale))}
    for fid, fig in figs.items():
        units = set()
        for ax in fig.axes:
            label = ax.get_xlabel()
            assert re.search(r"\b[MG]MACs per image\b", label), (fid, label)
            assert "10^" not in label and "times" not in label
            units.add(label.split("(")[1].split()[0])
            ticks, offset = tick_texts(fig, ax)
            assert offset == "", (fid, offset)
            assert all(re.fullmatch(r"-?[0-9.]+", t) for t in ticks if t), (fid, ticks)
        assert units == {unit}, fid                       # one unit per figure


def data_points_px(ax):
    """Every drawn point and line vertex (and 20 samples per segment) in display coordinates."""
    out = []
    for ln in ax.get_lines():
        xy = np.ma.filled(np.ma.asarray(ln.get_xydata(), dtype=float), np.nan).reshape(-1, 2)
        xy = xy[np.isfinite(xy).all(axis=1)]
        d = ln.get_transform().transform(xy)
        if ln.get_linestyle() not in ("None", "none", "") and len(d) > 1:
            t = np.linspace(0, 1, 20)[None, :, None]
            d = (d[:-1, None] + (d[1:, None] - d[:-1, None]) * t).reshape(-1, 2)
        out.append(d)
    for c in ax.collections:
        for p in c.get_paths():
            out.append(c.get_transform().transform(p.vertices))
    return np.concatenate(out) if out else np.empty((0, 2))


def assert_legends_cover_no_data(fig):
    fig.draw_without_rendering()
    rend = style.renderer(fig)
    for ax in fig.axes:
        leg = ax.get_legend()
        if leg is None:
            continue
        box, axbox = leg.get_window_extent(rend), ax.get_window_extent(rend)
        pts = data_points_px(ax)
        pts = pts[(pts[:, 0] >= axbox.x0) & (pts[:, 0] <= axbox.x1)
                  & (pts[:, 1] >= axbox.y0) & (pts[:, 1] <= axbox.y1)]      # what is visible
        inside = ((pts[:, 0] >= box.x0) & (pts[:, 0] <= box.x1)
                  & (pts[:, 1] >= box.y0) & (pts[:, 1] <= box.y1))
        assert not inside.any(), (ax.get_title(), pts[inside][:3])


def test_legends_cover_no_data():
    ref = load_reference(REFERENCE, "cifar100")
    figs = {**all_macs_figures(ref), "staircase": staircase_figure(staircase_table())}
    many = budgeted_table(models=("MSDNet with dynamic evaluation", "ResNet^MC with early-exits",
                                  "DenseNet^MC with early-exits"),
                          singles=(("ResNets", 3e7, 66.0), ("DenseNets", 4e7, 68.0)))
    figs["crowded"] = budgeted_figure(many, reference=load_reference(REFERENCE, "cifar100",
                                                                    figure="budgeted"))
    for fid, fig in figs.items():
        assert_legends_cover_no_data(fig)


def test_an_outlier_is_marked_at_the_edge_not_squeezing_the_curves():
    t = budgeted_table(models=("MSDNet with dynamic evaluation", "ResNet^MC with early-exits"),
                       singles=(("Wide ResNet", 3e8, 71.0), ("Stochastic Depth ResNet", 2.5e7, 66.0)))
    fig = budgeted_figure(t)
    ax = fig.axes[0]
    lo, hi = ax.get_xlim()
    assert hi < 1e8 and hi > 4.9e7                        # the bulk ends near 5e7 MACs
    notes = [a.get_text() for a in ax.texts if "Wide ResNet" in a.get_text()]
    assert notes == ["Wide ResNet: 300 MMACs, 71.5 %"]     # mean over seeds 0, 1
    # no outlier: nothing clipped, nothing marked
    fig = budgeted_figure(budgeted_table(singles=(("ResNet-56", 4e7, 70.0),)))
    assert not [a for a in fig.axes[0].texts if "MMACs" in a.get_text()]


def test_outlier_cut_rules():
    pts = lambda *xs: {f"c{i}": ((0, 0, 0), np.asarray(x, float), np.ones(len(x)))  # noqa: E731
                       for i, x in enumerate(xs)}
    assert outlier_cut(pts(np.linspace(1e7, 5e7, 30), [3e8])) == pytest.approx(5e7)
    assert outlier_cut(pts(np.linspace(1e7, 5e7, 30), [6e7])) is None       # no big jump
    assert outlier_cut(pts([1e7], [4e7], [8e7], [1.2e8])) is None          # the bulk itself
    # the paper's ResNets start 3.3x apart at the low end: not an outlier
    assert outlier_cut(pts([12.35e6, 40.8e6, 69.3e6, 97.8e6, 126e6, 250e6],
                           np.linspace(2e7, 1.3e8, 40))) is None


# -- the spread over seeds ---------------------------------------------------------------------

def bands(ax):
    return [c for c in ax.collections if isinstance(c, PolyCollection)]


def errorbars(ax):
    return [c for c in ax.containers if isinstance(c, ErrorbarContainer)]


def test_seed_spread_everywhere_there_are_seeds():
    b = budgeted_figure(budgeted_table(seeds=(0, 1, 2)))
    ax = b.axes[0]
    assert len(bands(ax)) == 2                            # one band per dynamic curve
    (single,) = errorbars(ax)
    assert single.has_yerr and single.has_xerr
    assert legend_title(ax).startswith("mean ± std over 3 seeds")
    d = densenet_star_figure(anytime_table(["DenseNet", "DenseNet*", "MSDNet"]),
                             budgeted_table(["DenseNet", "DenseNet*", "MSDNet"], singles=()))
    assert [len(bands(a)) for a in d.axes] == [3, 3]
    assert all(legend_title(a).startswith("mean ± std over 2 seeds") for a in d.axes)
    r = reduction_lazy_figure(budgeted_table(REDUCTION_MODELS, singles=()))
    assert len(bands(r.axes[0])) == 4
    s = staircase_figure(staircase_table())
    for a in s.axes:
        assert len(errorbars(a)) == 3 and all(c.has_yerr for c in errorbars(a))
        assert legend_title(a) == "mean ± std over 2 seeds"
    one = budgeted_figure(budgeted_table(seeds=(0,)))
    assert bands(one.axes[0]) == [] and legend_title(one.axes[0]) == "one seed: no spread shown"


# -- easy / hard -------------------------------------------------------------------------------

def preds_for_easy_hard():
    """3 classes x 4 images, 3 exits. Class 0: image 1 only right at the last exit; classes 1
    and 2: no such image (fallback: least confident at the last exit)."""
    rng = np.random.default_rng(0)
    n, labels = 12, np.repeat([0, 1, 2], 4)
    logits = rng.normal(0, 0.01, size=(3, n, 3))
    for i, y in enumerate(labels):
        logits[:, i, y] += 1.0 + 0.3 * i                   # every exit right, growing confidence
    logits[:2, 1, :] = [[0.0, 3.0, 0.0]] * 2                # image 1 (class 0): wrong at exits 1, 2
    return Predictions(logits=logits.astype(np.float32), labels=labels.astype(np.int64),
                       exit_macs=np.array([1.0, 2.0, 3.0]), sample_ids=np.arange(100, 112))


def test_easy_hard_rows_are_filled_and_the_title_says_how():
    from msdnet.evaluation.analysis.easy_hard import easy_hard_table

    preds = preds_for_easy_hard()
    table = easy_hard_table(preds, per_class=2)
    assert set(table.loc[table.kind == "hard", "label"]) == {0}
    full = add_fallback_hard(table, preds, per_class=2)
    hard = full[full.kind == "hard"]
    assert set(hard["label"]) == {0, 1, 2}
    zero = hard[hard.label == 0]                        # last-exit-only images first, then filled up
    assert zero["hard_by"].iloc[0] == "last_exit_only" and len(zero) <= 2
    assert set(table.loc[(table.kind == "hard") & (table.label == 0), "sample_id"]) <= set(zero["sample_id"])
    fb = hard[hard.label == 1]
    assert set(fb["hard_by"]) == {"last_exit_confidence"} and len(fb) == 2
    # the least confident at the last exit of class 1 (ids 104..107, confidence grows with i)
    assert list(fb["sample_id"]) == [104, 105]
    images = np.random.default_rng(1).integers(0, 256, size=(12, 1, 8, 8), dtype=np.uint8)
    fig = easy_hard_figure(full, images, np.arange(100, 112), labels=[0, 1, 2], per_kind=2,
                           class_names=["zero", "one", "2"])
    texts = [t.get_text() for sub in fig.subfigs for t in sub.texts] + \
        [t.get_text() for ax in fig.axes for t in ax.texts]
    assert "no hard image" not in texts                   # every class with images is filled
    title = next(t for t in texts if t.startswith("hard"))
    assert "only the last exit right" in title and "lowest confidence at the last exit" in title
    row_labels = [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel()]
    assert row_labels == ["zero", "one", "class 2"]       # names where the data set has them
    assert any(ax.get_title().startswith("\u2020 last") for ax in fig.axes)
    only_fb = add_fallback_hard(table[table.label != 0], preds, per_class=1)
    fig = easy_hard_figure(only_fb, images, np.arange(100, 112), labels=[1, 2], per_kind=1)
    texts = [t.get_text() for sub in fig.subfigs for t in sub.texts]
    assert any(t.startswith("hard (lowest confidence at the last exit") for t in texts)


def test_load_test_images_passes_the_class_names(tmp_path, monkeypatch):
    import msdnet.data as data
    from msdnet.data import load_data as real

    names = tuple(f"n{i}" for i in range(10))

    def named(cfg):
        bundle = real(cfg)
        bundle.class_names = names
        return bundle

    monkeypatch.setattr(data, "load_data", named)
    yaml = tmp_path / "data.yaml"
    yaml.write_text(f"name: digits\nimage_size: 16\nroot: {tmp_path / 'd'}\nval_size: 0.2\n")
    images, ids, got = load_test_images(yaml)
    assert got == list(names) and len(images) == len(ids)
    monkeypatch.setattr(data, "load_data", real)
    assert load_test_images(yaml)[2] is None              # digits has no names
