"""The paper's figures: every figure id through `msdnet figure`, axis labels, means over seeds,
the paper's points, bad tables, and the overview notebook under papermill."""

from __future__ import annotations

import argparse
import importlib.util
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from msdnet.cli import main
from msdnet.commands import figure as figure_command
from msdnet.core.errors import DataError
from msdnet.figures import (FIGURE_IDS, ablation_figure, anytime_figure, budgeted_figure,
                            densenet_star_figure, easy_hard_figure, load_reference,
                            reduction_lazy_figure, staircase_figure, style)
from msdnet.figures.common import mean_curve
from msdnet.figures.summary import anytime_at_budgets, budgeted_at_budgets, common_budgets

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "overview.py"

ANYTIME_MODELS = ["MSDNet", "ResNet^MC", "DenseNet^MC", "Ensemble of ResNets (all shallow)"]
ABLATION_MODELS = ["MSDNet", "MSDNet w/o dense connection", "MSDNet w/o dense connection and multi-scale",
                   "MSDNet w/o dense connection, multi-scale and intermediate classifiers"]
REDUCTION_MODELS = ["MSDNet", "MSDNet w/o network reduction", "MSDNet w/o lazy evaluation",
                    "MSDNet w/o network reduction and lazy evaluation"]


# -- synthetic tables --------------------------------------------------------------------------

def anytime_table(models=ANYTIME_MODELS, seeds=(0, 1), exits=4, single=()):
    """Accuracy = 50 + 5*exit + offset(model) + seed (so the mean over seeds 0, 1 is +0.5)."""
    rows = []
    for i, model in enumerate(models):
        n = 1 if model in single else exits
        for seed in seeds:
            for e in range(1, n + 1):
                rows.append({"model": model, "seed": seed, "exit": e, "macs": 1e7 * e * (i + 1),
                             "params": 1e5 * e, "accuracy": 50.0 + 5 * e + i + seed})
    return pd.DataFrame(rows)


def budgeted_table(models=("MSDNet", "ResNet^MC"), seeds=(0, 1), singles=(("ResNet-110", 2.5e8, 72.0),)):
    rows = []
    for i, model in enumerate(models):
        for seed in seeds:
            for j in range(1, 40):
                p = j / 20
                rows.append({"model": model, "seed": seed, "kind": "dynamic", "p": p,
                             "avg_macs": 1e7 * (1 + 2 * p) + 1e5 * seed, "accuracy": 60 + 10 * p / (1 + p) - 3 * i + seed,
                             "val_avg_macs": 1e7 * (1 + 2 * p), "val_accuracy": 60.0})
    for name, macs, acc in singles:
        for seed in seeds:
            rows.append({"model": name, "seed": seed, "kind": "single", "p": float("nan"),
                         "avg_macs": macs, "accuracy": acc + seed, "val_avg_macs": macs, "val_accuracy": acc})
    return pd.DataFrame(rows)


def staircase_table():
    from msdnet.evaluation.analysis.staircase import staircase_table as make
    runs, base = [], []
    for fam, off in (("resnet", 0.0), ("densenet", 2.0), ("msdnet", 5.0)):
        for seed in (0, 1):
            base.append({"family": fam, "seed": seed, "final_accuracy": 70.0 + off})
            for loc in (0.25, 0.5, 0.75):
                runs.append({"family": fam, "seed": seed, "location": loc,
                             "intermediate_accuracy": 30 + 40 * loc + off + seed,
                             "final_accuracy": 68.0 + off + seed})
    return make(pd.DataFrame(runs), pd.DataFrame(base))


def reference_table():
    return pd.DataFrame([
        {"dataset": "cifar100", "curve": "MSDNet with dynamic evaluation", "macs_millions": 10.0, "top1_percent": 62.0},
        {"dataset": "cifar100", "curve": "MSDNet with dynamic evaluation", "macs_millions": 20.0, "top1_percent": 70.0},
        {"dataset": "cifar100", "curve": "MSDNet with dynamic evaluation (continued)", "macs_millions": 30.0,
         "top1_percent": 72.0},
        {"dataset": "cifar100", "curve": "ResNet with early-exits", "macs_millions": 21.0, "top1_percent": 45.0},
        {"dataset": "cifar100", "curve": "ResNet with early-exits", "macs_millions": 40.0, "top1_percent": 60.0},
        {"dataset": "cifar100", "curve": "FractalNet (Larsson et al., 2016)", "macs_millions": 128.6,
         "top1_percent": 72.6},
        {"dataset": "cifar10", "curve": "ResNet with early-exits", "macs_millions": 21.0, "top1_percent": 84.0},
    ]).assign(figure="budgeted")


def easy_hard_table():
    """Class 0 and 2: both kinds; class 1: easy only; class 3: hard only."""
    rows = [(3, 0, "easy", 0.99), (10, 0, "easy", 0.95), (4, 0, "hard", 0.2),
            (5, 1, "easy", 0.97), (6, 2, "easy", 0.9), (7, 2, "hard", 0.3), (8, 3, "hard", 0.1)]
    return pd.DataFrame(rows, columns=["sample_id", "label", "kind", "confidence"])


def digits_test_ids(root):
    from msdnet.data import DataConfig, load_data
    return load_data(DataConfig(name="digits", image_size=16, root=str(root), val_size=0.2)).test.ids.numpy()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Every table as CSV, a data YAML (digits) and the reference points (read-only for tests)."""
    tmp_path = tmp_path_factory.mktemp("figure-inputs")
    d = tmp_path / "tables"
    d.mkdir()
    paths = {
        "anytime": d / "anytime.csv", "budgeted": d / "budgeted.csv", "staircase": d / "staircase.csv",
        "ablation": d / "ablation.csv", "easy_hard": d / "easy_hard.csv",
        "densenet_star_anytime": d / "densenet_star_anytime.csv",
        "densenet_star_budgeted": d / "densenet_star_budgeted.csv", "reduction_lazy": d / "reduction_lazy.csv",
        "reference": tmp_path / "reference_points.csv", "data": tmp_path / "data.yaml",
    }
    anytime_table().to_csv(paths["anytime"], index=False)
    budgeted_table().to_csv(paths["budgeted"], index=False)
    staircase_table().to_csv(paths["staircase"], index=False)
    anytime_table(ABLATION_MODELS, single=ABLATION_MODELS[-1:]).to_csv(paths["ablation"], index=False)
    paths["data"].write_text(f"name: digits\nimage_size: 16\nroot: {tmp_path / 'data'}\nval_size: 0.2\n")
    test_ids = digits_test_ids(tmp_path / "data")
    eh = easy_hard_table()
    eh["sample_id"] = [int(test_ids[i]) for i in eh["sample_id"]]      # real ids of the test split
    eh.to_csv(paths["easy_hard"], index=False)
    anytime_table(["DenseNet", "DenseNet*", "MSDNet"]).to_csv(paths["densenet_star_anytime"], index=False)
    budgeted_table(["DenseNet", "DenseNet*", "MSDNet"], singles=()).to_csv(paths["densenet_star_budgeted"],
                                                                          index=False)
    budgeted_table(REDUCTION_MODELS, singles=()).to_csv(paths["reduction_lazy"], index=False)
    reference_table().to_csv(paths["reference"], index=False)
    paths.update(combiner_tables(tmp_path))
    return paths


def combiner_tables(tmp_path):
    """The combiner figures' tables, built from synthetic predictions of two seeds."""
    from msdnet.evaluation import tables as T
    from msdnet.evaluation.analysis.synthetic import make_predictions
    from msdnet.inference.predictions import save

    rng = np.random.default_rng(0)
    dirs = {}
    for seed in (0, 1):
        d = tmp_path / "pred" / f"seed{seed}"
        for split, n, start in (("val", 150, 0), ("test", 200, 1000)):
            p = make_predictions(rng, n_exits=4, n_images=n, meta={"split": split, "dataset": "x"})
            p.sample_ids = np.arange(start, start + n)
            p.exit_macs = np.array([1e6, 2e6, 4e6, 6e6])
            save(d / f"{split}.npz", p)
        dirs[seed] = d
    src, section, out = T.Sources({"m": dirs}), {"MSDNet": "m"}, {}
    for name in ("combiners", "monotonicity", "calibration", "reliability", "budgeted_combiners"):
        out[name] = tmp_path / "tables" / f"{name}.csv"
        getattr(T, f"{name}_rows")(section, src).to_csv(out[name], index=False)
    return out


def cli_args(fid, p):
    from msdnet.figures.registry import FIGURES

    args = [a for t in FIGURES[fid].tables for a in ("--table", str(p[t.name]))]
    if fid == "easy-hard":
        args += ["--data", str(p["data"])]
    return args


def lines(fig):
    """Every labelled data line: plain lines, and the data line of an error bar under its label."""
    out = []
    for ax in fig.axes:
        out += [ln for ln in ax.get_lines() if not ln.get_label().startswith("_")]
        for c in ax.containers:
            if getattr(c, "lines", None) and c.lines[0] is not None:
                c.lines[0].set_label(c.get_label())
                out.append(c.lines[0])
    return out


def labels(fig):
    return [line.get_label() for line in lines(fig)]


# -- the command -------------------------------------------------------------------------------

def test_figure_ids_agree():
    parser = argparse.ArgumentParser()
    figure_command.add_arguments(parser)
    assert tuple(parser._actions[1].choices) == tuple(FIGURE_IDS)


@pytest.mark.parametrize("fid", FIGURE_IDS)
def test_cli_writes_valid_pdf_and_png(fid, files, tmp_path, capsys):
    from PIL import Image
    out = tmp_path / "figs" / fid
    extra = ["--reference", str(files["reference"]), "--dataset", "cifar100"]   # ignored where no MACs
    assert main(["figure", fid, *cli_args(fid, files), *extra, "--title", "T", "--out", str(out)]) == 0
    pdf, png = out.with_name(fid + ".pdf"), out.with_name(fid + ".png")
    assert pdf.read_bytes()[:5] == b"%PDF-"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(png) as im:
        im.verify()
    with Image.open(png) as im:
        assert im.size[0] > 300 and im.size[1] > 200
        assert len(np.unique(np.asarray(im.convert("L")))) > 10        # something was drawn
    assert sorted(p.name for p in out.parent.iterdir()) == sorted([pdf.name, png.name])  # no temp left
    captured = capsys.readouterr()
    assert "wrote" in captured.out
    from msdnet.figures.registry import FIGURES
    assert ("--reference is ignored" in captured.err) == (not FIGURES[fid].macs_axis)


def test_out_with_suffix_is_a_stem(files, tmp_path):
    assert main(["figure", "anytime", "--table", str(files["anytime"]), "--out", str(tmp_path / "a.png")]) == 0
    assert (tmp_path / "a.pdf").is_file() and (tmp_path / "a.png").is_file()


@pytest.mark.parametrize("drop", ["accuracy", "macs"])
def test_missing_column_is_one_line_naming_it(drop, files, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    anytime_table().drop(columns=[drop]).to_csv(bad, index=False)
    assert main(["figure", "anytime", "--table", str(bad), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert drop in err and str(bad) in err
    assert not list(tmp_path.glob("x*"))


def test_missing_column_in_the_second_densenet_star_table(files, tmp_path, capsys):
    bad = tmp_path / "b.csv"
    budgeted_table().drop(columns=["kind"]).to_csv(bad, index=False)
    assert main(["figure", "densenet-star", "--table", str(files["anytime"]), "--table", str(bad),
                 "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "kind" in err and str(bad) in err


@pytest.mark.parametrize("content", ["", "model,seed,exit,macs,accuracy\n"])
def test_empty_table_is_an_error(content, tmp_path, capsys):
    empty = tmp_path / "empty.csv"
    empty.write_text(content)
    assert main(["figure", "anytime", "--table", str(empty), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(empty) in err


def test_missing_table_file(tmp_path, capsys):
    assert main(["figure", "budgeted", "--table", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "x")]) == 2
    assert "nope.csv" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [
    ["figure", "anytime", "--out", "x"],                                        # no --table
    ["figure", "densenet-star", "--table", "t.csv", "--out", "x"],              # wrong option
    ["figure", "easy-hard", "--table", "t.csv", "--out", "x"],                  # no --data
    ["figure", "anytime", "--table", "t.csv", "--reference", "r.csv", "--out", "x"],   # no --dataset
])
def test_bad_option_combinations(argv, capsys):
    assert main(argv) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_bad_kind_value(tmp_path, capsys):
    t = budgeted_table()
    t.loc[0, "kind"] = "envelope"
    bad = tmp_path / "b.csv"
    t.to_csv(bad, index=False)
    assert main(["figure", "budgeted", "--table", str(bad), "--out", str(tmp_path / "x")]) == 2
    assert "envelope" in capsys.readouterr().err


# -- axes, style and the paper's points --------------------------------------------------------

def macs_figures(ref=None):
    return {
        "anytime": anytime_figure(anytime_table(), reference=ref),
        "budgeted": budgeted_figure(budgeted_table(), reference=ref),
        "ablation": ablation_figure(anytime_table(ABLATION_MODELS, single=ABLATION_MODELS[-1:]), reference=ref),
        "densenet-star": densenet_star_figure(anytime_table(["DenseNet", "DenseNet*", "MSDNet"]),
                                              budgeted_table(["DenseNet", "DenseNet*", "MSDNet"]), reference=ref),
        "reduction-lazy": reduction_lazy_figure(budgeted_table(REDUCTION_MODELS, singles=()), reference=ref),
    }


def test_axes_say_macs_and_top1():
    for fid, fig in macs_figures().items():
        for ax in fig.axes:
            assert "MACs" in ax.get_xlabel(), fid
            assert "top-1" in ax.get_ylabel(), fid
            assert "FLOP" not in ax.get_xlabel() + ax.get_ylabel(), fid


def test_macs_axis_keeps_data_in_macs_and_names_the_unit():
    fig = anytime_figure(anytime_table())
    ax = fig.axes[0]
    assert ax.get_xlabel() == "budget (MMACs per image)"      # largest cost: 1.6e8 MACs
    assert "10^" not in ax.get_xlabel()
    msd = next(line for line in ax.get_lines() if line.get_label() == "MSDNet")
    assert list(msd.get_xdata()) == pytest.approx([1e7, 2e7, 3e7, 4e7])


def test_staircase_panels_and_values():
    table = staircase_table()
    fig = staircase_figure(table)
    assert len(fig.axes) == 2
    left, right = fig.axes
    assert "intermediate" in left.get_ylabel() and "without intermediate" in right.get_ylabel()
    assert {t.get_text() for t in left.get_legend().get_texts()} == {"ResNet", "DenseNet", "MSDNet"}
    msd = next(line for line in lines(fig) if line.get_label() == "MSDNet" and line.axes is left)
    want = table[(table.family == "msdnet") & (table.metric == "relative_intermediate")]["mean"]
    assert list(msd.get_ydata()) == pytest.approx(list(want))
    assert msd.get_color() == style.colour("MSDNet")


def test_reference_overlay_only_for_its_dataset(files):
    ref = load_reference(files["reference"], "cifar100")
    fig = budgeted_figure(budgeted_table(), reference=ref)
    paper = [lbl for lbl in labels(fig) if lbl.endswith("(paper)")]
    assert "MSDNet with dynamic evaluation (paper)" in paper
    assert "FractalNet (Larsson et al., 2016) (paper)" in paper
    assert not any("continued" in lbl for lbl in paper)      # a continued segment shares its entry
    line = next(ln for ln in lines(fig) if ln.get_label() == "ResNet with early-exits (paper)")
    assert line.get_linestyle() == "--" and line.get_markerfacecolor() == "none"
    assert line.get_color() == style.colour("ResNet^MC")    # the paper's name maps to the curve's colour
    assert list(line.get_xdata()) == pytest.approx([21e6, 40e6])       # millions -> MACs
    assert fig.axes[0].get_legend().get_texts()[-1].get_text().endswith("(paper)")  # paper's last

    none = load_reference(files["reference"], "imagenet")
    assert none.empty
    fig = budgeted_figure(budgeted_table(), reference=none)
    assert not [lbl for lbl in labels(fig) if "(paper)" in lbl]


def test_reference_through_the_cli(files, tmp_path):
    for ds in ("cifar10", "imagenet"):
        assert main(["figure", "reduction-lazy", "--table", str(files["reduction_lazy"]), "--reference",
                     str(files["reference"]), "--dataset", ds, "--out", str(tmp_path / ds)]) == 0
        assert (tmp_path / f"{ds}.png").stat().st_size > 1000


def test_reference_figure_column_filters(tmp_path):
    ref = reference_table()
    ref["figure"] = ["budgeted"] * 3 + ["anytime"] * 2 + [None, "budgeted"]
    path = tmp_path / "r.csv"
    ref.to_csv(path, index=False)
    got = load_reference(path, "cifar100", figure="anytime")
    assert sorted(set(got["curve"])) == ["ResNet with early-exits"]      # an empty figure: none
    assert set(load_reference(path, "cifar100", figure="budgeted")["curve"]) == {
        "MSDNet with dynamic evaluation", "MSDNet with dynamic evaluation (continued)"}
    for fid in ("ablation", "densenet-star", "reduction-lazy"):
        assert load_reference(path, "cifar100", figure=fid).empty


def test_colours_and_legend_names_are_shared_across_figures():
    figs = macs_figures()
    seen = {}
    for fig in figs.values():
        for line in lines(fig):
            if line.get_label() in ("MSDNet", "DenseNet"):
                seen.setdefault(line.get_label(), set()).add(line.get_color())
    assert len(seen["MSDNet"]) == 1 and len(seen["DenseNet"]) == 1
    assert seen["MSDNet"] != seen["DenseNet"]
    assert "ResNet$^{MC}$" in labels(figs["anytime"])
    assert style.colour("some new net") == style.colour("some new net (paper)")
    assert style.colour("some new net") != (0.5, 0.5, 0.5)


def test_anytime_mean_and_band_over_seeds():
    fig = anytime_figure(anytime_table(seeds=(0, 1)))
    ax = fig.axes[0]
    msd = next(line for line in ax.get_lines() if line.get_label() == "MSDNet")
    assert list(msd.get_ydata()) == pytest.approx([55.5, 60.5, 65.5, 70.5])  # mean of seeds 0, 1
    assert len(ax.collections) == len(ANYTIME_MODELS)                        # one band each
    one = anytime_figure(anytime_table(seeds=(0,)))
    assert len(one.axes[0].collections) == 0                                 # one seed: lines only


def test_single_exit_model_is_a_marker():
    fig = ablation_figure(anytime_table(ABLATION_MODELS, single=ABLATION_MODELS[-1:]))
    line = next(ln for ln in lines(fig) if ln.get_label() == ABLATION_MODELS[-1])
    assert len(line.get_xdata()) == 1 and line.get_linestyle() == "None"


def test_mean_curve_interpolates_on_the_common_range():
    pts = pd.DataFrame({"seed": [0, 0, 0, 1, 1], "avg_macs": [0.0, 2.0, 4.0, 1.0, 3.0],
                        "accuracy": [0.0, 2.0, 4.0, 3.0, 5.0]})
    m = mean_curve(pts)
    # seed 0: y = x; seed 1: y = x + 2; grid = union of x inside both ranges = [1, 2, 3]
    assert list(m["avg_macs"]) == [1.0, 2.0, 3.0]
    assert list(m["accuracy"]) == pytest.approx([2.0, 3.0, 4.0])
    assert list(m["accuracy_std"]) == pytest.approx([math.sqrt(2)] * 3)
    assert list(m["n_seeds"]) == [2, 2, 2]


def test_single_networks_are_markers_in_the_legend():
    fig = budgeted_figure(budgeted_table(seeds=(0,)))
    line = next(ln for ln in lines(fig) if ln.get_label() == "ResNet-110")
    assert list(line.get_xdata()) == [2.5e8] and list(line.get_ydata()) == [72.0]


def test_summaries():
    at = anytime_at_budgets(anytime_table(seeds=(0,)), [5e6, 2.5e7])
    assert math.isnan(at.loc["MSDNet", 5e6]) and at.loc["MSDNet", 2.5e7] == pytest.approx(60.0)
    bt = budgeted_at_budgets(budgeted_table(seeds=(0,)), [1e9, 2e7])
    assert math.isnan(bt.loc["MSDNet", 1e9]) and bt.loc["ResNet-110", 1e9] == pytest.approx(72.0)
    assert 60 < bt.loc["MSDNet", 2e7] < 70


def test_common_budgets_lie_inside_every_curve():
    t = budgeted_table(seeds=(0, 1))
    budgets = common_budgets(t, n=4)
    assert len(budgets) == 4
    dyn = t[t.kind == "dynamic"]
    lo = dyn.groupby("model")["avg_macs"].min().max()
    hi = dyn.groupby("model")["avg_macs"].max().min()
    assert all(lo < b < hi for b in budgets)
    assert not budgeted_at_budgets(t, budgets).loc[["MSDNet", "ResNet^MC"]].isna().any().any()
    assert common_budgets(t.drop(columns=["avg_macs"])) == []


# -- easy / hard -------------------------------------------------------------------------------

def test_easy_hard_rows_and_missing_kinds():
    images = np.random.default_rng(0).integers(0, 256, size=(12, 3, 8, 8), dtype=np.uint8)
    ids = np.arange(100, 112)
    table = easy_hard_table()
    table["sample_id"] += 100
    fig = easy_hard_figure(table, images, ids, max_classes=4, per_kind=2)
    texts = [t.get_text() for sub in fig.subfigs for t in sub.texts] + \
        [t.get_text() for ax in fig.axes for t in ax.texts]
    assert "easy (exit 1)" in texts and "hard (only the last exit right)" in texts
    assert texts.count("no hard image") == 1 and texts.count("no easy image") == 1
    # classes with both kinds come first: rows are classes 0, 2, 1, 3
    row_labels = [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel()]
    assert row_labels == ["class 0", "class 2", "class 1", "class 3"]
    assert sum(len(ax.images) for ax in fig.axes) == len(table)
    with pytest.raises(DataError, match="sample_id 999"):
        bad = table.copy()
        bad.loc[0, "sample_id"] = 999
        easy_hard_figure(bad, images, ids)


def test_easy_hard_data_yaml_can_be_a_recipe(files, tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("data:\n" + "".join(f"  {line}\n" for line in files["data"].read_text().splitlines())
                      + "train:\n  epochs: 1\n")
    assert main(["figure", "easy-hard", "--table", str(files["easy_hard"]), "--data", str(recipe),
                 "--labels", "1", "3", "--per-kind", "2", "--out", str(tmp_path / "eh")]) == 0
    assert (tmp_path / "eh.png").is_file()


# -- the notebook ------------------------------------------------------------------------------

def _notebook_tools() -> bool:
    return all(importlib.util.find_spec(m) for m in ("papermill", "jupytext", "ipykernel", "nbformat"))


def test_notebook_is_percent_format_with_parameters():
    text = NOTEBOOK.read_text()
    assert "format_name: percent" in text
    assert '# %% tags=["parameters"]' in text
    for line in ('results_dir = "results/mini"', 'figures_dir = "figures/mini"', 'preset = "mini"'):
        assert line in text


@pytest.mark.slow
@pytest.mark.skipif(not _notebook_tools(), reason="papermill, jupytext, ipykernel or nbformat missing")
def test_notebook_runs_under_papermill(files, tmp_path):
    import jupytext
    import nbformat
    import papermill

    results = tmp_path / "results"
    (results / "tables").mkdir(parents=True)
    for key in ("anytime", "budgeted", "staircase", "ablation", "easy_hard", "densenet_star_anytime",
                "densenet_star_budgeted"):                   # reduction_lazy.csv left out on purpose
        (results / "tables" / f"{key}.csv").write_bytes(files[key].read_bytes())
    (results / "data.yaml").write_bytes(files["data"].read_bytes())   # easy-hard redraws from it
    nb = jupytext.read(NOTEBOOK)
    src = tmp_path / "overview.ipynb"
    nbformat.write(nb, src)
    out = tmp_path / "executed.ipynb"
    papermill.execute_notebook(str(src), str(out), cwd=str(tmp_path), progress_bar=False,
                               parameters={"results_dir": str(results), "figures_dir": str(tmp_path / "figs"),
                                           "preset": "test"})
    done = nbformat.read(out, as_version=4)
    outputs = [o for c in done.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "reduction_lazy.csv" in text                       # the missing table is a printed note
    pngs = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(pngs) == 6        # anytime, budgeted, staircase, ablation, easy-hard, densenet-star
