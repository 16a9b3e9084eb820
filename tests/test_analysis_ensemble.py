"""Ensembles evaluated smallest first, written as a predictions file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from msdnet.evaluation.analysis.common import softmax
from msdnet.evaluation.analysis.ensemble import build_ensemble
from msdnet.evaluation.analysis.synthetic import make_predictions
from msdnet.cli import main
from msdnet.core.errors import DataError
from msdnet.inference.predictions import load, save


def members(seed=0, n=30, c=6, costs=(300.0, 100.0, 200.0), labels=None, split="test"):
    rng = np.random.default_rng(seed)
    if labels is None:
        labels = rng.integers(0, c, size=n)
    out = []
    for i, cost in enumerate(costs):
        pr = make_predictions(rng, n_exits=1 + i % 2, n_images=n, n_classes=c, labels=labels,
                              meta={"model": f"m{i}", "split": split})
        pr.exit_macs = pr.exit_macs / pr.exit_macs[-1] * cost  # full cost = cost
        pr.exit_params = np.cumsum(np.full(pr.num_exits, 10 * (i + 1)))
        out.append(pr)
    return out


def test_step_m_is_mean_softmax_of_first_m_sorted_members():
    ms = members()
    ens = build_ensemble(ms, names=["a.npz", "b.npz", "c.npz"])
    order = [1, 2, 0]  # costs 100, 200, 300
    assert [m["file"] for m in ens.meta["members"]] == ["b.npz", "c.npz", "a.npz"]
    assert ens.exit_macs.tolist() == [100.0, 300.0, 600.0]
    # last-exit params: m1 (2 exits of 20 each) 40, m2 30, m0 10 -> cumulative 40, 70, 80
    assert ens.exit_params.tolist() == [40, 70, 80]
    assert ens.logits.dtype == np.float32 and ens.num_exits == 3
    for m in range(1, 4):
        expected = np.mean([softmax(ms[i].logits[-1]) for i in order[:m]], axis=0)
        np.testing.assert_allclose(softmax(ens.logits[m - 1]), expected, atol=2e-6)
    assert ens.meta["kind"] == "ensemble" and ens.meta["split"] == "test"
    assert ens.meta["members"][0]["meta"]["model"] == "m1"
    np.testing.assert_array_equal(ens.labels, ms[0].labels)


def test_extreme_logits_stay_finite():
    ms = members(costs=(1.0, 2.0))
    ms[0].logits = ms[0].logits * 1e4
    ens = build_ensemble(ms)
    assert np.all(np.isfinite(ens.logits))
    np.testing.assert_allclose(softmax(ens.logits[1]),
                               (softmax(ms[0].logits[-1]) + softmax(ms[1].logits[-1])) / 2, atol=2e-6)


def test_mismatched_members_are_rejected():
    a, b = members(costs=(1.0, 2.0))
    b.labels = (b.labels + 1) % b.num_classes
    with pytest.raises(DataError, match="b.npz.*a.npz.*labels"):
        build_ensemble([a, b], names=["a.npz", "b.npz"])
    a, b = members(costs=(1.0, 2.0))
    b.sample_ids = b.sample_ids[::-1].copy()
    with pytest.raises(DataError, match="sample_ids"):
        build_ensemble([a, b], names=["a.npz", "b.npz"])
    a, = members(costs=(1.0,))
    c, = members(costs=(1.0,), c=4, labels=np.zeros(30, dtype=int))
    with pytest.raises(DataError, match="classes"):
        build_ensemble([a, c], names=["a.npz", "c.npz"])
    with pytest.raises(DataError):
        build_ensemble([])


def test_round_trip_and_cli(tmp_path, capsys):
    paths = {}
    for split, seed in (("val", 1), ("test", 2)):
        ms = members(seed=seed, costs=(300.0, 100.0), split=split)
        files = []
        for i, m in enumerate(ms):
            p = tmp_path / f"{split}_m{i}.npz"
            save(p, m)
            files.append(str(p))
        out = tmp_path / f"{split}_ens.npz"
        assert main(["ensemble", *files, "--out", str(out)]) == 0
        paths[split] = str(out)
        capsys.readouterr()
        ens = load(out)
        direct = build_ensemble(ms, names=files)
        np.testing.assert_array_equal(ens.logits, direct.logits)
        assert ens.exit_macs.tolist() == [100.0, 400.0]
        assert [m["file"] for m in ens.meta["members"]] == [files[1], files[0]]
    assert main(["anytime", "--test", paths["test"], "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["macs"] for r in rows] == [100.0, 400.0]
    assert main(["budgeted", "--val", paths["val"], "--test", paths["test"], "--json"]) == 0
    pts = json.loads(capsys.readouterr().out)
    assert len(pts) == 39 and all(100.0 <= p["avg_macs"] <= 400.0 for p in pts)


def test_cli_mismatch_is_one_line(tmp_path, capsys):
    a, b = members(costs=(1.0, 2.0))
    b.sample_ids = b.sample_ids + 1000
    pa, pb = tmp_path / "a.npz", tmp_path / "b.npz"
    save(pa, a)
    save(pb, b)
    assert main(["ensemble", str(pa), str(pb), "--out", str(tmp_path / "e.npz")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "a.npz" in err and "b.npz" in err
    assert not (tmp_path / "e.npz").exists()
