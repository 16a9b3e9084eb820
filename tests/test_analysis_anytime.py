"""Anytime prediction table and CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from msdnet.evaluation.analysis.anytime import anytime_table
from msdnet.cli import main
from msdnet.inference.predictions import Predictions, save


def hand_preds(with_params=True):
    # 2 exits, 4 images, 3 classes; labels 0, 1, 2, 0
    logits = np.zeros((2, 4, 3), dtype=np.float32)
    logits[0, [0, 1, 2, 3], [0, 2, 2, 1]] = 5.0   # exit 1 predicts 0, 2, 2, 1 -> right: #0, #2
    logits[1, [0, 1, 2, 3], [0, 1, 2, 1]] = 5.0   # exit 2 predicts 0, 1, 2, 1 -> right: #0-#2
    return Predictions(logits=logits, labels=np.array([0, 1, 2, 0]), exit_macs=np.array([100.0, 250.0]),
                       sample_ids=np.arange(4), meta={"model": "toy"},
                       exit_params=np.array([10, 30]) if with_params else None)


def test_accuracy_per_exit_by_hand():
    df = anytime_table(hand_preds())
    assert list(df.columns) == ["model", "exit", "macs", "params", "accuracy"]
    assert df["exit"].tolist() == [1, 2]
    assert df["accuracy"].tolist() == pytest.approx([50.0, 75.0])
    assert df["macs"].tolist() == [100.0, 250.0]
    assert df["params"].tolist() == [10.0, 30.0]
    assert df["model"].tolist() == ["toy", "toy"]
    assert anytime_table(hand_preds(), model="other")["model"].tolist() == ["other", "other"]


def test_missing_params_are_nan():
    df = anytime_table(hand_preds(with_params=False))
    assert df["params"].isna().all()


def test_cli_json_and_csv(tmp_path, capsys):
    path = tmp_path / "t.npz"
    save(path, hand_preds(with_params=False))
    csv = tmp_path / "a.csv"
    assert main(["anytime", "--test", str(path), "--json", "--csv", str(csv)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == [{"exit": 1, "macs": 100.0, "params": None, "accuracy": 50.0},
                   {"exit": 2, "macs": 250.0, "params": None, "accuracy": 75.0}]
    back = pd.read_csv(csv)
    assert back["accuracy"].tolist() == [50.0, 75.0] and back["model"].tolist() == ["toy", "toy"]
    assert main(["anytime", "--test", str(path)]) == 0
    text = capsys.readouterr().out
    assert "top-1 %" in text and "75" in text


def test_cli_missing_file_is_one_line(tmp_path, capsys):
    assert main(["anytime", "--test", str(tmp_path / "nope.npz")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nope.npz" in err
