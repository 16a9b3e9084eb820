"""The notebooks run from their own folder (results/<preset>/notebooks/), as the workflow executes
them and `make lab` opens them: a tiny results tree (predictions written with
msdnet.inference.predictions.save, tables built by the registry's builders, a digits-hard data summary)
and both notebooks executed through `msdnet notebook`."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from msdnet.commands.notebook import relative_to
from msdnet.evaluation.notebooks import locate, rebase_data

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = {"overview": REPO / "notebooks" / "overview.py",
             "budget_explorer": REPO / "notebooks" / "budget_explorer.py"}
PRESET = "nbtest"

# exits of each synthetic model and the figure sections that read them (a preset's `figures:`)
EXITS = {"msdnet": 3, "msdnet-small": 2, "resnet-mc": 2, "resnet": 1, "densenet-star": 2}
FIGURES = {
    "anytime": {"MSDNet": "msdnet", "ResNet^MC": "resnet-mc"},
    "ablation": {"MSDNet": "msdnet", "MSDNet w/o dense connection": "msdnet-small"},
    "budgeted": {"dynamic": {"MSDNet with dynamic evaluation": ["msdnet-small", "msdnet"],
                             "ResNet^MC with early-exits": ["resnet-mc"]},
                 "single": {"ResNets": "resnet"}},
    "densenet-star": {"anytime": {"DenseNet*": "densenet-star", "MSDNet": "msdnet"},
                      "budgeted": {"DenseNet*": ["densenet-star"], "MSDNet": ["msdnet"]}},
    "reduction-lazy": {"MSDNet": {"models": ["msdnet"], "costs": "lazy"},
                       "MSDNet w/o lazy evaluation": {"models": ["msdnet"], "costs": "full"}},
    "staircase": {"ResNet": {"baseline": "resnet", "runs": {0.3: "resnet-mc", 0.7: "densenet-star"}}},
    "easy-hard": {"model": "msdnet", "per_class": 2},
    "anytime-combiners": {"MSDNet": "msdnet"},
    "monotonicity": {"MSDNet": "msdnet"},
    "calibration": {"MSDNet": "msdnet"},
    "budgeted-combiners": {"MSDNet": "msdnet"},
}


def _tools() -> bool:
    return all(importlib.util.find_spec(m) for m in ("papermill", "jupytext", "ipykernel", "nbformat"))


def _logits(labels: np.ndarray, exits: int, classes: int, rng: np.random.Generator) -> np.ndarray:
    """Logits that get better with depth; each image has its own difficulty."""
    n = len(labels)
    difficulty = rng.uniform(0.0, 1.0, n)
    out = rng.normal(0.0, 1.0, (exits, n, classes))
    for k in range(exits):
        out[k, np.arange(n), labels] += 4.0 * (k + 1) / exits * (1.2 - difficulty)
    return out.astype(np.float32)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """A repository-like folder: data/ (digits-hard, small), results/<preset>/{data,predictions,
    tables}/ written as the workflow would (paths in them relative to the folder)."""
    from msdnet.evaluation.analysis.common import write_csv
    from msdnet.commands.data import summary
    from msdnet.data import DataConfig, load_data
    from msdnet.figures.registry import FIGURES as SPECS
    from msdnet.figures.registry import resolve
    from msdnet.core.io import write_json_atomic
    from msdnet.inference.predictions import Predictions, save
    from msdnet.evaluation.tables import Sources

    root = tmp_path_factory.mktemp("repo")
    cwd = os.getcwd()
    os.chdir(root)                           # the data root is relative, as in the workflow
    try:
        cfg = DataConfig(name="digits-hard", root="data", image_size=16, hard_train_images=60,
                         hard_val_images=40, hard_test_images=60)
        results = Path("results") / PRESET
        write_json_atomic(results / "data" / "digits-hard-0123456789abcdef.json", summary(cfg))
        bundle = load_data(cfg)
        rng = np.random.default_rng(0)
        sources = {}
        for i, (name, exits) in enumerate(EXITS.items()):
            d = results / "predictions" / name / f"{i + 1:016x}" / "seed0"
            macs = np.cumsum(np.linspace(1.0, 2.0, exits)) * 1e6
            for split in ("val", "test"):
                part = bundle.split(split)
                labels = part.labels.numpy()
                meta = {"split": split, "dataset": "digits-hard", "split_seed": 0, "data": asdict(cfg),
                        "config_hash": f"cfg-{name}", "checkpoint_sha256": f"ckpt-{name}", "model": name,
                        "exit_macs_lazy": (macs * 0.9).tolist()}
                save(d / f"{split}.npz", Predictions(
                    logits=_logits(labels, exits, bundle.num_classes, rng), labels=labels,
                    exit_macs=macs, sample_ids=part.ids.numpy(), meta=meta))
            sources[name] = {0: str(d)}
        # the explorer's model has a checkpoint beside its predictions (msdnet.load_model reads it)
        import torch

        from conftest import TINY_MSDNET
        from msdnet.models import build

        net = {**TINY_MSDNET, "n_blocks": EXITS["msdnet"]}
        run = results / "runs" / "msdnet" / f"{1:016x}" / "seed0"   # the key of its predictions
        run.mkdir(parents=True)
        torch.save({"model": build(net).state_dict(), "config": {"model": net}}, run / "model.pt")
        for fid, section in FIGURES.items():
            for table in SPECS[fid].tables:
                df = resolve(table.build)(table.section_of(section), Sources(sources))
                write_csv(df, results / "tables" / f"{table.name}.csv")
    finally:
        os.chdir(cwd)
    return root


def _execute(tree: Path, name: str, *extra: str) -> tuple[Path, dict]:
    """``msdnet notebook`` from the tree's root, as the workflow runs it; the executed notebook."""
    import nbformat

    from msdnet.cli import main

    out = Path("results") / PRESET / "notebooks" / f"{name}.ipynb"
    cwd = os.getcwd()
    os.chdir(tree)
    try:
        rc = main(["notebook", str(NOTEBOOKS[name]), "--out", str(out), "--path", "results_dir",
                   f"results/{PRESET}", "--path", "repo_dir", ".", "-p", "preset", json.dumps(PRESET),
                   *extra])
    finally:
        os.chdir(cwd)
    assert rc == 0
    return tree / out, nbformat.read(tree / out, as_version=4)


def _outputs(nb) -> tuple[list, str]:
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    return outputs, text


# an absolute path: "/" right after the start, a space, a quote, a bracket or "=", then a name
# and another "/" (not "w/o", not "97 / 3", not HTML's "</td>")
ABSOLUTE = re.compile(r"""(?:^|[\s'"(\[=])(/[A-Za-z_][\w.-]*/[\w./-]*)""", re.M)


def _shown_text(outputs) -> str:
    """Everything the outputs show as text (streams, plain, HTML, Markdown; not the images)."""
    parts = []
    for o in outputs:
        parts.append(o.get("text", ""))
        for mime, value in o.get("data", {}).items():
            if mime.startswith("text/"):
                parts.append(value if isinstance(value, str) else "".join(value))
        parts.append(o.get("evalue", ""))
    return "\n".join(parts)


def _check_shown(outputs) -> str:
    """No absolute path (no /tmp, /work, /root, ...) and MMACs, not raw MACs, in the tables."""
    shown = _shown_text(outputs)
    assert not ABSOLUTE.findall(shown), ABSOLUTE.findall(shown)[:5]
    for word in ("/tmp", "/work", "/root", "/home"):
        assert word not in shown, word
    tables = "\n".join(v for o in outputs for m, v in o.get("data", {}).items() if m == "text/html")
    assert "MMACs" in tables and "e+0" not in tables
    return shown


def _pngs(outputs) -> int:
    return sum("image/png" in o.get("data", {}) for o in outputs)


# -- the sources ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_sources_are_percent_scripts_with_relative_defaults(name):
    text = NOTEBOOKS[name].read_text()
    # the source is one script (no .ipynb beside it in the repository); the executed copies
    # are paired (formats: ipynb,py:percent, set by msdnet notebook)
    assert "formats: py:percent" in text and "format_name: percent" in text
    assert '# %% tags=["parameters"]' in text
    params = text.split('# %% tags=["parameters"]')[1].split("# %%")[0]
    assert re.search(r'^results_dir = "\.\."', params, re.M)        # results/<preset> from its folder
    assert re.search(r'^repo_dir = "\.\./\.\./\.\."', params, re.M)


def test_path_parameters_become_relative_to_the_notebook_folder(tmp_path):
    assert relative_to("results/mini", "results/mini/notebooks") == ".."
    assert relative_to("figures/mini", "results/mini/notebooks") == "../../../figures/mini"
    assert relative_to(".", "results/mini/notebooks") == "../../.."
    assert relative_to("/abs/path", "results/mini/notebooks") == "/abs/path"
    assert rebase_data({"name": "digits", "root": "data"}, "../../..")["root"] == "../../../data"
    assert rebase_data({"name": "digits", "root": "/d"}, "../../..")["root"] == "/d"


def test_locate_from_the_results_folder_and_from_the_repository_notebooks(tmp_path, monkeypatch):
    (tmp_path / "results" / "p" / "tables").mkdir(parents=True)
    (tmp_path / "results" / "p" / "notebooks").mkdir()
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "results" / "p" / "notebooks")
    where = locate("..", "../../..", None, "p")
    assert where["results"] == Path("..") and where["figures"] == Path("../../../figures/p")
    monkeypatch.chdir(tmp_path / "notebooks")                 # the source opened in Jupyter
    where = locate("..", "../../..", None, "p")
    assert where["results"] == Path("../results/p") and where["repo"] == Path("..")


# -- executed from their own folder ---------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.skipif(not _tools(), reason="papermill, jupytext, ipykernel or nbformat missing")
def test_overview_runs_in_its_folder_with_every_section(tree):
    out, nb = _execute(tree, "overview")
    outputs, text = _outputs(nb)
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert "skipped" not in text and "no images" not in text, text
    # anytime, budgeted, staircase, ablation, easy-hard (redrawn from the data summary, no PNG
    # in figures/), densenet-star, reduction-lazy; anytime-combiners, monotonicity, calibration,
    # budgeted-combiners
    assert _pngs(outputs) == 11
    shown = _check_shown(outputs)
    assert "top-1 %" in shown and "budget (MMACs)" in shown
    assert nb.metadata.papermill.parameters["results_dir"] == ".."
    assert nb.metadata.papermill.parameters["repo_dir"] == "../../.."
    assert nb.metadata.jupytext.formats == "ipynb,py:percent"
    # the paired script beside it: the same cells, no older than the notebook (jupytext's check);
    # an edit of the script reaches the notebook through `jupytext --sync`, outputs kept
    import jupytext
    import nbformat

    script = out.with_suffix(".py")
    assert script.stat().st_mtime >= out.stat().st_mtime
    paired = jupytext.read(script)
    assert [c.source.rstrip() for c in paired.cells] == [c.source.rstrip() for c in nb.cells]
    script.write_text(script.read_text().replace("# ## Anytime prediction", "# ## Anytime prediction (edited)"))
    subprocess.run([sys.executable, "-m", "jupytext", "--sync", str(out)], check=True, capture_output=True)
    synced = nbformat.read(out, as_version=4)
    assert any("(edited)" in c.source for c in synced.cells)
    assert _pngs(_outputs(synced)[0]) == 11
    assert not (tree / "results" / PRESET / "notebooks" / "data").exists()   # data read from the repo's


@pytest.mark.slow
@pytest.mark.skipif(not _tools(), reason="papermill, jupytext, ipykernel or nbformat missing")
def test_budget_explorer_runs_in_its_folder(tree):
    from msdnet.evaluation.analysis.budgeted import BudgetedEvaluator
    from msdnet.inference.predictions import load

    out, nb = _execute(tree, "budget_explorer", "-p", "model", '"msdnet"', "-p", "per_exit", "3")
    outputs, text = _outputs(nb)
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert "skipped" not in text, text
    assert "model.pt: MSDNet, 3 exits" in text   # msdnet.load_model of the run's checkpoint
    assert _pngs(outputs) >= 2                  # the curve with exit shares, the images per exit
    _check_shown(outputs)
    import ipywidgets  # noqa: F401  - a dependency: the slider is there
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    assert "ipywidgets is not installed" not in text
    # the accuracy shown is BudgetedEvaluator's at the default budget (median MACs of the curve)
    d = next((tree / "results" / PRESET / "predictions" / "msdnet").glob("*/seed0"))
    val, test = load(d / "val.npz"), load(d / "test.npz")
    for pr in (val, test):
        pr.exit_macs = np.asarray(pr.meta["exit_macs_lazy"])
    ev = BudgetedEvaluator(val, test, model="msdnet")
    budget = float(np.median([pt.avg_macs for pt in ev.sweep()]))
    assert f"test accuracy {ev.at_budget(budget).accuracy:.2f}%" in text
    assert out.with_suffix(".py").is_file()
    # a second execution on the same inputs writes the same bytes (no timings, no temporary paths)
    executed = out if out.is_absolute() else tree / out
    first = executed.read_bytes()
    _execute(tree, "budget_explorer", "-p", "model", '"msdnet"', "-p", "per_exit", "3")
    assert executed.read_bytes() == first
    assert b"start_time" not in first and b"duration" not in first and b"/tmp" not in first


@pytest.mark.skipif(not _tools(), reason="papermill, jupytext, ipykernel or nbformat missing")
def test_a_failing_cell_is_one_error_line_and_keeps_the_output(tmp_path, capsys):
    from msdnet.cli import main

    src = tmp_path / "bad.py"
    src.write_text('# %% tags=["parameters"]\nx = 1\n\n# %%\nraise ValueError("broken on purpose")\n')
    out = tmp_path / "run" / "bad.ipynb"
    out.parent.mkdir()
    out.write_text("previous")
    assert main(["notebook", str(src), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "ValueError: broken on purpose" in err and len(err.strip().splitlines()) == 1
    assert out.read_text() == "previous" and out.with_suffix(".failed.ipynb").is_file()


def test_make_lab_opens_the_preset_notebooks_folder():
    def dry(*args):
        return subprocess.run(["make", "-n", "-s", *args], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout

    assert "--ServerApp.root_dir=\"results/mini/notebooks\"" in dry("lab")
    assert "results/tiny/notebooks" in dry("notebooks", "CONFIG=config/tiny.yaml")
    assert "--no-browser" in dry("lab", "PRESET=tiny", "LAB_ARGS=--no-browser")
    assert ".venv/bin/jupyter lab" in dry("lab")


@pytest.mark.parametrize("config, model", [("tiny.yaml", "msdnet"), ("config.yaml", "msdnet-anytime"),
                                           ("paper-cifar100.yaml", "msdnet-b6")])
def test_the_workflow_passes_paths_and_the_explorer_model(config, model, monkeypatch):
    from msdnet.planning.notebooks import workflow_plan
    from msdnet.core.config import load_yaml
    from msdnet.planning.workflow import Preset, validate_preset

    monkeypatch.chdir(REPO)
    preset = Preset(validate_preset(load_yaml(f"config/{config}"), config), config)
    plan = workflow_plan(preset, "data/paper/reference_points.csv")
    res = f"results/{preset.name}"
    assert plan["explorer_key"].startswith(f"{model}/")
    assert f"--path results_dir {res} " in plan["overview_args"]
    assert f"--path figures_dir figures/{preset.name} " in plan["overview_args"]
    pred = str(preset.predictions_dir(model, preset.seeds_for(model)[0]))
    assert f"--path predictions_dir {pred} " in plan["explorer_args"]
    assert plan["explorer_inputs"][:2] == [f"{pred}/val.npz", f"{pred}/test.npz"]
    assert plan["explorer_inputs"][2].startswith(f"{res}/data/")
    assert bool(plan["reference"]) == bool(preset.cfg.get("reference_dataset"))
