"""msdnet cluster: a cluster profile's Snakemake plugins are checked before Snakemake starts; a
missing one is one line naming the pip install (exit 1), a bad profile name one line (exit 2)."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from msdnet.cli import main
from msdnet.planning.cluster import Plugin, missing_message, profile_dir, required_plugins

REPO = Path(__file__).resolve().parents[1]


def _profile(root: Path, name: str, text: str) -> Path:
    d = root / "profiles" / name
    d.mkdir(parents=True)
    (d / "config.yaml").write_text(text)
    return d


def test_plugins_follow_the_profile_and_the_command_line(tmp_path):
    _profile(tmp_path, "p", "executor: slurm\ndefault-storage-provider: s3\njobs: 4\n")
    _profile(tmp_path, "local", "cores: 2\n")
    prof = profile_dir("p", tmp_path)
    assert prof == Path("profiles/p")
    assert required_plugins(prof, root=tmp_path) == [Plugin("executor", "slurm"), Plugin("storage", "s3")]
    assert Plugin("executor", "slurm-jobstep").module == "snakemake_executor_plugin_slurm_jobstep"
    assert Plugin("storage", "s3").pip == "snakemake-storage-plugin-s3"
    # the command line replaces the profile's choice, as in Snakemake
    assert required_plugins(prof, ["-e", "local", "--default-storage-provider=fs"], root=tmp_path) == \
        [Plugin("storage", "fs")]
    assert required_plugins(Path("profiles/local"), root=tmp_path) == []


def test_every_plugin_of_the_repository_profiles_is_in_the_cluster_extra():
    extra = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["cluster"]
    for config in sorted((REPO / "profiles").glob("*/config.yaml")):
        for plugin in required_plugins(config.parent.relative_to(REPO), root=REPO):
            assert any(req.startswith(plugin.pip) for req in extra), (config, plugin.pip, extra)


def test_missing_plugin_is_one_line_naming_the_pip_install(tmp_path, monkeypatch, capsys):
    _profile(tmp_path, "fake", "executor: no-such-cluster\njobs: 4\n")
    _profile(tmp_path, "fake2", "executor: no-such-cluster\ndefault-storage-provider: no-such-store\n")
    monkeypatch.chdir(tmp_path)
    assert main(["cluster", "fake", "figures", "--configfile", "config/tiny.yaml"]) == 1
    err = capsys.readouterr().err
    assert err == ("error: profiles/fake needs snakemake-executor-plugin-no-such-cluster, which is not "
                   "installed: pip install snakemake-executor-plugin-no-such-cluster\n")
    assert main(["cluster", "--check", "fake2"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.rstrip().endswith(
        "pip install snakemake-executor-plugin-no-such-cluster snakemake-storage-plugin-no-such-store"), err
    # the same from a shell: one line on stderr, exit 1, nothing else
    out = subprocess.run([sys.executable, "-m", "msdnet.cli", "cluster", "fake", "figures"], cwd=tmp_path,
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    assert (out.returncode, out.stdout, out.stderr.count("\n")) == (1, "", 1), out
    assert "Traceback" not in out.stderr and "usage" not in out.stderr


@pytest.mark.parametrize("name", ["", "../slurm", "slurm/..", "/etc", "a b", "sl$urm", "nope"])
def test_bad_profile_is_one_line(name, monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    assert main(["cluster", name, "figures"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("msdnet cluster: error: ") and "Traceback" not in err, err
    assert "slurm" in err  # it lists the profiles there are


def test_bad_plugin_name_in_a_profile_is_one_line(tmp_path, monkeypatch, capsys):
    _profile(tmp_path, "odd", "executor: 'slurm; rm -rf /'\n")
    monkeypatch.chdir(tmp_path)
    assert main(["cluster", "odd"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a plugin name" in err, err


def test_installed_plugins_run_snakemake_with_the_profile(monkeypatch):
    calls = []
    monkeypatch.chdir(REPO)
    monkeypatch.setattr(os, "execv", lambda path, argv: calls.append((path, argv)))
    assert main(["cluster", "slurm", "figures", "--configfile", "config/tiny.yaml", "-n"]) == 0
    assert calls == [(sys.executable, [sys.executable, "-m", "snakemake", "--workflow-profile",
                                       "profiles/slurm", "figures", "--configfile", "config/tiny.yaml", "-n"])]
    assert main(["cluster", "slurm", "figures", "--workflow-profile", "profiles/default"]) == 2


def test_missing_message_lists_every_package():
    msg = missing_message(Path("profiles/k"), [Plugin("executor", "k"), Plugin("storage", "s3")])
    assert msg == ("error: profiles/k needs snakemake-executor-plugin-k and snakemake-storage-plugin-s3, "
                   "which are not installed: pip install snakemake-executor-plugin-k snakemake-storage-plugin-s3")
