"""Checkpoints are never unpickled: a file that would run code when loaded is refused, unrun."""

from __future__ import annotations

import builtins

import numpy as np
import pytest
import torch
import yaml

from msdnet.cli import main
from msdnet.core.errors import MsdnetError
from msdnet.training.train import load_checkpoint, make_run_config, train

from conftest import TINY_MSDNET, tiny_recipe


class _Trap:
    """Unpickling this calls open(marker, "w"): the marker file appears if anyone unpickles it."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (builtins.open, (self.marker, "w"))


def _malicious(path, marker, **extra) -> None:
    config = {"model": TINY_MSDNET, "data": {"name": "digits"}, "train": {"epochs": 1}}
    torch.save({"model": {"trap": _Trap(str(marker))}, "config": config, "config_hash": "x", **extra}, path)


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    return err


def test_load_checkpoint_refuses_a_pickle_that_runs_code(tmp_path):
    bad, marker = tmp_path / "evil.pt", tmp_path / "PWNED"
    _malicious(bad, marker)
    with pytest.raises(MsdnetError, match="refused") as exc:
        load_checkpoint(bad)
    assert str(bad) in str(exc.value)
    assert not marker.exists()


@pytest.mark.parametrize("command", ["predict", "infer"])
def test_cli_refuses_a_malicious_checkpoint_in_one_line(tmp_path, capsys, command):
    bad, marker = tmp_path / "model.pt", tmp_path / "PWNED"
    _malicious(bad, marker, finished=True, epoch=1)
    argv = {"predict": ["predict", str(bad), "--out-dir", str(tmp_path / "p")],
            "infer": ["infer", str(bad), "--thresholds", "0.5"]}[command]
    assert main(argv) == 2
    err = _one_line(capsys)
    assert str(bad) in err and "refused" in err
    assert not marker.exists()
    assert not (tmp_path / "p").exists()


def test_train_refuses_a_malicious_resume_checkpoint(tmp_path, capsys):
    model, recipe = tmp_path / "model.yaml", tmp_path / "recipe.yaml"
    model.write_text(yaml.safe_dump(TINY_MSDNET))
    recipe.write_text(yaml.safe_dump(tiny_recipe(tmp_path / "data", epochs=1)))
    run, marker = tmp_path / "run", tmp_path / "PWNED"
    run.mkdir()
    _malicious(run / "checkpoint.pt", marker)
    assert main(["train", str(model), "--recipe", str(recipe), "--out", str(run)]) == 2
    err = _one_line(capsys)
    assert str(run / "checkpoint.pt") in err and "refused" in err
    assert not marker.exists()
    assert not (run / "metrics.csv").exists()


def test_resume_state_loads_as_plain_data(tmp_path):
    """checkpoint.pt holds only tensors and plain Python data (RNG states included)."""
    run_cfg = make_run_config(TINY_MSDNET, tiny_recipe(tmp_path / "data", epochs=1))
    train(run_cfg, tmp_path / "run", log=lambda *_: None)
    ckpt = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    rng = ckpt["rng"]
    assert isinstance(rng["numpy"], dict) and isinstance(rng["numpy"]["keys"], torch.Tensor)
    assert rng["numpy"]["keys"].shape == (624,)
    state = np.random.get_state()
    assert rng["numpy"]["kind"] == state[0] == "MT19937"
    assert isinstance(rng["torch"], torch.Tensor) and ckpt["optimizer"]["state"]
