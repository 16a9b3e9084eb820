"""The workflow without running it: lint, every preset validates, the paper DAGs resolve."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from msdnet.core.config import load_yaml
from msdnet.core.errors import ConfigError
from msdnet.planning.workflow import Preset, validate_preset

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PRESETS = ["config.yaml", "tiny.yaml", "paper-cifar100.yaml", "paper-cifar10.yaml", "paper-imagenet.yaml",
           "paper-imagenet-authors.yaml"]


def _snakemake(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run([str(BIN / "snakemake"), *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)


def test_lint_is_clean():
    out = _snakemake("--lint")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Lints for" not in out.stdout + out.stderr
    # the top-level Snakefile and, beside it, the default profile Snakemake reads without flags
    assert "workflow specific profile profiles/default" in out.stderr


def test_rules_are_snakefmt_clean():
    snakefmt = BIN / "snakefmt"
    if not snakefmt.exists():
        pytest.skip("snakefmt is not installed (pip install -e '.[dev]')")
    out = subprocess.run([str(snakefmt), "--check", "Snakefile", "workflow/"], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("name", ["paper-cifar100.yaml", "paper-cifar10.yaml", "paper-imagenet.yaml"])
def test_paper_dag_resolves(name):
    preset = Preset(validate_preset(load_yaml(REPO / "config" / name), name))
    out = _snakemake("figures", "-n", "--quiet", "rules", "--configfile", f"config/{name}",
                     "--directory", str(REPO))
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    text = out.stdout + out.stderr
    lines = {l.split()[0]: l.split()[-1] for l in text.splitlines() if len(l.split()) == 2}
    assert int(lines["train_model"]) == len(preset.runs_needed())
    assert int(lines["figure"]) == len(preset.figures)


@pytest.mark.parametrize("name", ["tiny.yaml", "paper-cifar100.yaml"])
def test_no_shell_line_carries_a_spec(name):
    """One spec channel: a table's or figure's spec reaches its job only as its key file (an
    input), which the planner writes in the Snakemake process; no JSON travels on a shell line."""
    out = _snakemake("figures", "-n", "-p", "--forceall", "--configfile", f"config/{name}",
                     "--directory", str(REPO))
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    text = out.stdout + out.stderr
    shells = [l for l in text.splitlines() if "msdnet " in l and "2>&1" in l]
    assert any(l.strip().startswith("Shell command: msdnet collect") and " --key " in l for l in shells)
    assert any("msdnet figure " in l and " --key " in l for l in shells)
    assert "rule job_key:" in text and not any("msdnet key" in l for l in shells)
    for marker in ('{"', '{\'', '"section"', '"sources"', '\\"'):
        assert marker not in text, [l for l in text.splitlines() if marker in l][:2]


def test_authors_imagenet_dag_imports_and_trains_nothing():
    """The published checkpoints need not exist to plan (they are parameters, not inputs)."""
    name = "paper-imagenet-authors.yaml"
    preset = Preset(validate_preset(load_yaml(REPO / "config" / name), name))
    assert preset.imported_models() == ["msdnet-k4", "msdnet-k7"] and not preset.trained_models()
    out = _snakemake("figures", "-n", "--quiet", "rules", "--configfile", f"config/{name}",
                     "--directory", str(REPO))
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    text = out.stdout + out.stderr
    lines = {l.split()[0]: l.split()[-1] for l in text.splitlines() if len(l.split()) == 2}
    assert "train_model" not in lines
    assert int(lines["import_model"]) == int(lines["predict_model"]) == 2
    assert int(lines["figure"]) == len(preset.figures) == 7      # 3 of the paper's, 4 combiner figures


@pytest.mark.parametrize("name", PRESETS)
def test_presets_validate(name):
    preset = Preset(validate_preset(load_yaml(REPO / "config" / name), name))
    assert preset.runs_needed() and preset.tables()


def test_unknown_preset_key_and_unknown_model_are_errors():
    cfg = load_yaml(REPO / "config" / "tiny.yaml")
    with pytest.raises(ConfigError, match="epochz"):
        validate_preset({**cfg, "epochz": 3}, "tiny.yaml")
    bad = {**cfg, "figures": {**cfg["figures"], "anytime": {"MSDNet": "no-such-model"}}}
    with pytest.raises(ConfigError, match="no-such-model"):
        validate_preset(bad, "tiny.yaml")
