"""profiles/slurm against the real SLURM executor plugin, without a cluster.

Stand-in sbatch/srun/sacct/squeue/scancel/sinfo/scontrol (tests/slurm_shim.py) first on PATH run
every submitted job on this machine and record each call. The tiny preset runs end to end through
`snakemake-executor-plugin-slurm` with the profile as docs/workflow.md gives it (only the plugin's
polling is made faster, --jobs is kept to what 2 cores take, and `gpu_jobs=1` makes train_model
and predict_model ask for a GPU as the paper presets do); the recorded sbatch calls show what a
cluster would have been asked for.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from msdnet.core.config import load_yaml
from msdnet.planning.workflow import Preset, validate_preset
from tests.e2e.test_workflow import FIGURES, _copy_repo

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PROFILE = REPO / "profiles" / "slurm" / "config.yaml"
SHIMS = ("sbatch", "srun", "sacct", "squeue", "scancel", "sinfo", "scontrol", "sacctmgr", "sshare")
# The command of docs/workflow.md, on the test preset, with a GPU per training/prediction job (gpu_jobs: 1).
COMMAND = ["snakemake", "figures", "--workflow-profile", "profiles/slurm",
           "--configfile", "config/tiny.yaml", "--config", "gpu_jobs=1"]
# Test-only pacing: first status check after 1 s, then every second (the shim's sacct answers
# when a job finishes); three submissions at a time on 2 cores; files appear at once here.
FAST = ["--slurm-init-seconds-before-status-checks", "1", "--seconds-between-status-checks", "1",
        "--jobs", "3", "--latency-wait", "5"]
GPU_RULES = {"train_model", "predict_model"}
LOCAL_RULES = {"prepare_data", "job_key", "figures"}


def _shim_env(tmp: Path) -> dict:
    bindir, state = tmp / "shim-bin", tmp / "shim-state"
    bindir.mkdir()
    state.mkdir()
    src = bindir / "slurm_shim.py"
    src.write_text(f"#!{sys.executable}\n" + (REPO / "tests" / "slurm_shim.py").read_text())
    src.chmod(0o755)
    for name in SHIMS:
        (bindir / name).symlink_to(src)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_", "SRUN_"))}
    return {**env, "PATH": f"{bindir}{os.pathsep}{BIN}{os.pathsep}{os.environ['PATH']}",
            "SHIM_STATE_DIR": str(state), "OMP_NUM_THREADS": "1", "MSDNET_NO_DOWNLOAD": "1",
            "MPLBACKEND": "Agg"}


def _calls(env: dict, cmd: str) -> list[dict]:
    lines = (Path(env["SHIM_STATE_DIR"]) / "calls.jsonl").read_text().splitlines()
    return [c for c in map(json.loads, lines) if c["cmd"] == cmd]


def _option(args: list[str], name: str) -> str | None:
    if name in args:
        return args[args.index(name) + 1]
    return next((a.split("=", 1)[1] for a in args if a.startswith(name + "=")), None)


def _rules(script: str) -> list[str]:
    """The rule of each job a submission runs (its --target-jobs RULE:WILDCARDS ...)."""
    words = shlex.split(script)
    i = words.index("--target-jobs") + 1
    targets = []
    while i < len(words) and not words[i].startswith("-"):
        targets.append(words[i].split(":", 1)[0])
        i += 1
    return targets


def test_slurm_profile_asks_through_the_plugin_only():
    """What the plugin refuses is nowhere in the profile; the GPU rules go to `gpu`, the rest to
    `cpu`; each group is of submitted rules only, and runtime/memory are left to the preset."""
    profile = yaml.safe_load(PROFILE.read_text())
    assert profile["executor"] == "slurm"
    assert "slurm_extra" not in PROFILE.read_text().split("\nexecutor:")[1]
    assert profile["default-resources"]["slurm_partition"] == "cpu"
    assert {r for r, res in profile["set-resources"].items() if res.get("slurm_partition") == "gpu"} == GPU_RULES
    for res in profile["set-resources"].values():
        assert not {"runtime", "mem_mb", "gres", "gpu"} & set(res), res  # the preset's and rules' own
    snakefile = (REPO / "Snakefile").read_text()
    local = set(re.findall(r"^\s+(\w+),$", snakefile.split("localrules:")[1].split("\n\n")[0], re.M))
    assert LOCAL_RULES <= local, local
    assert profile["groups"] == {"train_model": "model", "predict_model": "model"}  # one submission per model


def test_slurm_profile_runs_tiny_preset_end_to_end(tmp_path):
    assert importlib.util.find_spec("snakemake_executor_plugin_slurm"), \
        "snakemake-executor-plugin-slurm is missing: pip install -e '.[dev]'"
    work = _copy_repo(tmp_path / "repo")
    env = _shim_env(tmp_path)
    start = time.monotonic()
    out = subprocess.run([*COMMAND, *FAST], cwd=work, env=env, capture_output=True, text=True, timeout=1200)
    took = time.monotonic() - start
    assert out.returncode == 0, f"{shlex.join(COMMAND)} failed:\n{out.stdout[-4000:]}\n{out.stderr[-8000:]}"
    print(f"SLURM end to end: {took:.0f} s")

    for fig in FIGURES:
        for ext in ("pdf", "png"):
            assert (work / "figures" / "tiny" / f"{fig}.{ext}").stat().st_size > 0, (fig, ext)
    for nb in ("overview.ipynb", "budget_explorer.ipynb"):
        assert (work / "results" / "tiny" / "notebooks" / nb).stat().st_size > 0, nb

    calls = _calls(env, "sbatch")
    jobs = [r for c in calls for r in _rules(c["script"])]
    planned = {"train_model": 15, "predict_model": 15, "ensemble": 1, "table": 8, "figure": 7, "notebook": 1}
    assert {r: jobs.count(r) for r in set(jobs)} == planned, jobs
    assert not LOCAL_RULES & set(jobs)  # downloads, data and keys stay on the login node
    # one submission per model (train, then predict), one per job after the predictions
    assert len(calls) == 15 + 17, [_rules(c["script"]) for c in calls]
    for c in calls:
        args, rules = c["args"], set(_rules(c["script"]))
        gpu = rules <= GPU_RULES
        assert gpu or not rules & GPU_RULES, rules
        assert _option(args, "-p") == ("gpu" if gpu else "cpu"), (rules, args)
        # the plugin's own GPU request, on GPU jobs only; never --gres (nothing in slurm_extra)
        assert _option(args, "--gpus") == ("1" if gpu else None), (rules, args)
        assert not any(a.startswith("--gres") for a in args), args
        if gpu:  # the preset's runtime (train 10 + predict 5 minutes) and memory
            assert rules == GPU_RULES and (_option(args, "-t"), _option(args, "--mem")) == ("15", "2000"), args
        else:    # the profile's default-resources
            assert len(rules) == 1 and (_option(args, "-t"), _option(args, "--mem")) == ("30", "4000"), args
        assert _option(args, "--cpus-per-task") == "1", args  # the preset's threads
    # each job ran its command through srun, asking for the GPU again for its step
    steps = _calls(env, "srun")
    assert len(steps) == len(jobs), steps
    assert sum("--gpus=1" in s["args"] for s in steps) == 30, steps


def test_slurm_profile_asks_for_a_gpu_model(tmp_path, monkeypatch):
    """`gpu_model: a100` under both GPU rules of the profile, as docs/workflow.md says: one model's
    training and prediction (one submission) ask for `--gpus=a100:1`."""
    work = _copy_repo(tmp_path / "repo")
    env = _shim_env(tmp_path)
    profile = work / "profiles" / "slurm" / "config.yaml"
    doc = yaml.safe_load(profile.read_text())
    for rule in GPU_RULES:
        doc["set-resources"][rule]["gpu_model"] = "a100"
    profile.write_text(yaml.safe_dump(doc))
    monkeypatch.chdir(work)
    preset = Preset(validate_preset(load_yaml("config/tiny.yaml"), "config/tiny.yaml"), "config/tiny.yaml")
    target = str(preset.predictions_dir("resnet-mc", 0) / "val.npz")
    cmd = [*COMMAND[:1], target, *COMMAND[2:], *FAST]
    out = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, f"{shlex.join(cmd)} failed:\n{out.stdout[-4000:]}\n{out.stderr[-8000:]}"
    assert (work / target).is_file()
    (call,) = _calls(env, "sbatch")
    assert sorted(_rules(call["script"])) == ["predict_model", "train_model"]
    assert _option(call["args"], "--gpus") == "a100:1" and _option(call["args"], "-p") == "gpu", call["args"]
    assert not any(a.startswith("--gres") for a in call["args"]), call["args"]
