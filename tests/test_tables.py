"""The row builders behind the figures (msdnet.evaluation.tables) and their agreement with the commands."""

from __future__ import annotations

import json

import numpy as np
import pytest

from msdnet.evaluation.analysis.synthetic import make_predictions
from msdnet.cli import main
from msdnet.inference.predictions import save
from msdnet.evaluation.tables import Sources, anytime_rows, budgeted_rows, dynamic_rows


@pytest.fixture
def run_dir(tmp_path):
    rng = np.random.default_rng(0)
    d = tmp_path / "pred" / "m" / "0123456789abcdef" / "seed0"
    for split, n, start in (("val", 120, 0), ("test", 150, 1000)):
        p = make_predictions(rng, n_exits=3, n_images=n, meta={"split": split, "config_hash": "h",
                                                                "checkpoint_sha256": "s", "dataset": "x"})
        p.sample_ids = np.arange(start, start + n)
        p.exit_macs = np.array([1e6, 2e6, 4e6])
        p.meta["exit_macs_lazy"] = (p.exit_macs * np.array([1.0, 0.8, 0.7])).tolist()
        save(d / f"{split}.npz", p)
    return d


def test_budgeted_command_and_figure_table_agree_on_costs(run_dir, capsys):
    src = Sources({"m": {0: run_dir}})
    table = dynamic_rows({"M": ["m"]}, src)
    assert main(["budgeted", "--val", str(run_dir / "val.npz"), "--test", str(run_dir / "test.npz"),
                 "--json"]) == 0
    points = json.loads(capsys.readouterr().out)
    assert np.allclose(sorted(table["avg_macs"]), sorted(p["avg_macs"] for p in points))
    assert main(["budgeted", "--val", str(run_dir / "val.npz"), "--test", str(run_dir / "test.npz"),
                 "--json", "--costs", "full"]) == 0
    full = json.loads(capsys.readouterr().out)
    assert max(p["avg_macs"] for p in full) > max(p["avg_macs"] for p in points)   # lazy is cheaper


def test_single_networks_and_anytime_use_full_costs(run_dir):
    src = Sources({"m": {0: run_dir}})
    full = np.load(run_dir / "test.npz")["exit_macs"]
    assert np.allclose(anytime_rows({"M": "m"}, src)["macs"], full)
    single = budgeted_rows({"single": {"M": "m"}}, src)
    assert single["avg_macs"].tolist() == [full[-1]] and (single["kind"] == "single").all()


def test_sources_name_a_missing_model():
    from msdnet.core.errors import ConfigError

    with pytest.raises(ConfigError, match="'nope'"):
        Sources({}).seeds("nope")
