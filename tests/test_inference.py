"""Real early-exit inference (msdnet.inference.early_exit, msdnet infer): equality with the simulation on
recorded logits, MACs counted for real against sum_k n_k C_k, lazy evaluation, bad input.

Float note: after ``state.select`` (and for lazily computed nodes) kernels run on a smaller batch
and may round differently in the last bits, so an image whose confidence is within TOL of a
threshold may legitimately exit elsewhere than the simulation says. Those images are left out of
the exact comparison (and the tests assert they are few); every other image must match exactly.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from torch import nn

from msdnet.evaluation.analysis.budgeted import assign_exits, exit_distribution, find_thresholds
from msdnet.evaluation.analysis.common import exit_scores
from msdnet.cli import main
from msdnet.models.cost import count_costs
from msdnet.data import DataConfig, iterate_batches, load_data
from msdnet.inference.early_exit import (InferenceError, normalize_thresholds, run_early_exit,
                              time_full_evaluation)
from msdnet.models import SegmentedMultiExit, build
from msdnet.inference.predict import collect_logits, predict_checkpoint
from msdnet.inference.predictions import Predictions, load, save
from msdnet.training.train import make_run_config, train

from conftest import TINY_MSDNET

TOL = 1e-6


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: these models are tiny, and on a shared 2-core machine two OpenMP
    threads are many times slower than one (conftest sets 2; restored afterwards)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

# three exits, three scales: lazy evaluation defers finer-scale nodes at every exit
TINY3 = {**TINY_MSDNET, "n_blocks": 3, "gr_factor": [1, 2, 4], "bn_factor": [1, 2, 4]}


def _random_msdnet(config: dict, seed: int = 0, head_scale: float = 6.0):
    """A random MSDNet whose heads are scaled up so that confidences spread over (0, 1)."""
    torch.manual_seed(seed)
    model = build(config).eval()
    with torch.no_grad():
        for head in model.heads:
            head.linear.weight.mul_(head_scale)
    return model


def _preds(logits, labels, ids, macs) -> Predictions:
    return Predictions(logits=logits, labels=labels, exit_macs=np.asarray(macs, float), sample_ids=ids)


def _simulate(model, batches, theta, measure="max_prob"):
    """Exits, predictions and confidences [E, N] from recorded (full-batch) logits."""
    logits, labels, ids = collect_logits(model, batches)
    conf, _ = exit_scores(_preds(logits, labels, ids, np.arange(1, model.num_exits + 1)), measure)
    exits = assign_exits(conf, theta)
    preds = logits[exits, np.arange(exits.size)].argmax(axis=1)
    return exits, preds, conf, labels, ids


def _near(conf, theta, sim_exits):
    """Images whose confidence at an exit they reach (in the simulation) is within TOL of theta."""
    reach = np.arange(theta.size)[:, None] <= sim_exits[None, :]
    close = np.abs(conf - theta[:, None]) < TOL
    return (close & reach)[:-1].any(axis=0)


def _quantile_thresholds(conf: np.ndarray, shares=(0.3, 0.3)) -> np.ndarray:
    """The paper's procedure on ``conf`` [E, N] with q = (shares..., rest)."""
    q = np.array([*shares, 1.0 - sum(shares)])
    return find_thresholds(conf, q)


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    root = tmp_path_factory.mktemp("digits")
    return load_data(DataConfig(name="digits", image_size=16, root=str(root), val_size=0.2, test_size=0.2))


def test_matches_simulation_image_by_image(digits):
    model = _random_msdnet(TINY3)
    val_logits, val_labels, val_ids = collect_logits(model, iterate_batches(digits, "val", 128))
    val_conf, _ = exit_scores(_preds(val_logits, val_labels, val_ids, [1, 2, 3]))
    for p in (0.5, 1.0, 2.0):
        theta = find_thresholds(val_conf, exit_distribution(p, 3))
        sim_exits, sim_preds, conf, labels, ids = _simulate(model, iterate_batches(digits, "test", 64), theta)
        for lazy in (True, False):
            res = run_early_exit(model, iterate_batches(digits, "test", 64), theta[:-1], lazy=lazy)
            assert res.sample_ids.tolist() == ids.tolist() and res.labels.tolist() == labels.tolist()
            near = _near(conf, theta, sim_exits)
            assert near.sum() <= 2
            ok = ~near
            assert np.array_equal(res.exits[ok], sim_exits[ok])
            assert np.array_equal(res.predictions[ok], sim_preds[ok])
            np.testing.assert_allclose(res.confidences, conf[res.exits, np.arange(ids.size)], rtol=1e-5, atol=1e-7)
            assert (res.exit_counts > 0).sum() >= 2          # the thresholds really split the images
            assert res.measured_macs == res.expected_macs


def test_plus_inf_everyone_reaches_the_last_exit():
    model = _random_msdnet(TINY3, seed=1)
    x = torch.randn(40, 3, 16, 16)
    res = run_early_exit(model, [x], [float("inf")] * 2)
    assert res.exits.tolist() == [2] * 40
    with torch.no_grad():
        full = model(x)[-1].numpy().argmax(axis=1)
    assert np.array_equal(res.predictions, full)
    lazy_macs = [c.macs for c in count_costs(model, lazy=True)]
    assert lazy_macs[-1] == count_costs(model)[-1].macs
    assert res.measured_macs == 40 * lazy_macs[-1]
    fe = time_full_evaluation(model, [x])
    assert np.array_equal(fe.predictions, res.predictions) and fe.macs_per_image == lazy_macs[-1]


def test_minus_inf_everyone_leaves_at_exit_one():
    model = _random_msdnet(TINY3, seed=2)
    x = torch.randn(30, 3, 16, 16)
    y = torch.randint(0, 10, (30,))
    res = run_early_exit(model, [(x, y)], [-np.inf, -np.inf, -np.inf])   # K values ending in -inf
    assert res.exits.tolist() == [0] * 30
    c1_lazy = count_costs(model, lazy=True)[0].macs
    assert c1_lazy < count_costs(model)[0].macs                         # lazy skips finer scales
    assert res.measured_macs == 30 * c1_lazy == res.expected_macs
    # same logits as the full forward's exit 1 -> the analysis' confidences, bit for bit
    logits, labels, ids = collect_logits(model, [(x, y, torch.arange(30))])
    conf, correct = exit_scores(_preds(logits, labels, ids, [1, 2, 3]))
    assert np.array_equal(res.confidences, conf[0])
    assert np.array_equal(res.predictions, logits[0].argmax(axis=1))
    assert res.accuracy == pytest.approx(100.0 * correct[0].mean())


def test_confidence_equal_to_threshold_leaves():
    """>= as in the paper: an image whose exit-1 confidence equals theta_1 exactly leaves there
    (exit 1 runs on the whole batch, so its logits are bit-identical to the full forward's)."""
    model = _random_msdnet(TINY3, seed=6)
    x = torch.randn(21, 3, 16, 16)
    logits, labels, ids = collect_logits(model, [(x, torch.zeros(21, dtype=torch.long), torch.arange(21))])
    conf, _ = exit_scores(_preds(logits, labels, ids, [1, 2, 3]))
    j = int(np.argsort(conf[0])[10])                      # the median image
    res = run_early_exit(model, [x], [conf[0, j], np.inf], count_macs=False)
    assert res.exits[j] == 0 and res.confidences[j] == conf[0, j]
    assert np.array_equal(res.exits == 0, conf[0] >= conf[0, j])
    assert (res.exits == 0).sum() == 11 and set(res.exits[conf[0] < conf[0, j]].tolist()) == {2}


@pytest.mark.parametrize("lazy", [True, False])
def test_measured_macs_equal_expected(lazy):
    model = _random_msdnet(TINY3, seed=3)
    xs = [torch.randn(37, 3, 16, 16), torch.randn(20, 3, 16, 16)]
    logits, labels, ids = collect_logits(model, [(x, torch.zeros(len(x), dtype=torch.long), torch.arange(len(x)))
                                                 for x in xs])
    conf, _ = exit_scores(_preds(logits, labels, ids, [1, 2, 3]))
    theta = _quantile_thresholds(conf)
    res = run_early_exit(model, xs, theta, lazy=lazy)
    assert (res.exit_counts > 0).all()
    costs = np.array([c.macs for c in count_costs(model, lazy=lazy)])
    assert res.exit_macs.tolist() == costs.tolist()
    assert res.measured_macs == res.expected_macs == int(res.exit_counts @ costs)
    assert res.measured_macs < 57 * costs[-1]
    assert res.measured_macs_per_image == pytest.approx(res.expected_macs / 57)
    assert run_early_exit(model, xs, theta, lazy=lazy, count_macs=False).measured_macs is None


def test_lazy_and_eager_agree(digits):
    model = _random_msdnet(TINY3, seed=4)
    batches = lambda: iterate_batches(digits, "test", 100)  # noqa: E731
    logits, labels, ids = collect_logits(model, batches())
    conf, _ = exit_scores(_preds(logits, labels, ids, [1, 2, 3]))
    theta = _quantile_thresholds(conf, (0.4, 0.3))
    lazy = run_early_exit(model, batches(), theta, lazy=True)
    eager = run_early_exit(model, batches(), theta, lazy=False)
    ok = ~_near(conf, theta, assign_exits(conf, theta))
    assert ok.sum() >= ids.size - 2
    assert np.array_equal(lazy.exits[ok], eager.exits[ok])
    assert np.array_equal(lazy.predictions[ok], eager.predictions[ok])
    assert lazy.expected_macs < eager.expected_macs
    assert lazy.measured_macs == lazy.expected_macs and eager.measured_macs == eager.expected_macs


@pytest.mark.parametrize("measure", ["max_prob", "margin"])
def test_segmented_multi_exit_model(measure):
    torch.manual_seed(5)
    segs = [nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU()),
            nn.Sequential(nn.Conv2d(6, 8, 3, stride=2, padding=1), nn.ReLU()),
            nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())]
    heads = [nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 5)) for c in (6, 8, 8)]
    with torch.no_grad():
        for h in heads:
            h[2].weight.mul_(20.0)
    model = SegmentedMultiExit(segs, heads, (3, 8, 8)).eval()
    batches = [(torch.randn(25, 3, 8, 8), torch.randint(0, 5, (25,)), torch.arange(25) + 25 * i) for i in range(2)]
    logits, labels, ids = collect_logits(model, batches)
    conf, _ = exit_scores(_preds(logits, labels, ids, [1, 2, 3]), measure)
    theta = _quantile_thresholds(conf)
    sim_exits, sim_preds, conf, labels, ids = _simulate(model, batches, theta, measure)
    res = run_early_exit(model, batches, theta[:-1], confidence=measure)
    ok = ~_near(conf, theta, sim_exits)
    assert ok.sum() >= 48 and (res.exit_counts > 0).all()
    assert np.array_equal(res.exits[ok], sim_exits[ok]) and np.array_equal(res.predictions[ok], sim_preds[ok])
    assert res.sample_ids.tolist() == list(range(50))
    assert res.measured_macs == res.expected_macs
    assert res.accuracy == pytest.approx(100.0 * np.mean(res.predictions == labels))


def test_threshold_count():
    assert normalize_thresholds([0.5, 0.7], 3).tolist() == [0.5, 0.7, -np.inf]
    assert normalize_thresholds([0.5, 0.7, -np.inf], 3).tolist() == [0.5, 0.7, -np.inf]
    assert normalize_thresholds([], 1).tolist() == [-np.inf]
    for bad in ([0.5], [0.5, 0.7, 0.1], [0.1, 0.2, 0.3, 0.4], [float("nan"), 0.5]):
        with pytest.raises(InferenceError):
            normalize_thresholds(bad, 3)
    with pytest.raises(ValueError):                       # an InferenceError is a ValueError too
        run_early_exit(_random_msdnet(TINY3), [torch.randn(2, 3, 16, 16)], [0.5])


# --------------------------------------------------------------------------------------------
# msdnet infer on a checkpoint trained for one epoch
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("infer")
    recipe = {"data": {"name": "digits", "root": str(tmp / "data"), "image_size": 16, "val_size": 0.5,
                       "test_size": 0.3},
              "train": {"epochs": 1, "batch_size": 64, "lr": 0.1, "seed": 0, "num_workers": 0,
                        "progress": "none"}}
    run = make_run_config(TINY_MSDNET, recipe)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(run, tmp / "run", log=lambda *_: None)
        ckpt = tmp / "run" / "checkpoint.pt"
        paths = predict_checkpoint(ckpt, tmp / "preds")
    finally:
        torch.set_num_threads(before)
    return ckpt, paths


def test_cli_matches_simulation(trained, tmp_path, capsys):
    ckpt, paths = trained
    out = tmp_path / "images.csv"
    assert main(["infer", str(ckpt), "--val", str(paths["val"]), "--p", "1.0", "--batch-size", "100",
                 "--json", "--csv", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    test = load(paths["test"])
    theta = np.array([float(t) for t in summary["thresholds"]])
    assert theta.size == 2 and theta[-1] == -np.inf and summary["threshold_source"]["mode"] == "p"
    conf, correct = exit_scores(test)
    sim_exits = assign_exits(conf, theta)
    with open(out) as f:
        rows = list(csv.DictReader(f))
    assert [int(r["sample_id"]) for r in rows] == test.sample_ids.tolist()
    exits = np.array([int(r["exit"]) - 1 for r in rows])
    preds = np.array([int(r["prediction"]) for r in rows])
    ok = ~_near(conf, theta, sim_exits)
    assert ok.sum() >= len(rows) - 2 and len(set(exits.tolist())) == 2
    assert np.array_equal(exits[ok], sim_exits[ok])
    assert np.array_equal(preds[ok], test.logits[sim_exits, np.arange(len(rows))].argmax(axis=1)[ok])
    assert summary["n_images"] == len(rows)
    assert summary["accuracy"] == pytest.approx(100.0 * np.mean([r["correct"] == "True" for r in rows]))
    assert summary["exit_counts"] == np.bincount(exits, minlength=2).tolist()
    lazy = test.meta["exit_macs_lazy"]
    assert summary["exit_macs"] == lazy
    assert summary["measured_macs_per_image"] == pytest.approx(summary["expected_macs_per_image"])
    assert summary["expected_macs_per_image"] == pytest.approx(np.bincount(exits, minlength=2) @ lazy / len(rows))
    assert summary["full_macs_per_image"] == test.exit_macs[-1]
    assert summary["speedup"] > 0 and summary["seconds_per_image"] > 0


def test_cli_budget_and_text(trained, capsys):
    ckpt, paths = trained
    lazy = load(paths["val"]).meta["exit_macs_lazy"]
    budget = 0.5 * (lazy[0] + lazy[1])
    assert main(["infer", str(ckpt), "--val", str(paths["val"]), "--budget", str(budget), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["threshold_source"]["val_avg_macs"] <= budget
    assert main(["infer", str(ckpt), "--thresholds", "inf", "--no-lazy"]) == 0
    text = capsys.readouterr().out
    assert "speed-up" in text and "mean exit: 2.000" in text and "no lazy evaluation" in text


def test_cli_fast_engine_matches_simulation(trained, tmp_path, capsys):
    """--engine fast (msdnet.inference.fast_exit, eager on the CPU): the same exits as the simulation."""
    ckpt, paths = trained
    out = tmp_path / "fast.csv"
    assert main(["infer", str(ckpt), "--val", str(paths["val"]), "--p", "1.0", "--batch-size", "100",
                 "--engine", "fast", "--json", "--csv", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["engine"] == "fast" and summary["measured_macs_per_image"] is None
    assert summary["executed_macs_per_image"] >= summary["expected_macs_per_image"]
    test = load(paths["test"])
    theta = np.array([float(t) for t in summary["thresholds"]])
    conf, _ = exit_scores(test)
    sim_exits = assign_exits(conf, theta)
    with open(out) as f:
        rows = list(csv.DictReader(f))
    exits = np.array([int(r["exit"]) - 1 for r in rows])
    ok = ~_near(conf, theta, sim_exits)
    assert ok.sum() >= len(rows) - 2 and np.array_equal(exits[ok], sim_exits[ok])
    assert main(["infer", str(ckpt), "--thresholds", "inf"]) == 0
    assert "reference engine" in capsys.readouterr().out               # auto on the CPU


@pytest.mark.parametrize("argv, message", [
    (["--thresholds", "0.1", "0.2"], "give 1, one per exit but the last"),
    (["--thresholds"], "give 1, one per exit but the last"),
    (["--thresholds", "0.5", "--p", "1"], "not both"),
    (["--p", "1"], "--val"),
    (["--val", "VAL", "--p", "1", "--budget", "5"], "exactly one"),
    (["--val", "VAL", "--p", "1", "--split", "val"], "held-out split"),
    (["--val", "OTHER", "--p", "1"], "another checkpoint"),
])
def test_cli_bad_input(trained, tmp_path, capsys, argv, message):
    ckpt, paths = trained
    other = load(paths["val"])
    other.meta["checkpoint_sha256"] = "0" * 64
    save(tmp_path / "other.npz", other)
    argv = [{"VAL": str(paths["val"]), "OTHER": str(tmp_path / "other.npz")}.get(a, a) for a in argv]
    assert main(["infer", str(ckpt), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
