"""What training writes: a byte-deterministic final artifact and metrics.csv, file modes, the
run-directory lock and the clean-up of temporary files a killed write left."""

from __future__ import annotations

import fcntl
import os
import stat
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from msdnet.cli import main
from msdnet.core.io import atomic_path, sha256_file, write_text_atomic
from msdnet.inference.predictions import load
from msdnet.training.train import load_checkpoint

from conftest import TINY_MSDNET, tiny_recipe


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _configs(tmp: Path) -> tuple[Path, Path]:
    model, recipe = tmp / "model.yaml", tmp / "recipe.yaml"
    model.write_text(yaml.safe_dump(TINY_MSDNET))
    r = tiny_recipe(tmp / "data", epochs=1)
    r["train"]["device"] = "cpu"
    recipe.write_text(yaml.safe_dump(r))
    return model, recipe


def _train(model: Path, recipe: Path, out: Path, final: Path | None = None) -> int:
    argv = ["train", str(model), "--recipe", str(recipe), "--out", str(out)]
    return main(argv + (["--final", str(final)] if final else []))


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Two identical 1-epoch CPU trainings into different run directories (umask 022); the final
    files have different names (torch.save to a path would put the name inside the archive)."""
    tmp = tmp_path_factory.mktemp("artifacts")
    model, recipe = _configs(tmp)
    old = os.umask(0o022)
    try:
        assert _train(model, recipe, tmp / "a", tmp / "a" / "model.pt") == 0
        assert _train(model, recipe, tmp / "b", tmp / "b" / "final-b.pt") == 0
    finally:
        os.umask(old)
    return tmp


def test_final_artifact_and_metrics_are_byte_identical_across_identical_runs(two_runs):
    a, b = two_runs / "a", two_runs / "b"
    assert sha256_file(a / "model.pt") == sha256_file(b / "final-b.pt")
    assert sha256_file(a / "metrics.csv") == sha256_file(b / "metrics.csv")
    ca, cb = load_checkpoint(a / "checkpoint.pt"), load_checkpoint(b / "checkpoint.pt")
    for key, tensor in ca["model"].items():
        assert torch.equal(tensor, cb["model"][key]), key


def test_final_artifact_holds_weights_config_and_metrics_only(two_runs):
    final = torch.load(two_runs / "a" / "model.pt", weights_only=True)
    assert set(final) == {"format", "msdnet_version", "model", "config", "config_hash", "epoch", "epochs",
                          "num_exits", "finished", "metrics", "cpu_kernels"}
    assert final["cpu_kernels"]["mode"] in ("pinned", "native")          # msdnet.core.kernels.record
    ckpt = load_checkpoint(two_runs / "a" / "checkpoint.pt")
    assert final["config_hash"] == ckpt["config_hash"] and final["config"] == ckpt["config"]
    assert final["finished"] is True and final["epoch"] == final["epochs"] == 1 and final["num_exits"] == 2
    assert "+" not in final["msdnet_version"]                      # no git commit
    assert [set(r) for r in final["metrics"]] == [set(ckpt["metrics"][0]) - {"seconds"}]
    for key, tensor in ckpt["model"].items():
        assert torch.equal(final["model"][key], tensor), key
    assert "seconds" not in (two_runs / "a" / "metrics.csv").read_text().splitlines()[0]
    assert "seconds" in (two_runs / "a" / "timing.csv").read_text().splitlines()[0]


def test_predict_reads_the_final_artifact_like_the_checkpoint(two_runs, capsys):
    run = two_runs / "a"
    assert main(["predict", str(run / "model.pt"), "--out-dir", str(two_runs / "pf"), "--splits", "test"]) == 0
    assert main(["predict", str(run / "checkpoint.pt"), "--out-dir", str(two_runs / "pc"),
                 "--splits", "test"]) == 0
    f, c = load(two_runs / "pf" / "test.npz"), load(two_runs / "pc" / "test.npz")
    np.testing.assert_array_equal(f.logits, c.logits)
    assert f.meta["checkpoint_sha256"] == sha256_file(run / "model.pt")
    assert f.meta["config_hash"] == c.meta["config_hash"]
    capsys.readouterr()
    assert main(["infer", str(run / "model.pt"), "--thresholds", "0.5", "--json"]) == 0
    assert '"n_images"' in capsys.readouterr().out


def test_predictions_record_their_data_split(two_runs):
    preds = load(two_runs / "pc" / "test.npz")
    cfg = load_checkpoint(two_runs / "a" / "checkpoint.pt")["config"]["data"]
    assert preds.meta["split"] == "test" and preds.meta["dataset"] == "digits"
    assert preds.meta["split_seed"] == cfg["split_seed"] == 0
    assert preds.meta["data"] == cfg


def test_outputs_get_the_mode_of_an_ordinary_open(two_runs):
    want = 0o666 & ~0o022
    for name in ("model.pt", "checkpoint.pt", "metrics.csv", "timing.csv", "config.yaml"):
        assert stat.S_IMODE((two_runs / "a" / name).stat().st_mode) == want, name


def test_atomic_path_follows_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        write_text_atomic(tmp_path / "x.txt", "x")
        with atomic_path(tmp_path / "y.bin") as tmp:
            tmp.write_bytes(b"y")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "x.txt").stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "y.bin").stat().st_mode) == 0o640


def test_a_second_training_into_a_locked_run_dir_fails_at_once(tmp_path, capsys):
    model, recipe = _configs(tmp_path)
    out = tmp_path / "run"
    out.mkdir()
    with open(out / ".lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)          # "another process" trains here
        assert _train(model, recipe, out) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "Traceback" not in err
        assert "is being trained by another process" in err and str(out / ".lock") in err
        assert not (out / "checkpoint.pt").exists()
    # once the lock is released, the run goes ahead
    assert _train(model, recipe, out) == 0
    assert load_checkpoint(out / "checkpoint.pt")["finished"]


def test_stale_temporary_files_are_removed_under_the_lock(tmp_path, capsys, umask_022):
    model, recipe = _configs(tmp_path)
    out = tmp_path / "run"
    out.mkdir()
    stale = [out / ".checkpoint.pt.k3j_9x2a.tmp", out / ".model.pt.abcdefgh.tmp", out / ".metrics.csv.12345678.tmp"]
    for path in stale:
        path.write_bytes(b"half-written")
    keep = [out / "notes.tmp", out / ".hidden", out / ".x.short.tmp"]
    for path in keep:
        path.write_text("mine")
    assert _train(model, recipe, out, out / "model.pt") == 0
    assert not any(p.exists() for p in stale)
    assert all(p.read_text() == "mine" for p in keep)
    left = sorted(p.name for p in out.iterdir() if p.name.endswith(".tmp") and p not in keep)
    assert left == []
