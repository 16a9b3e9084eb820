"""Budgeted batch classification: the paper's threshold procedure (docs/method.md)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from msdnet.evaluation.analysis.budgeted import (BudgetedEvaluator, BudgetedPoint, assign_exits,
                                      budgeted_exit_table, budgeted_table, envelope,
                                      exit_counts, exit_distribution, find_thresholds, sweep_ps)
from msdnet.evaluation.analysis.common import exit_scores
from msdnet.evaluation.analysis.synthetic import from_confidences, make_predictions
from msdnet.cli import main
from msdnet.core.errors import DataError
from msdnet.inference.predictions import Predictions, save

MACS = [10.0, 20.0, 40.0]

# Hand-worked example: 3 exits, 8 validation images, 4 test images.
VAL_CONF = [[0.9, 0.6, 0.8, 0.55, 0.7, 0.95, 0.65, 0.75],
            [0.99, 0.7, 0.99, 0.9, 0.6, 0.99, 0.8, 0.99],
            [0.5] * 8]
VAL_CORRECT = [[1, 0, 1, 0, 0, 1, 0, 0],
               [0, 0, 0, 1, 1, 0, 0, 1],
               [0, 1, 0, 0, 1, 0, 1, 0]]
TEST_CONF = [[0.8, 0.74, 0.7, 0.5],
             [0.3, 0.9, 0.85, 0.79],
             [0.4, 0.4, 0.4, 0.4]]
TEST_CORRECT = [[1, 1, 0, 1],
                [0, 0, 1, 1],
                [0, 1, 0, 0]]


def hand_evaluator(**kw) -> BudgetedEvaluator:
    val = from_confidences(VAL_CONF, VAL_CORRECT, MACS)
    test = from_confidences(TEST_CONF, TEST_CORRECT, MACS)
    return BudgetedEvaluator(val, test, **kw)


def test_hand_worked_example_p_half():
    # p = 1/2: q = (4/7, 2/7, 1/7); n_1 = floor(32/7) = 4, n_2 = floor(16/7) = 2.
    # exit 1, sorted: 0.95 (#5), 0.9 (#0), 0.8 (#2), 0.75 (#7) -> theta_1 = 0.75, {5, 0, 2, 7} leave.
    # exit 2 among {1, 3, 4, 6}: 0.9 (#3), 0.8 (#6) -> theta_2 = 0.8, {3, 6} leave; {1, 4} go on.
    pt = hand_evaluator().point(0.5)
    assert pt.thresholds[:2] == pytest.approx([0.75, 0.8], abs=1e-9)
    assert pt.thresholds[2] == -math.inf
    assert pt.val_exit_fractions == pytest.approx([4 / 8, 2 / 8, 2 / 8])
    assert pt.val_avg_macs == pytest.approx(0.5 * 10 + 0.25 * 20 + 0.25 * 40)  # 20
    # correct: exit 1 {0, 2, 5} of {0, 2, 5, 7}; exit 2 {3} of {3, 6}; exit 3 {1, 4}: 6 / 8
    assert pt.val_accuracy == pytest.approx(75.0)
    # test: #0 0.8 >= 0.75 -> exit 1 (right); #1 0.74 < 0.75, 0.9 >= 0.8 -> exit 2 (wrong);
    # #2 0.7, 0.85 -> exit 2 (right); #3 0.5, 0.79 -> exit 3 (wrong)
    assert pt.exit_fractions == pytest.approx([0.25, 0.5, 0.25])
    assert pt.avg_macs == pytest.approx(0.25 * 10 + 0.5 * 20 + 0.25 * 40)  # 22.5
    assert pt.accuracy == pytest.approx(50.0)


def test_hand_worked_example_p_one():
    # p = 1: q = 1/3 each; n_1 = n_2 = floor(8/3) = 2.
    # exit 1: 0.95 (#5), 0.9 (#0) -> theta_1 = 0.9. exit 2 among the rest: 0.99 (#2), 0.99 (#7)
    # -> theta_2 = 0.99 (#0 and #5 also have 0.99 but left already).
    pt = hand_evaluator().point(1.0)
    assert pt.thresholds[:2] == pytest.approx([0.9, 0.99], abs=1e-9)
    assert pt.val_exit_fractions == pytest.approx([2 / 8, 2 / 8, 4 / 8])
    assert pt.val_avg_macs == pytest.approx(0.25 * 10 + 0.25 * 20 + 0.5 * 40)
    # exit 1 {5, 0}: right, right; exit 2 {2, 7}: wrong, right; exit 3 {1, 3, 4, 6}: 1, 0, 1, 1
    assert pt.val_accuracy == pytest.approx(100.0 * 6 / 8)
    # test: nobody has exit-1 conf >= 0.9, nobody exit-2 >= 0.99: all at exit 3
    assert pt.exit_fractions == pytest.approx([0, 0, 1])
    assert pt.avg_macs == pytest.approx(40.0)
    assert pt.accuracy == pytest.approx(25.0)


def test_exit_distribution_and_counts():
    assert exit_distribution(0.5, 3) == pytest.approx([4 / 7, 2 / 7, 1 / 7])
    assert exit_distribution(0.0, 3).tolist() == [1, 0, 0]
    assert exit_distribution(math.inf, 3).tolist() == [0, 0, 1]
    assert sweep_ps().tolist() == pytest.approx([j / 20 for j in range(1, 40)])
    # 49 * (1/49) is 0.999... in floats; the floor must still give 1 image per exit
    assert exit_counts(exit_distribution(1.0, 49), 49).tolist() == [1] * 48


def literal_thresholds(conf, p):
    """Step 3 of docs/method.md §Exit distribution and thresholds, transcribed literally with
    Python loops (the reference)."""
    k_exits, n = len(conf), len(conf[0])
    w = [p ** k for k in range(1, k_exits + 1)]
    q = [x / sum(w) for x in w]
    theta = [math.inf] * (k_exits - 1) + [-math.inf]
    exited = [False] * n
    for k in range(k_exits - 1):
        n_k = math.floor(n * q[k] * (1 + 1e-12))
        remaining = sorted((i for i in range(n) if not exited[i]), key=lambda i: -conf[k][i])
        if n_k == 0 or len(remaining) < n_k:
            continue
        theta[k] = conf[k][remaining[n_k - 1]]
        for i in range(n):
            if conf[k][i] >= theta[k]:
                exited[i] = True
    return theta


@settings(max_examples=60, deadline=None)
@given(k=st.integers(1, 5), n=st.integers(1, 60), j=st.integers(1, 39), levels=st.integers(2, 50),
       seed=st.integers(0, 2**31 - 1))
def test_vectorised_thresholds_match_the_literal_procedure(k, n, j, levels, seed):
    rng = np.random.default_rng(seed)
    conf = rng.integers(0, levels, size=(k, n)) / levels  # few levels: many ties
    theta = find_thresholds(conf, exit_distribution(j / 20, k))
    assert theta.tolist() == literal_thresholds(conf.tolist(), j / 20)
    exits = assign_exits(conf, theta)
    for i in range(n):  # first exit with conf >= theta, in exit order
        assert exits[i] == next(e for e in range(k) if e == k - 1 or conf[e, i] >= theta[e])


@settings(max_examples=60, deadline=None)
@given(k=st.integers(2, 6), n=st.integers(1, 150), j=st.integers(1, 39), seed=st.integers(0, 2**31 - 1))
def test_val_shares_follow_q_without_ties(k, n, j, seed):
    rng = np.random.default_rng(seed)
    conf = rng.random((k, n))  # continuous: no ties (almost surely)
    q = exit_distribution(j / 20, k)
    theta = find_thresholds(conf, q)
    frac = np.bincount(assign_exits(conf, theta), minlength=k) / n
    assert np.all(np.abs(frac[:-1] - q[:-1]) < 1.0 / n)
    assert (frac[:-1] * n).round().tolist() == np.floor(n * q[:-1] + 1e-9).tolist()
    assert frac[-1] >= q[-1] - 1e-12 and frac[-1] - q[-1] < (k - 1) / n


@settings(max_examples=60, deadline=None)
@given(k=st.integers(2, 6), n=st.integers(1, 150), seed=st.integers(0, 2**31 - 1))
def test_val_cost_tracks_the_monotone_ideal_cost(k, n, seed):
    """Validation cost vs p. The ideal cost sum_k q_k C_k is non-decreasing in p; the algorithm's
    cost lies in [ideal, ideal + sum_{k<K} k (C_{k+1}-C_k) / N), so it never drops by more than
    that rounding bound (it is not exactly monotone: see the counterexample test below)."""
    rng = np.random.default_rng(seed)
    conf = rng.random((k, n))
    macs = np.cumsum(rng.uniform(1.0, 10.0, size=k))
    bound = float(np.sum(np.arange(1, k) * np.diff(macs))) / n
    ideal, cost = [], []
    for p in sweep_ps():
        q = exit_distribution(p, k)
        frac = np.bincount(assign_exits(conf, find_thresholds(conf, q)), minlength=k) / n
        ideal.append(float(q @ macs))
        cost.append(float(frac @ macs))
    ideal, cost = np.array(ideal), np.array(cost)
    assert np.all(np.diff(ideal) >= -1e-9)
    assert np.all(cost >= ideal - 1e-9)
    assert np.all(cost < ideal + bound + 1e-9)
    assert np.all(np.diff(cost) > -bound - 1e-9)


def test_val_cost_is_not_exactly_monotone_counterexample():
    # K = 3, N = 4: p = 0.35 -> n = (2, 0); p = 0.40 -> n = (2, 1): one image leaves earlier.
    conf = np.array([[0.9, 0.8, 0.3, 0.2], [0.9, 0.8, 0.7, 0.6], [0.5] * 4])
    macs = np.array([1.0, 2.0, 3.0])
    costs = []
    for p in (0.35, 0.40):
        theta = find_thresholds(conf, exit_distribution(p, 3))
        costs.append(np.bincount(assign_exits(conf, theta), minlength=3) / 4 @ macs)
    assert costs[1] < costs[0]


def test_val_cost_monotone_on_large_untied_split():
    # a practical check: with many images the rounding effect is invisible on the p grid
    rng = np.random.default_rng(0)
    val, test = make_predictions(rng, 5, 2000, 10), make_predictions(rng, 5, 500, 10)
    test.exit_macs = val.exit_macs
    costs = [pt.val_avg_macs for pt in BudgetedEvaluator(val, test).sweep()]
    assert np.all(np.diff(costs) >= 0)
    assert costs[-1] > costs[0]


def _random_pair(rng, k, n, ties):
    val = make_predictions(rng, k, n, 5)
    test = make_predictions(rng, k, max(1, n // 2), 5)
    test.exit_macs = val.exit_macs
    if ties:  # coarse logits make many identical confidences
        val.logits = np.round(val.logits)
        test.logits = np.round(test.logits)
    return val, test


@settings(max_examples=20, deadline=None)
@given(k=st.integers(1, 5), n=st.integers(1, 80), frac=st.floats(0.0, 1.3),
       ties=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_target_budget_never_exceeded_on_val(k, n, frac, ties, seed):
    rng = np.random.default_rng(seed)
    val, test = _random_pair(rng, k, n, ties)
    macs = val.exit_macs
    budget = float(macs[0] + frac * (macs[-1] - macs[0]))
    ev = BudgetedEvaluator(val, test)
    pt = ev.at_budget(budget)
    assert pt.val_avg_macs <= budget
    assert pt.curve == "budget" and pt.budget == budget
    # at least as close as the best feasible point of the paper's sweep and of p = 0 (cost C_1)
    sweep_best = max([p.val_avg_macs for p in ev.sweep() if p.val_avg_macs <= budget] + [macs[0]])
    assert pt.val_avg_macs >= sweep_best - 1e-9
    if budget >= macs[-1]:
        assert pt.val_avg_macs == pytest.approx(macs[-1])


def test_budget_below_first_exit_is_an_error():
    ev = hand_evaluator()
    with pytest.raises(DataError, match="below the cost of exit 1"):
        ev.at_budget(9.99)
    pt = ev.at_budget(10.0)  # exactly C_1: every validation image leaves at exit 1 (p = 0)
    assert pt.val_avg_macs == 10.0 and pt.p == 0.0
    assert pt.val_exit_fractions.tolist() == [1.0, 0.0, 0.0]


def test_budget_hand_example():
    # validation costs are fixed by the counts (n_1, n_2): budget 20 is met exactly by p = 1/2
    pt = hand_evaluator().at_budget(20.0)
    assert pt.val_avg_macs == pytest.approx(20.0)
    pt = hand_evaluator().at_budget(19.0)
    assert pt.val_avg_macs <= 19.0


def test_single_exit_everything_leaves_at_exit_one():
    rng = np.random.default_rng(1)
    val, test = make_predictions(rng, 1, 50, 4), make_predictions(rng, 1, 30, 4)
    test.exit_macs = val.exit_macs
    acc1 = (test.logits[0].argmax(1) == test.labels).mean() * 100
    for pt in BudgetedEvaluator(val, test).sweep():
        assert pt.exit_fractions.tolist() == [1.0]
        assert pt.accuracy == pytest.approx(acc1)
        assert pt.avg_macs == pytest.approx(val.exit_macs[0])
        assert pt.to_json()["thresholds"] == ["-inf"]


def test_all_images_fully_confident_leave_at_the_first_exit_with_a_quota():
    n = 4
    conf = np.ones((3, n))
    val = from_confidences(conf, np.ones((3, n)), MACS)
    test = from_confidences(conf, np.ones((3, n)), MACS)
    assert exit_scores(val)[0].min() == 1.0
    ev = BudgetedEvaluator(val, test)
    pt = ev.point(0.05)  # n_1 = floor(4 * 0.95) = 3 >= 1: ties at 1.0 take everyone
    assert pt.thresholds[0] == 1.0
    assert pt.val_exit_fractions.tolist() == [1, 0, 0] and pt.exit_fractions.tolist() == [1, 0, 0]
    pt = ev.point(1.9)  # q = (.154, .292, .554): n_1 = 0 -> theta_1 = inf; n_2 = 1 takes everyone
    assert pt.thresholds.tolist() == [math.inf, 1.0, -math.inf]
    assert pt.exit_fractions.tolist() == [0, 1, 0]
    assert pt.avg_macs == 20.0 and pt.accuracy == 100.0


def test_ties_let_more_than_n_k_leave_and_too_few_remaining_gives_inf():
    conf = np.array([[0.9, 0.8, 0.8, 0.8, 0.1, 0.1],
                     [0.5, 0.5, 0.5, 0.5, 0.5, 0.5],
                     [0.0] * 6])
    q = np.array([2 / 6, 3 / 6, 1 / 6])  # n_1 = 2, n_2 = 3
    theta = find_thresholds(conf, q)
    # theta_1 = 0.8 (2nd most confident): 4 images leave, 2 remain < n_2 = 3 -> theta_2 = inf
    assert theta.tolist() == [0.8, math.inf, -math.inf]
    assert np.bincount(assign_exits(conf, theta), minlength=3).tolist() == [4, 0, 2]
    # >= on the test split: a confidence equal to the threshold leaves
    assert assign_exits(np.array([[0.8, 0.79], [0.0, 0.0], [0.0, 0.0]]), theta).tolist() == [0, 2]


def test_confidence_measures_values():
    probs = np.array([[[0.7, 0.2, 0.1]]])
    pr = Predictions(logits=np.log(probs), labels=np.array([0]), exit_macs=np.array([1.0]),
                     sample_ids=np.array([0]))
    assert exit_scores(pr, "max_prob")[0][0, 0] == pytest.approx(0.7)
    assert exit_scores(pr, "margin")[0][0, 0] == pytest.approx(0.5)
    ent = 0.7 * np.log(0.7) + 0.2 * np.log(0.2) + 0.1 * np.log(0.1)
    assert exit_scores(pr, "entropy")[0][0, 0] == pytest.approx(ent)
    with pytest.raises(DataError):
        exit_scores(pr, "nope")


@pytest.mark.parametrize("measure, val_accuracy", [("max_prob", 100.0), ("entropy", 100.0),
                                                   ("margin", 50.0)])
def test_confidence_option_changes_who_leaves(measure, val_accuracy):
    # A = [.5, .45, .05] (max .5, margin .05, -H = -.856); B = [.48, .26, .26] (.48, .22, -1.053)
    p1 = np.array([[0.5, 0.45, 0.05], [0.26, 0.48, 0.26]])  # exit 1: A right, B wrong (label 0)
    p2 = np.array([[0.9, 0.05, 0.05], [0.9, 0.05, 0.05]])   # exit 2: both right
    logits = np.log(np.stack([p1, p2]))
    pr = Predictions(logits=logits, labels=np.array([0, 0]), exit_macs=np.array([1.0, 2.0]),
                     sample_ids=np.array([0, 1]))
    pt = BudgetedEvaluator(pr, pr, confidence=measure).point(0.5)  # n_1 = floor(2 * 2/3) = 1
    assert pt.val_exit_fractions.tolist() == [0.5, 0.5]
    assert pt.val_accuracy == pytest.approx(val_accuracy)
    assert pt.confidence == measure


def test_envelope_picks_best_on_validation():
    def pt(vcost, vacc, tcost, tacc, p=0.5):
        z = np.zeros(2)
        return BudgetedPoint(p=p, thresholds=z, accuracy=tacc, avg_macs=tcost, exit_fractions=z,
                             val_accuracy=vacc, val_avg_macs=vcost, val_exit_fractions=z,
                             exit_macs=np.array([1.0, 2.0]))
    pts = {"A": [pt(10, 50, 11, 51), pt(20, 60, 21, 61)],
           "B": [pt(15, 70, 16, 69), pt(30, 65, 31, 66)]}
    env = envelope(pts)
    assert [e.budget for e in env] == [10, 15, 20, 30]
    assert [e.model for e in env] == ["A", "B", "B", "B"]
    assert [e.accuracy for e in env] == [51, 69, 69, 69]
    assert all(e.curve == "envelope" for e in env)
    env = envelope(pts, budgets=[5, 25])
    assert [(e.budget, e.model, e.val_avg_macs) for e in env] == [(25, "B", 15)]


def test_tables_long_format():
    pts = hand_evaluator().sweep()
    t = budgeted_table(pts)
    assert list(t.columns) == ["point", "model", "curve", "confidence", "p", "budget", "accuracy",
                               "avg_macs", "val_accuracy", "val_avg_macs"]
    assert len(t) == 39 and t["p"].tolist() == pytest.approx(sweep_ps().tolist())
    x = budgeted_exit_table(pts)
    assert len(x) == 39 * 2 * 3
    sums = x.groupby(["point", "split"])["fraction"].sum()
    assert np.allclose(sums, 1.0)
    first = x[(x.point == 9) & (x.split == "val")]  # p = 0.5
    assert first["fraction"].tolist() == pytest.approx([0.5, 0.25, 0.25])


# ---- CLI -------------------------------------------------------------------------------------


def _write(tmp_path, name, preds):
    path = tmp_path / name
    save(path, preds)
    return str(path)


def _pair_files(tmp_path, k=3, n_val=60, n_test=40, seed=0):
    rng = np.random.default_rng(seed)
    val, test = make_predictions(rng, k, n_val, 5), make_predictions(rng, k, n_test, 5)
    test.exit_macs = val.exit_macs.copy()
    return _write(tmp_path, "val.npz", val), _write(tmp_path, "test.npz", test), val, test


KEYS = {"p", "avg_macs", "accuracy", "exit_fractions", "thresholds", "val_accuracy", "val_avg_macs",
        "val_exit_fractions"}


def test_cli_json_shape(tmp_path, capsys):
    v, t, _, _ = _pair_files(tmp_path)
    assert main(["budgeted", "--val", v, "--test", t, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert isinstance(out, list) and len(out) == 39
    for obj in out:
        assert set(obj) == KEYS
        assert len(obj["exit_fractions"]) == 3 and sum(obj["exit_fractions"]) == pytest.approx(1)
        assert sum(obj["val_exit_fractions"]) == pytest.approx(1)
        assert obj["thresholds"][-1] == "-inf"
        assert all(isinstance(x, float) or x == "inf" for x in obj["thresholds"][:-1])
        assert 0 <= obj["accuracy"] <= 100
    assert [o["p"] for o in out] == pytest.approx([j / 20 for j in range(1, 40)])


def test_cli_budget_and_csv(tmp_path, capsys):
    v, t, val, _ = _pair_files(tmp_path)
    b = float(val.exit_macs.mean())
    csv, xcsv = tmp_path / "b.csv", tmp_path / "x.csv"
    assert main(["budgeted", "--val", v, "--test", t, "--budget", str(b), "--json",
                 "--csv", str(csv), "--exits-csv", str(xcsv)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out) == 1 and set(out[0]) == KEYS | {"budget"}
    assert out[0]["val_avg_macs"] <= b and out[0]["budget"] == b
    table = pd.read_csv(csv)
    assert table["curve"].tolist() == ["budget"] and table["val_avg_macs"].iloc[0] <= b
    assert len(pd.read_csv(xcsv)) == 2 * 3


def test_cli_envelope(tmp_path, capsys):
    v, t, _, _ = _pair_files(tmp_path)
    rng = np.random.default_rng(5)
    v2, t2 = make_predictions(rng, 2, 60, 5), make_predictions(rng, 2, 40, 5)
    t2.exit_macs = v2.exit_macs
    v2p, t2p = _write(tmp_path, "v2.npz", v2), _write(tmp_path, "t2.npz", t2)
    assert main(["budgeted", "--model", "a", v, t, "--model", "b", v2p, t2p, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    sweeps = [o for o in out if o["curve"] == "sweep"]
    env = [o for o in out if o["curve"] == "envelope"]
    assert len(sweeps) == 78 and {o["model"] for o in sweeps} == {"a", "b"}
    assert env and all(o["val_avg_macs"] <= o["budget"] for o in env)
    # the envelope's validation accuracy never falls as the budget grows
    assert np.all(np.diff([o["val_accuracy"] for o in env]) >= 0)


def _expect_one_line_error(capsys, argv, *needles):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    for needle in needles:
        assert needle in err
    return err


def test_cli_rejects_mismatched_files(tmp_path, capsys):
    v, t, val, test = _pair_files(tmp_path)
    rng = np.random.default_rng(3)
    other_exits = _write(tmp_path, "four.npz", make_predictions(rng, 4, 40, 5))
    _expect_one_line_error(capsys, ["budgeted", "--val", v, "--test", other_exits], "exits", v, other_exits)
    other_classes = make_predictions(rng, 3, 40, 7)
    other_classes.exit_macs = val.exit_macs
    oc = _write(tmp_path, "classes.npz", other_classes)
    _expect_one_line_error(capsys, ["budgeted", "--val", v, "--test", oc], "classes", oc)
    bad = Predictions(test.logits, test.labels, np.array([3.0, 2.0, 5.0]), test.sample_ids)
    bp = _write(tmp_path, "bad.npz", bad)
    _expect_one_line_error(capsys, ["budgeted", "--val", v, "--test", bp], "strictly increasing", bp)
    diff = Predictions(test.logits, test.labels, val.exit_macs * 2, test.sample_ids)
    dp = _write(tmp_path, "diff.npz", diff)
    _expect_one_line_error(capsys, ["budgeted", "--val", v, "--test", dp], "exit_macs", v, dp)
    _expect_one_line_error(capsys, ["budgeted", "--val", v, "--test", t, "--budget", "1"], "below")
    _expect_one_line_error(capsys, ["budgeted", "--val", v], "--test")
