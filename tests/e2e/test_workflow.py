"""End to end: the tiny preset through Snakemake, then through DVC, in temporary copies.

Checks every figure file, the tables behind them, that a second run does nothing, and that a
`dvc checkout` (new mtimes) does not make Snakemake retrain.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
FIGURES = ["anytime", "ablation", "budgeted", "densenet-star", "reduction-lazy", "staircase", "easy-hard"]
SNAKE = ["snakemake", "--cores", "2", "--workflow-profile", "workflow/profiles/default",
         "--configfile", "config/tiny.yaml"]

pytestmark = pytest.mark.slow


def _env() -> dict:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "OMP_NUM_THREADS": "1",
            "MSDNET_NO_DOWNLOAD": "1", "MPLBACKEND": "Agg"}


def _run(cmd: list[str], cwd: Path, timeout: int = 1200) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{' '.join(cmd)} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


def _copy_repo(dest: Path) -> Path:
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split("\n")
    for rel in filter(None, files):
        src = REPO / rel
        if src.is_file() and not rel.startswith((".dvc/", "dvc.lock")):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    work = _copy_repo(tmp_path_factory.mktemp("smk"))
    _run([*SNAKE[:1], "figures", *SNAKE[1:]], work)
    return work


def test_every_figure_is_a_valid_image(tiny: Path):
    for fig in FIGURES:
        png, pdf = tiny / "figures/tiny" / f"{fig}.png", tiny / "figures/tiny" / f"{fig}.pdf"
        with Image.open(png) as im:
            im.verify()
            assert im.size[0] > 200 and im.size[1] > 150
        assert pdf.read_bytes()[:5] == b"%PDF-"
    nb = tiny / "results/tiny/notebooks/overview.ipynb"
    assert nb.is_file() and '"output_type": "error"' not in nb.read_text()


def test_tables_are_sane(tiny: Path):
    preset = yaml.safe_load((tiny / "config/tiny.yaml").read_text())
    tables = tiny / "results/tiny/tables"
    for name, labels in (("anytime", preset["figures"]["anytime"]), ("ablation", preset["figures"]["ablation"])):
        df = pd.read_csv(tables / f"{name}.csv")
        assert set(df["model"]) == set(labels)
        assert df["accuracy"].between(0, 100).all()
        for _, g in df.groupby(["model", "seed"]):
            assert g.sort_values("exit")["macs"].is_monotonic_increasing
            assert g["macs"].is_unique
    bud = pd.read_csv(tables / "budgeted.csv")
    assert set(bud.loc[bud.kind == "dynamic", "model"]) == set(preset["figures"]["budgeted"]["dynamic"])
    assert bud["accuracy"].between(0, 100).all() and (bud["avg_macs"] > 0).all()
    stair = pd.read_csv(tables / "staircase.csv")
    assert {"relative_intermediate", "relative_final"} <= set(stair["metric"])
    assert set(stair["family"]) == set(preset["figures"]["staircase"])
    easy = pd.read_csv(tables / "easy_hard.csv")
    assert set(easy["kind"]) <= {"easy", "hard"} and len(easy) > 0


def test_second_run_and_new_mtimes_do_nothing(tiny: Path):
    out = _run([*SNAKE[:1], "figures", "-n", *SNAKE[1:]], tiny)
    assert "Nothing to be done" in out.stdout + out.stderr
    for ckpt in (tiny / "results/tiny/runs").rglob("*.pt"):     # what a `dvc checkout` does
        os.utime(ckpt)
    out = _run([*SNAKE[:1], "figures", "-n", *SNAKE[1:]], tiny)
    assert "Nothing to be done" in out.stdout + out.stderr


def test_dvc_repro_then_status_clean_and_checkout_does_not_retrain(tmp_path):
    work = _copy_repo(tmp_path / "dvc")
    params = yaml.safe_load((work / "params.yaml").read_text())
    params["workflow"].update(configfile="config/tiny.yaml", preset="tiny")
    (work / "params.yaml").write_text(yaml.safe_dump(params))
    _run(["git", "init", "-q"], work)
    _run(["dvc", "init", "-q"], work)
    _run(["dvc", "repro"], work, timeout=1800)
    status = _run(["dvc", "status"], work)
    assert "up to date" in status.stdout.lower()
    shutil.rmtree(work / "results/tiny/runs")
    _run(["dvc", "checkout"], work)
    assert any((work / "results/tiny/runs").rglob("model.pt"))
    out = _run([*SNAKE[:1], "figures", "-n", *SNAKE[1:]], work)
    assert "Nothing to be done" in out.stdout + out.stderr
