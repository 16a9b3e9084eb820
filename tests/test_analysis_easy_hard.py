"""Easy images (leave correctly at exit 1) and hard ones (only the last exit right)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from msdnet.evaluation.analysis.easy_hard import easy_hard_from_budget, easy_hard_table
from msdnet.evaluation.analysis.synthetic import from_confidences
from msdnet.cli import main
from msdnet.core.errors import DataError
from msdnet.inference.predictions import save

CONF1 = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
CORRECT = [[1, 1, 0, 1, 0, 0],
           [1, 0, 0, 1, 1, 0],
           [1, 1, 1, 0, 1, 1]]
LABELS = [0, 0, 1, 1, 0, 1]
# hard (exits 1, 2 wrong, exit 3 right): #2, #5 (#4 is right at exit 2)


def preds():
    conf = np.array([CONF1, [0.5] * 6, [0.5] * 6])
    return from_confidences(conf, CORRECT, [1.0, 2.0, 3.0], labels=LABELS)


def kinds(df):
    return {k: sorted(df[df.kind == k]["sample_id"].tolist()) for k in ("easy", "hard")}


def test_explicit_threshold():
    df = easy_hard_table(preds(), threshold=0.75)
    assert list(df.columns) == ["sample_id", "label", "kind", "confidence"]
    assert kinds(df) == {"easy": [0, 1], "hard": [2, 5]}
    # order: label 0 (easy 0 then 1), label 1 (hard, least confident first: 5 then 2)
    assert df["sample_id"].tolist() == [0, 1, 5, 2]
    assert df["confidence"].tolist() == pytest.approx([0.9, 0.8, 0.4, 0.7])
    assert df["label"].tolist() == [0, 0, 1, 1]


def test_top_share_default_and_options():
    assert kinds(easy_hard_table(preds()))["easy"] == [0, 1]           # ceil(0.2*6) = 2 -> 0.8
    assert kinds(easy_hard_table(preds(), top_share=0.5))["easy"] == [0, 1]   # 3rd: 0.7 (#2 wrong)
    assert kinds(easy_hard_table(preds(), top_share=0.67))["easy"] == [0, 1, 3]  # 5th: 0.5
    one = easy_hard_table(preds(), threshold=0.55, per_class=1)
    assert one["sample_id"].tolist() == [0, 3, 5]  # label 0 easy; label 1 easy, hard
    with pytest.raises(DataError):
        easy_hard_table(preds(), top_share=0.0)
    single = from_confidences(np.full((1, 2), 0.9), np.ones((1, 2)), [1.0])
    with pytest.raises(DataError, match="at least 2 exits"):
        easy_hard_table(single)


def test_budgeted_thresholds_define_leaving_at_exit_one():
    pr = preds()
    # p = 0.5: n_1 = floor(6 * 4/7) = 3 -> theta_1 = 0.7
    assert kinds(easy_hard_from_budget(pr, pr, 0.5))["easy"] == [0, 1]
    # p = 0.05: n_1 = floor(6 * 0.95...) = 5 -> theta_1 = 0.5
    assert kinds(easy_hard_from_budget(pr, pr, 0.05))["easy"] == [0, 1, 3]


def test_cli(tmp_path, capsys):
    path = tmp_path / "t.npz"
    save(path, preds())
    csv = tmp_path / "eh.csv"
    assert main(["easy-hard", "--test", str(path), "--val", str(path), "--p", "0.05",
                 "--csv", str(csv)]) == 0
    assert "3 easy, 2 hard" in capsys.readouterr().out
    back = pd.read_csv(csv)
    assert back["sample_id"].tolist() == [0, 1, 3, 5, 2]
    assert main(["easy-hard", "--test", str(path), "--val", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--p" in err
