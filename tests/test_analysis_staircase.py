"""Staircase: a single intermediate classifier at varying depth."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from msdnet.evaluation.analysis.staircase import baseline_row, run_row, staircase_table
from msdnet.evaluation.analysis.synthetic import from_confidences
from msdnet.cli import main
from msdnet.core.errors import DataError
from msdnet.inference.predictions import save

RUNS = pd.DataFrame([
    # family, seed, location, intermediate, final
    ("resnet", 0, 0.25, 40.0, 80.0),
    ("resnet", 1, 0.25, 30.0, 60.0),
    ("resnet", 0, 0.5, 60.0, 75.0),
    ("resnet", 1, 0.5, 45.0, 75.0),
    ("msdnet", 0, 0.5, 70.0, 70.0),
], columns=["family", "seed", "location", "intermediate_accuracy", "final_accuracy"])
BASE = pd.DataFrame([("resnet", 0, 80.0), ("resnet", 1, 70.0), ("msdnet", 0, 70.0)],
                    columns=["family", "seed", "final_accuracy"])


def value(df, family, location, metric, col="mean"):
    row = df[(df.family == family) & (df.location == location) & (df.metric == metric)]
    assert len(row) == 1
    return row[col].iloc[0]


def test_hand_computed_ratios():
    df = staircase_table(RUNS, BASE)
    assert list(df.columns) == ["family", "location", "metric", "mean", "std", "n_seeds"]
    assert len(df) == 6  # resnet: 2 locations x 2 metrics; msdnet: 1 x 2
    # relative_intermediate: 40/80 = 30/60 = 0.5
    assert value(df, "resnet", 0.25, "relative_intermediate") == pytest.approx(0.5)
    assert value(df, "resnet", 0.25, "relative_intermediate", "std") == pytest.approx(0.0)
    # baseline mean of resnet = 75: relative_final = 80/75, 60/75 -> mean 70/75
    assert value(df, "resnet", 0.25, "relative_final") == pytest.approx(70 / 75)
    std = np.std([80 / 75, 60 / 75], ddof=1)
    assert value(df, "resnet", 0.25, "relative_final", "std") == pytest.approx(std)
    # location 0.5: 60/75 = 0.8, 45/75 = 0.6 -> 0.7
    assert value(df, "resnet", 0.5, "relative_intermediate") == pytest.approx(0.7)
    assert value(df, "resnet", 0.5, "relative_final") == pytest.approx(1.0)
    assert value(df, "msdnet", 0.5, "relative_intermediate") == pytest.approx(1.0)
    assert np.isnan(value(df, "msdnet", 0.5, "relative_final", "std"))
    assert value(df, "msdnet", 0.5, "relative_final", "n_seeds") == 1
    assert value(df, "resnet", 0.5, "relative_final", "n_seeds") == 2


def test_bad_inputs():
    with pytest.raises(DataError, match="no baseline.*msdnet"):
        staircase_table(RUNS, BASE[BASE.family == "resnet"])
    bad = RUNS.copy()
    bad.loc[0, "location"] = 1.0
    with pytest.raises(DataError, match=r"\(0, 1\)"):
        staircase_table(bad, BASE)
    with pytest.raises(DataError, match="more than once"):
        staircase_table(pd.concat([RUNS, RUNS.iloc[:1]]), BASE)
    with pytest.raises(DataError, match="final_accuracy"):
        staircase_table(RUNS.drop(columns="final_accuracy"), BASE)


def two_exit(correct_inter, correct_final, meta=None):
    n = len(correct_inter)
    return from_confidences(np.full((2, n), 0.9), [correct_inter, correct_final], [1.0, 2.0], meta=meta)


def test_rows_from_predictions():
    pr = two_exit([1, 1, 0, 0], [1, 1, 1, 0], meta={"family": "densenet", "seed": 3, "location": 0.4})
    assert run_row(pr) == {"family": "densenet", "seed": 3, "location": 0.4,
                           "intermediate_accuracy": 50.0, "final_accuracy": 75.0}
    assert run_row(pr, family="x", seed=1, location=0.2)["family"] == "x"
    assert baseline_row(pr)["final_accuracy"] == 75.0
    with pytest.raises(DataError, match="location"):
        run_row(two_exit([1], [1]), family="a", seed=0)
    three = from_confidences(np.full((3, 2), 0.9), np.ones((3, 2)), [1.0, 2.0, 3.0])
    with pytest.raises(DataError, match="exactly 2"):
        run_row(three, family="a", seed=0, location=0.5)


def test_cli(tmp_path, capsys):
    files = {}
    for name, inter, final in (("r0", [1, 0, 0, 0], [1, 1, 0, 0]), ("r1", [1, 1, 0, 0], [1, 1, 1, 1])):
        files[name] = str(tmp_path / f"{name}.npz")
        save(files[name], two_exit(inter, final))
    base = str(tmp_path / "base.npz")
    save(base, from_confidences(np.full((1, 4), 0.9), [[1, 1, 1, 0]], [1.0]))
    csv = tmp_path / "s.csv"
    argv = ["staircase", "--run", "resnet", "0", "0.25", files["r0"], "--run", "resnet", "1", "0.25",
            files["r1"], "--baseline", "resnet", "0", base, "--csv", str(csv), "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    got = {o["metric"]: o for o in out}
    # intermediate/final: 25/50 = 0.5, 50/100 = 0.5; final/baseline: 50/75, 100/75 -> mean 1.0
    assert got["relative_intermediate"]["mean"] == pytest.approx(0.5)
    assert got["relative_final"]["mean"] == pytest.approx(1.0)
    assert got["relative_final"]["n_seeds"] == 2
    assert len(pd.read_csv(csv)) == 2
    assert main(["staircase", "--run", "resnet", "0", "oops", files["r0"], "--baseline", "resnet",
                 "0", base]) == 2
    assert "LOCATION" in capsys.readouterr().err
