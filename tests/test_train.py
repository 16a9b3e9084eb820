"""The trainer: recipe, metrics, exact resume after a real kill, and bad input."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from msdnet.cli import main
from msdnet.training.train import TrainConfig, load_checkpoint, lr_at, make_run_config, train

from conftest import TINY_MSDNET, tiny_recipe


def _write(tmp_path: Path, epochs: int = 3, **train_keys) -> tuple[Path, Path]:
    model = tmp_path / "model.yaml"
    recipe = tmp_path / "recipe.yaml"
    model.write_text(yaml.safe_dump(TINY_MSDNET))
    r = tiny_recipe(tmp_path / "data", epochs)
    r["train"].update(train_keys)
    recipe.write_text(yaml.safe_dump(r))
    return model, recipe


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "msdnet.cli", *args], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}, timeout=600)


def test_lr_schedule_drops_at_half_and_three_quarters():
    cfg = TrainConfig(epochs=300)
    assert lr_at(0, cfg) == lr_at(149, cfg) == pytest.approx(0.1)
    assert lr_at(150, cfg) == pytest.approx(0.01) and lr_at(224, cfg) == pytest.approx(0.01)
    assert lr_at(225, cfg) == pytest.approx(0.001)
    imagenet = TrainConfig(epochs=90, lr_milestones=[1 / 3, 2 / 3])
    assert [lr_at(e, imagenet) for e in (29, 30, 59, 60)] == pytest.approx([0.1, 0.01, 0.01, 0.001])


def test_warmup_rises_linearly_to_the_scheduled_lr_and_leaves_the_schedule_alone():
    from msdnet.training.train import warmup_lr

    cfg = TrainConfig(epochs=8, lr=0.1, warmup_epochs=1)
    lrs = [warmup_lr(0, s, 32, cfg) for s in range(32)]
    assert lrs[0] == pytest.approx(0.1 / 32) and lrs[-1] == pytest.approx(0.1)
    assert all(b > a for a, b in zip(lrs, lrs[1:]))                  # strictly rising
    assert warmup_lr(1, 0, 32, cfg) is None                          # over: the schedule's lr
    half = TrainConfig(epochs=8, lr=0.1, warmup_epochs=1.5)
    assert warmup_lr(1, 15, 32, half) == pytest.approx(0.1) and warmup_lr(1, 16, 32, half) is None
    assert warmup_lr(0, 0, 32, TrainConfig(epochs=8)) is None          # default: the paper's recipe
    with pytest.raises(ValueError, match="warmup_epochs"):
        TrainConfig(epochs=2, warmup_epochs=3).validate()


def test_warmup_is_keyed_only_when_set(tmp_path):
    """Runs keyed before warm-up existed keep their keys; a warm-up is a new run."""
    model, recipe = _write(tmp_path)
    base = make_run_config(yaml.safe_load(model.read_text()), yaml.safe_load(recipe.read_text()))
    r = yaml.safe_load(recipe.read_text())
    r["train"]["warmup_epochs"] = 0
    assert make_run_config(yaml.safe_load(model.read_text()), r).hash == base.hash
    r["train"]["warmup_epochs"] = 1
    assert make_run_config(yaml.safe_load(model.read_text()), r).hash != base.hash


def test_a_warmed_up_run_trains_at_the_scheduled_lr_after_the_warmup(tmp_path):
    model, recipe = _write(tmp_path, epochs=2, device="cpu", warmup_epochs=1)
    out = _cli("train", str(model), "--recipe", str(recipe), "--out", str(tmp_path / "w"))
    assert out.returncode == 0, out.stderr
    with open(tmp_path / "w" / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    # each row holds the lr the epoch ended with: the warm-up ends epoch 1 at the scheduled
    # 0.05, and the milestone at half of 2 epochs then divides it by 10 as without a warm-up
    assert [float(r["lr"]) for r in rows] == pytest.approx([0.05, 0.005])


def test_killed_run_resumes_to_identical_weights(tmp_path):
    # Bit-identical weights are checked on the CPU: on a GPU, cuDNN's autotuned algorithms and
    # atomic-add kernels are not bitwise reproducible (seen on an H200: resumed and clean
    # weights differed by ~1e-2 after three epochs; two clean GPU runs were not compared).
    model, recipe = _write(tmp_path, epochs=3, device="cpu")
    killed = _cli("train", str(model), "--recipe", str(recipe), "--out", str(tmp_path / "a"),
                  env={"MSDNET_FAULT_KILL_AFTER_EPOCH": "2"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert load_checkpoint(tmp_path / "a" / "checkpoint.pt")["epoch"] == 2
    resumed = _cli("train", str(model), "--recipe", str(recipe), "--out", str(tmp_path / "a"))
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stdout
    clean = _cli("train", str(model), "--recipe", str(recipe), "--out", str(tmp_path / "b"))
    assert clean.returncode == 0, clean.stderr
    a = load_checkpoint(tmp_path / "a" / "checkpoint.pt")
    b = load_checkpoint(tmp_path / "b" / "checkpoint.pt")
    assert a["epoch"] == b["epoch"] == 3 and a["finished"]
    for key, tensor in b["model"].items():
        assert torch.equal(a["model"][key], tensor), key
    rows_a = list(csv.DictReader(open(tmp_path / "a" / "metrics.csv")))
    rows_b = list(csv.DictReader(open(tmp_path / "b" / "metrics.csv")))
    assert [r["train_loss_exit2"] for r in rows_a] == [r["train_loss_exit2"] for r in rows_b]
    # a third run has nothing left to do
    again = _cli("train", str(model), "--recipe", str(recipe), "--out", str(tmp_path / "a"))
    assert again.returncode == 0 and "nothing to do" in again.stdout


def test_metrics_csv_has_every_exit(tmp_path):
    run = make_run_config(TINY_MSDNET, tiny_recipe(tmp_path / "data", epochs=2))
    ckpt = train(run, tmp_path / "run", log=lambda *_: None)
    rows = list(csv.DictReader(open(tmp_path / "run" / "metrics.csv")))
    assert len(rows) == 2 and ckpt["finished"]
    for k in (1, 2):
        for col in (f"train_loss_exit{k}", f"train_acc_exit{k}", f"val_acc_exit{k}"):
            assert col in rows[0]
            assert 0.0 <= float(rows[-1][col]) <= (100.0 if "acc" in col else 50.0)
    assert {"epoch", "lr"} <= set(rows[0]) and "seconds" not in rows[0]   # wall-clock: timing.csv
    timing = list(csv.DictReader(open(tmp_path / "run" / "timing.csv")))
    assert [int(r["epoch"]) for r in timing] == [1, 2] and all(float(r["seconds"]) > 0 for r in timing)
    assert float(rows[0]["lr"]) == pytest.approx(0.05)
    saved = yaml.safe_load(open(tmp_path / "run" / "config.yaml"))
    assert saved["config_hash"] == run.hash and saved["model"]["arch"] == "msdnet"


def test_training_lowers_the_loss(tmp_path):
    run = make_run_config(TINY_MSDNET, tiny_recipe(tmp_path / "data", epochs=3))
    train(run, tmp_path / "run", log=lambda *_: None)
    rows = list(csv.DictReader(open(tmp_path / "run" / "metrics.csv")))
    assert float(rows[-1]["train_loss_exit2"]) < float(rows[0]["train_loss_exit2"])


def test_different_config_in_same_dir_is_refused(tmp_path):
    run = make_run_config(TINY_MSDNET, tiny_recipe(tmp_path / "data", epochs=1))
    train(run, tmp_path / "run", log=lambda *_: None)
    other = make_run_config({**TINY_MSDNET, "growth_rate": 4}, tiny_recipe(tmp_path / "data", epochs=1))
    with pytest.raises(Exception, match="different config"):
        train(other, tmp_path / "run", log=lambda *_: None)


@pytest.mark.parametrize("where, text, key", [
    ("model", "n_blokcs: 3\n", "n_blokcs"),
    ("recipe_train", "  learning_rate: 0.1\n", "learning_rate"),
    ("recipe_data", "  nmae: digits\n", "nmae"),
])
def test_unknown_key_is_one_line_naming_key_and_file(tmp_path, capsys, where, text, key):
    model, recipe = _write(tmp_path, epochs=1)
    if where == "model":
        model.write_text(model.read_text() + text)
        target = model
    else:
        section = "train" if where == "recipe_train" else "data"
        data = yaml.safe_load(recipe.read_text())
        data[section][text.split(":")[0].strip()] = yaml.safe_load(text.split(":", 1)[1])
        recipe.write_text(yaml.safe_dump(data))
        target = recipe
    code = main(["train", str(model), "--recipe", str(recipe), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and key in err and str(target) in err
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_corrupt_checkpoint_is_one_line(tmp_path, capsys):
    model, recipe = _write(tmp_path, epochs=1)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "checkpoint.pt").write_bytes(b"not a checkpoint")
    code = main(["train", str(model), "--recipe", str(recipe), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "corrupt checkpoint" in err and len(err.splitlines()) == 1


def test_missing_config_file(tmp_path, capsys):
    code = main(["cost", str(tmp_path / "nope.yaml")])
    err = capsys.readouterr().err
    assert code == 2 and "nope.yaml" in err and "no such config file" in err
