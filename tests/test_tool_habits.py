"""What users of PyTorch, the CLI, DVC and Snakemake expect (issue 20): the README's Python
snippet runs, the model carries its preprocessing, early exit in one call, one CLI convention
(units, help for every option, --out and --set, deprecated spellings that still work), the
metrics file DVC reads."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import msdnet
from msdnet.cli import PLUMBING, main, make_parser
from msdnet.core.errors import MsdnetError
from msdnet.data import iterate_batches, load_data
from msdnet.inference.predictions import load
from msdnet.training.train import make_run_config, train

from conftest import REPO, TINY_MSDNET, tiny_recipe


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny trained MSDNet at runs/msd/checkpoint.pt and its predictions at runs/msd/pred/,
    the paths of the README's Quick tour."""
    tmp = tmp_path_factory.mktemp("habits")
    run = make_run_config(TINY_MSDNET, tiny_recipe(tmp / "data", epochs=1))
    train(run, tmp / "runs" / "msd", log=lambda *_: None)
    assert main(["predict", str(tmp / "runs" / "msd" / "checkpoint.pt"),
                 "--out", str(tmp / "runs" / "msd" / "pred")]) == 0
    return tmp, run


def _readme_python() -> str:
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(encoding="utf-8"), re.S)
    assert len(blocks) == 1, "the README has one Python snippet"
    return blocks[0]


# --- the Python API ---------------------------------------------------------------------------

def test_readme_snippet_runs(trained, monkeypatch, capsys):
    tmp, run = trained
    code = _readme_python()
    assert 3 <= len([ln for ln in code.splitlines() if ln.strip()]) <= 6
    monkeypatch.chdir(tmp)
    images = load_data(run.data).test.images[:20]                    # raw uint8 [B, C, H, W]
    ns: dict = {"images": images}
    exec(compile(code, "README.md", "exec"), ns)
    out = ns["out"]
    assert out.predictions.shape == (20,) and out.exits.shape == (20,) and out.macs.shape == (20,)
    model = ns["model"]
    assert set(out.macs.tolist()) <= set(model.exit_macs)
    assert capsys.readouterr().out.strip()


def test_transforms_give_the_batches_training_and_predict_saw(trained):
    tmp, run = trained
    model = msdnet.load_model(tmp / "runs" / "msd" / "checkpoint.pt")
    bundle = load_data(run.data)
    pre = model.transforms()
    assert pre is model.preprocess
    assert pre.mean == tuple(bundle.mean) and pre.std == tuple(bundle.std)
    assert pre.input_size == tuple(model.input_size)
    x, _, _ = next(iter(iterate_batches(bundle, "test", 16)))
    raw = bundle.test.images[:16]
    assert torch.equal(pre(raw), x)                                  # uint8 tensors
    assert torch.equal(pre(list(raw)), x)                            # a list of [C, H, W]
    assert torch.equal(pre(raw.float() / 255), x)                    # floats on [0, 1]
    from PIL import Image
    pil = Image.fromarray(raw[0].permute(1, 2, 0).numpy())
    assert torch.equal(pre(pil), x[:1])                              # a PIL image
    big = pre(torch.nn.functional.interpolate(raw[:2].float(), scale_factor=2).to(torch.uint8))
    assert big.shape == x[:2].shape                                  # resized to its input
    grey = pre(raw[:2, :1])                                          # one channel -> three
    assert grey.shape == x[:2].shape


def test_early_exit_thresholds_and_budget(trained):
    tmp, run = trained
    model = msdnet.load_model(tmp / "runs" / "msd" / "checkpoint.pt")
    bundle = load_data(run.data)
    x = model.transforms()(bundle.test.images)
    y = bundle.test.labels
    everyone_first = msdnet.early_exit(model, x, thresholds=0.0, labels=y)
    assert (everyone_first.exits == 0).all() and (everyone_first.macs == model.exit_macs[0]).all()
    nobody = msdnet.early_exit(model, x, thresholds=[1.1] * (model.num_exits - 1), labels=y)
    assert (nobody.exits == model.num_exits - 1).all()
    with torch.no_grad():
        last = model(x)[-1].argmax(1).numpy()
    assert np.array_equal(nobody.predictions, last)
    val = tmp / "runs" / "msd" / "pred" / "val.npz"
    budget = 0.5 * (model.exit_macs[0] + model.exit_macs[-1])
    at = msdnet.early_exit(model, x, budget=budget, val=val, labels=y)
    assert 0 <= at.accuracy <= 100 and at.macs.mean() <= model.exit_macs[-1]
    with pytest.raises(MsdnetError, match="val="):
        msdnet.early_exit(model, x, budget=budget)
    with pytest.raises(MsdnetError, match="one of them"):
        msdnet.early_exit(model, x)


# --- one CLI convention -----------------------------------------------------------------------

def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = make_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


@pytest.mark.parametrize("name", sorted(_subparsers()))
def test_every_option_has_help_and_no_literal_percent(name, capsys):
    parser = _subparsers()[name]
    for action in parser._actions:
        if action.help == argparse.SUPPRESS:
            continue                                     # deprecated spellings, hidden
        assert action.help and action.help.strip(), (name, action.option_strings or action.dest)
    with pytest.raises(SystemExit):
        main([name, "--help"])
    out = capsys.readouterr().out
    assert "%%" not in out and "%(" not in out, name


def test_main_help_groups_the_plumbing(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    listed = re.findall(r"^    (\S+)\s", out, re.M)
    assert "predict" in listed and not set(PLUMBING) & set(listed)
    assert "plumbing" in out and all(p in out for p in PLUMBING) and "%%" not in out


def test_tables_print_mmacs_and_top1(trained, capsys):
    tmp, _ = trained
    pred = tmp / "runs" / "msd" / "pred"
    assert main(["anytime", "--test", str(pred / "test.npz")]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0]
    assert "MMACs" in header and "top-1 %" in header and "e+0" not in out
    assert main(["budgeted", "--val", str(pred / "val.npz"), "--test", str(pred / "test.npz")]) == 0
    out = capsys.readouterr().out
    assert "NaN" not in out and "nan" not in out and " budget" not in out.splitlines()[0]
    assert "avg_MMACs" in out and "top-1 %" in out


def test_old_spellings_still_work(trained, tmp_path, capsys):
    tmp, run = trained
    ckpt = str(tmp / "runs" / "msd" / "checkpoint.pt")
    root = str(run.data.root)
    assert main(["predict", ckpt, "--out-dir", str(tmp_path / "a"), "--splits", "test",
                 "--set-data", f"root={root}"]) == 0
    assert main(["predict", ckpt, "--out", str(tmp_path / "b"), "--splits", "test",
                 "--set", f"data.root={root}"]) == 0
    a, b = load(tmp_path / "a" / "test.npz"), load(tmp_path / "b" / "test.npz")
    assert np.array_equal(a.logits, b.logits)
    assert main(["anytime", "--test", str(tmp_path / "a" / "test.npz"), "--csv", str(tmp_path / "x.csv")]) == 0
    assert main(["anytime", "--test", str(tmp_path / "a" / "test.npz"), "--out", str(tmp_path / "y.csv")]) == 0
    assert pd.read_csv(tmp_path / "x.csv").equals(pd.read_csv(tmp_path / "y.csv"))
    assert "macs" in pd.read_csv(tmp_path / "x.csv").columns          # the files keep their units
    err = capsys.readouterr().err
    assert "it/s" not in err                                          # no bar: stderr is not a TTY


def test_set_rejects_other_sections(trained, tmp_path, capsys):
    tmp, _ = trained
    ckpt = str(tmp / "runs" / "msd" / "checkpoint.pt")
    assert main(["predict", ckpt, "--out", str(tmp_path / "p"), "--set", "train.epochs=3"]) == 2
    assert "only data.KEY=VALUE" in capsys.readouterr().err


# --- DVC metrics and plots, the Snakemake report --------------------------------------------------

def _anytime_rows(label, name, seeds, macs, acc):
    return [{"model": label, "name": name, "seed": s, "exit": k + 1, "macs": m, "params": 1,
             "accuracy": a + s} for s in seeds for k, (m, a) in enumerate(zip(macs, acc))]


def test_metrics_summarise_the_tables(tmp_path, capsys):
    tables = tmp_path / "tables"
    tables.mkdir()
    pd.DataFrame(_anytime_rows("MSDNet", "msdnet", [0, 1], [1e6, 2.5e6], [80.0, 90.0])
                 + _anytime_rows("ResNet^MC", "resnet-mc", [0, 1], [1.5e6, 3e6], [70.0, 85.0])
                 ).to_csv(tables / "anytime.csv", index=False)
    assert main(["metrics", str(tables), "--out", str(tmp_path / "metrics.json")]) == 0
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["models"]["msdnet"]["seed1"] == {"top1_percent": 91.0, "mmacs": 2.5}
    assert m["models"]["resnet-mc"]["seed0"] == {"top1_percent": 85.0, "mmacs": 3.0}
    assert m["findings"] == {"anytime": 1} and (m["reproduced"], m["checked"]) == (1, 1)
    capsys.readouterr()
    assert main(["metrics", str(tables)]) == 0
    assert json.loads(capsys.readouterr().out) == m


def test_dvc_yaml_declares_metrics_and_plots():
    import yaml

    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())
    metrics = dvc["stages"]["analyze"]["metrics"]
    # cached (results/ is git-ignored, so `dvc pull` restores it and `dvc exp show` finds it)
    assert metrics == [{"results/${workflow.preset}/metrics.json": {"persist": True}}]
    plots = {k: v for p in dvc["plots"] for k, v in p.items()}
    assert plots["anytime"]["x"] == "macs" and plots["budgeted"]["x"] == "avg_macs"
    for spec in plots.values():
        (table, y), = spec["y"].items()
        assert y == "accuracy" and table.startswith("results/${workflow.preset}/tables/")
        template = json.loads((REPO / spec["template"]).read_text())
        assert template["data"]["values"] == "<DVC_METRIC_DATA>"
        assert template["encoding"]["color"]["field"] == "model"        # one line per model


def test_report_captions_are_the_registry_descriptions():
    import jinja2

    from msdnet.figures.registry import FIGURES, TABLES

    config = {"_report": {"figures": {f: s.description for f, s in FIGURES.items()},
                          "tables": {n: (f.id, f.description) for n, (f, _) in TABLES.items()},
                          "preset": "tiny"}}
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
    caption = env.from_string((REPO / "workflow/report/figure.rst").read_text())
    for fid, spec in FIGURES.items():
        sm = argparse.Namespace(config=config, wildcards=argparse.Namespace(figure=fid))
        assert spec.description in caption.render(snakemake=sm)
    table = env.from_string((REPO / "workflow/report/table.rst").read_text())
    for name in TABLES:
        sm = argparse.Namespace(config=config, wildcards=argparse.Namespace(table=name))
        assert TABLES[name][0].description in table.render(snakemake=sm)
    rules = "\n".join(p.read_text() for p in (REPO / "workflow/rules").glob("*.smk"))
    assert 'config["_report"]' in rules and "category=report_figure_category" in rules
    for category in ('"Tables"', '"Metrics"', '"Notebooks"'):
        assert f"category={category}" in rules


# --- notebooks: what they show ------------------------------------------------------------------

def test_notebook_tables_in_mmacs():
    from msdnet.evaluation.notebooks import in_mmacs
    from msdnet.figures.summary import anytime_at_budgets, anytime_summary

    table = pd.DataFrame(_anytime_rows("MSDNet", "msdnet", [0], [2.79e6, 5e6], [80.0, 90.0]))
    shown = in_mmacs(anytime_summary(table))
    assert "first_exit_MMACs" in shown.columns and shown["first_exit_MMACs"].iloc[0] == 2.79
    at = in_mmacs(anytime_at_budgets(table, [3e6, 6e6]))
    assert at.columns.name == "budget (MMACs)" and list(at.columns) == [3.0, 6.0]
    assert in_mmacs(None) is None


def test_widget_ids_are_renumbered():
    import nbformat

    from msdnet.commands.notebook import WIDGET_STATE, with_stable_widget_ids

    def executed(seed: str):
        nb = nbformat.v4.new_notebook()
        view = {"application/vnd.jupyter.widget-view+json": {"model_id": seed * 32, "version_major": 2}}
        nb.cells.append(nbformat.v4.new_code_cell("w", id="c0", outputs=[
            nbformat.v4.new_output("display_data", data=view)]))
        nb.metadata["widgets"] = {WIDGET_STATE: {"state": {seed * 32: {"model_name": "FloatSliderModel"}},
                                                 "version_major": 2, "version_minor": 0}}
        return nbformat.writes(with_stable_widget_ids(nb))

    assert executed("a") == executed("b") and "a" * 32 not in executed("a")


def test_progress_bar_only_on_a_terminal(monkeypatch):
    import io
    import sys

    from msdnet.core.io import terminal_progress

    class Tty(io.StringIO):
        def isatty(self):
            return True

    items = [1, 2, 3]
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert terminal_progress(items, 3, "predict") is items            # a log: untouched
    tty = Tty()
    monkeypatch.setattr(sys, "stderr", tty)
    assert list(terminal_progress(items, 3, "predict")) == items
    assert "predict:" in tty.getvalue() and "/3 [" in tty.getvalue()           # a bar was drawn


def test_a_checkpoint_without_data_config_loads_and_says_what_its_preprocessing_needs(tmp_path):
    from msdnet.models import build

    net = dict(TINY_MSDNET)
    torch.save({"model": build(net).state_dict(), "config": {"model": net}}, tmp_path / "model.pt")
    model = msdnet.load_model(tmp_path / "model.pt")
    assert model.num_exits == 2 and len(model.exit_macs) == 2
    assert model.preprocess.input_size == (3, 16, 16)
    with pytest.raises(MsdnetError, match="no data section"):
        model.transforms()(torch.zeros(1, 3, 16, 16, dtype=torch.uint8))
