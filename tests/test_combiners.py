"""Exit combiners, per-exit temperature scaling and their metrics
(msdnet.evaluation.analysis.combiners), the tables behind their figures and `msdnet combine`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from msdnet.cli import main
from msdnet.core.errors import DataError
from msdnet.evaluation import tables as T
from msdnet.evaluation.analysis import combiners as cb
from msdnet.evaluation.analysis.budgeted import BudgetedEvaluator
from msdnet.evaluation.analysis.synthetic import make_predictions
from msdnet.evaluation.tables import Sources
from msdnet.inference.predictions import Predictions, load, save


def softmax(z):
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# -- the combiners on hand-made logits -----------------------------------------------------------

Z = np.array([[[2.0, 1.0, -1.0]],          # exit 1
              [[1.0, 3.0, 2.0]],           # exit 2
              [[-1.0, 0.5, -2.0]]])        # exit 3


def test_softmax_is_each_exit_alone():
    assert np.allclose(cb.combine(Z, "softmax"), softmax(Z))


def test_mean_is_the_running_mean_of_the_softmaxes():
    s = softmax(Z)
    p = cb.combine(Z, "mean")
    assert np.allclose(p[0], s[0])
    assert np.allclose(p[1], (s[0] + s[1]) / 2)
    assert np.allclose(p[2], (s[0] + s[1] + s[2]) / 3)


def test_caching_keeps_the_most_confident_exit_so_far_ties_to_the_later():
    # exit 1 very confident, exit 2 less, exit 3 exactly as confident as exit 1 (the other
    # class; two classes so that both softmaxes round alike)
    z = np.array([[[5.0, 0.0]], [[0.0, 1.0]], [[0.0, 5.0]]])
    s = softmax(z)
    p = cb.combine(z, "caching")
    assert np.allclose(p[0], s[0]) and np.allclose(p[1], s[0])       # exit 2 is less confident
    assert np.allclose(p[2], s[2])                                     # a tie goes to exit 3
    s = softmax(Z)                                                     # max: 0.705, 0.665, 0.766
    assert np.allclose(cb.combine(Z, "caching"), s[[0, 0, 2]])


def test_product_of_relu_logits_normalised_with_fallback():
    p = cb.combine(Z, "product")
    assert np.allclose(p[0], [2 / 3, 1 / 3, 0])                        # relu(2, 1, -1)
    assert np.allclose(p[1], [2 / 5, 3 / 5, 0])                        # (2*1, 1*3, 0*2)
    assert np.allclose(p[2], [0, 1, 0])                                # (2*1*0, 3*0.5, 0): class 1 only
    # every class at 0 at some exit: softmax of that exit, and of every later one
    z = np.array([[[1.0, -1.0]], [[-1.0, 1.0]], [[2.0, 3.0]]])
    p = cb.combine(z, "product")
    assert np.allclose(p[0], [1, 0]) and np.allclose(p[1], softmax(z[1])) and np.allclose(p[2], softmax(z[2]))


def test_product_exponents_weigh_the_exits():
    p = cb.combine(Z[:2], "product", exponents=[2.0, 1.0])
    assert np.allclose(p[1], [4 / 7, 3 / 7, 0])                        # (2^2*1, 1^2*3, 0)
    with pytest.raises(DataError, match="exponents"):
        cb.combine(Z, "product", exponents=[1.0, 1.0])


def test_temperatures_divide_each_exits_logits_before_combining():
    t = np.array([2.0, 0.5, 1.0])
    for name in cb.COMBINERS:
        assert np.allclose(cb.combine(Z, name, temperatures=t), cb.combine(Z / t[:, None, None], name))
    # a product of experts is invariant to temperatures (the factor cancels over classes)
    assert np.allclose(cb.combine(Z[:2], "product", temperatures=[3.0, 0.2]), cb.combine(Z[:2], "product"))
    with pytest.raises(DataError, match="temperatures"):
        cb.combine(Z, "mean", temperatures=[1.0, 0.0, 1.0])


def test_unknown_combiner_is_one_line():
    with pytest.raises(DataError, match="softmax, mean, caching, product"):
        cb.combine(Z, "vote")


@given(arrays(np.float64, (4, 6, 5), elements=st.floats(-8, 8)))
@settings(max_examples=60, deadline=None)
def test_every_combiner_gives_distributions(z):
    for name in cb.COMBINERS:
        p = cb.combine(z, name)
        assert p.shape == z.shape and np.all(p >= 0) and np.allclose(p.sum(axis=2), 1.0)


# -- product: conditional monotonicity ----------------------------------------------------------

positive_logits = arrays(np.float64, (5, 8, 4), elements=st.floats(-6, 6))


@given(positive_logits, st.integers(0, 3))
@settings(max_examples=100, deadline=None)
def test_product_is_monotone_where_the_true_class_keeps_the_largest_positive_logit(z, y):
    """p_k(y) never falls from exit k to k+1 when the true class keeps a positive logit at every
    exit up to k+1 and has the largest logit at exit k+1 (Jazbec et al., 2023); no other
    combiner is monotone under this condition (the softmax of a later exit may be less sure)."""
    z = z.copy()
    z[:, :, y] = np.abs(z[:, :, y]) + 0.1                        # positive at every exit
    p = cb.combine(z, "product")[:, :, y]
    largest = z[:, :, y] >= z.max(axis=2)                        # [E, N]
    for k in range(z.shape[0] - 1):
        keep = largest[k + 1]
        assert np.all(p[k + 1][keep] >= p[k][keep] - 1e-12)
    # true class positive and the largest at every exit: non-decreasing, no drop at all
    always = largest[1:].all(axis=0)
    assert np.all(cb.largest_drop(p)[always] <= 1e-12)


@given(positive_logits, st.integers(0, 3))
@settings(max_examples=100, deadline=None)
def test_product_never_excludes_a_true_class_with_positive_logits_and_only_shrinks_its_support(z, y):
    z = z.copy()
    z[:, :, y] = np.abs(z[:, :, y]) + 0.1
    p = cb.combine(z, "product")
    assert np.all(p[:, :, y] > 0)                                # never excluded, never a fallback
    support = p > 0
    assert not np.any(support[1:] & ~support[:-1])               # an excluded class stays excluded


def test_a_positive_true_logit_alone_does_not_make_product_monotone():
    """The true class keeps a positive logit, but another class grows faster at exit 2."""
    z = np.array([[[1.0, 1.0]], [[1.0, 10.0]]])
    p = cb.combine(z, "product")[:, 0, 0]
    assert p[0] == pytest.approx(0.5) and p[1] == pytest.approx(1 / 11)


def test_largest_drop_and_decrease_percent():
    p = np.array([[0.9, 0.2, 0.5, 0.3],
                  [0.5, 0.4, 0.5, 0.3],
                  [0.8, 0.1, 0.45, 0.31]])
    assert np.allclose(cb.largest_drop(p), [0.4, 0.3, 0.05, 0.0])
    d = cb.decrease_percent(p, (0.01, 0.1, 0.35))
    assert d == {0.01: 75.0, 0.1: 50.0, 0.35: 25.0}
    assert np.allclose(cb.largest_drop(p[:1]), 0.0)


# -- temperature scaling ------------------------------------------------------------------------

def test_fit_temperature_minimises_the_nll():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 6, 800)
    z = rng.normal(size=(800, 6)) * 3
    z[np.arange(800), y] += 2.0
    t = cb.fit_temperature(z, y)

    def nll(tt):
        return -np.log(softmax(z / tt)[np.arange(800), y]).mean()
    grid = np.exp(np.linspace(np.log(0.05), np.log(20), 4001))
    assert t == pytest.approx(grid[np.argmin([nll(g) for g in grid])], rel=2e-3)
    assert cb.fit_temperature(z * 4, y) == pytest.approx(4 * t, rel=1e-6)
    # separable: the NLL falls as T -> 0 (the lower bound)
    assert cb.fit_temperature(np.eye(3)[[0, 1, 2]] * 5, np.array([0, 1, 2])) == cb.T_MIN


@pytest.fixture
def run_dir(tmp_path):
    rng = np.random.default_rng(0)
    d = tmp_path / "pred" / "m" / "seed0"
    for split, n, start in (("val", 300, 0), ("test", 400, 1000)):
        p = make_predictions(rng, n_exits=4, n_images=n, n_classes=10,
                             meta={"split": split, "config_hash": "h", "checkpoint_sha256": "s",
                                   "dataset": "x"})
        p.sample_ids = np.arange(start, start + n)
        p.exit_macs = np.array([1e6, 2e6, 4e6, 6e6])
        p.meta["exit_macs_lazy"] = (p.exit_macs * np.array([1.0, 0.8, 0.7, 0.7])).tolist()
        save(d / f"{split}.npz", p)
    return d


def _replace_test_logits(run_dir, factor=10.0, flip=True):
    """A test file whose logits would change any fit that read them."""
    test = load(run_dir / "test.npz")
    z = test.logits * factor
    if flip:
        z = z[:, :, ::-1]
    save(run_dir / "test.npz", Predictions(logits=np.ascontiguousarray(z), labels=test.labels,
                                           exit_macs=test.exit_macs, sample_ids=test.sample_ids,
                                           meta=test.meta, exit_params=test.exit_params))


def test_temperatures_are_fitted_on_the_validation_split_only(run_dir, monkeypatch, capsys):
    src = Sources({"m": {0: run_dir}})
    before = T.calibration_rows({"M": "m"}, src)
    val = load(run_dir / "val.npz")
    assert np.allclose(before["temperature"], cb.fit_temperatures(val))
    assert main(["combine", "--test", str(run_dir / "test.npz"), "--val", str(run_dir / "val.npz"),
                 "--combiner", "mean", "--calibrate", "--json"]) == 0
    cli_before = json.loads(capsys.readouterr().out)["temperatures"]
    # every fit sees only validation logits
    seen = []
    real = cb.fit_temperature
    monkeypatch.setattr(cb, "fit_temperature", lambda z, y, **k: seen.append((z, y)) or real(z, y, **k))
    _replace_test_logits(run_dir)
    after = T.calibration_rows({"M": "m"}, src)
    assert seen and all(z.shape[0] == len(val) and np.array_equal(y, val.labels) for z, y in seen)
    assert all(any(np.array_equal(z, val.logits[k]) for k in range(val.num_exits)) for z, _ in seen)
    assert np.array_equal(before["temperature"], after["temperature"])
    assert not np.allclose(before["ece_percent"], after["ece_percent"])        # the test file did change
    assert main(["combine", "--test", str(run_dir / "test.npz"), "--val", str(run_dir / "val.npz"),
                 "--combiner", "mean", "--calibrate", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["temperatures"] == cli_before


# -- metrics against a direct computation -------------------------------------------------------

def direct_metrics(path, combiner, temps=None):
    """Accuracy, ECE and NLL per exit and the decrease %, computed image by image."""
    pr = load(path)
    z = pr.logits.astype(np.float64)
    if temps is not None:
        z = z / np.asarray(temps)[:, None, None]
    e, n, c = z.shape
    s = softmax(z)
    acc, ece, nll = [], [], []
    ptrue = np.zeros((e, n))
    for k in range(e):
        bins = [[] for _ in range(15)]
        right, loss = 0, 0.0
        for i in range(n):
            if combiner == "softmax":
                p = s[k, i]
            elif combiner == "mean":
                p = s[:k + 1, i].mean(axis=0)
            elif combiner == "caching":
                j = max(range(k + 1), key=lambda j: (s[j, i].max(), j))
                p = s[j, i]
            else:
                q = np.prod(np.maximum(z[:k + 1, i], 0), axis=0)
                p = q / q.sum() if q.sum() > 0 else s[k, i]
            y = pr.labels[i]
            ok = int(np.argmax(p) == y)
            right += ok
            loss += -np.log(max(p[y], 1e-12))
            ptrue[k, i] = p[y]
            b = min(14, max(0, int(np.ceil(p.max() * 15)) - 1))
            bins[b].append((p.max(), ok))
        acc.append(100 * right / n)
        nll.append(loss / n)
        ece.append(100 * sum(len(b) / n * abs(np.mean([o for _, o in b]) - np.mean([q for q, _ in b]))
                             for b in bins if b))
    drops = [max([ptrue[a, i] - ptrue[b, i] for a in range(e) for b in range(a + 1, e)] + [0])
             for i in range(n)]
    dec = {eps: 100 * np.mean(np.array(drops) > eps) for eps in cb.EPSILONS}
    return np.array(acc), np.array(ece), np.array(nll), dec


@pytest.mark.parametrize("combiner", cb.COMBINERS)
@pytest.mark.parametrize("calibrated", [False, True])
def test_metrics_match_a_direct_computation(run_dir, combiner, calibrated):
    temps = cb.fit_temperatures(load(run_dir / "val.npz")) if calibrated else None
    m = cb.exit_metrics(load(run_dir / "test.npz"), combiner, temps)
    acc, ece, nll, dec = direct_metrics(run_dir / "test.npz", combiner, temps)
    assert np.allclose(m.accuracy, acc) and np.allclose(m.ece_percent, ece) and np.allclose(m.nll, nll)
    assert m.decrease_percent == pytest.approx(dec)


def test_metrics_are_the_same_in_chunks(run_dir, monkeypatch):
    whole = cb.exit_metrics(load(run_dir / "test.npz"), "caching")
    monkeypatch.setattr(cb, "_CHUNK_ELEMENTS", 37)
    parts = cb.exit_metrics(load(run_dir / "test.npz"), "caching")
    for a in ("accuracy", "ece_percent", "nll", "bins"):
        assert np.allclose(getattr(whole, a), getattr(parts, a))
    assert whole.decrease_percent == parts.decrease_percent


# -- the tables ---------------------------------------------------------------------------------

def test_tables_have_exactly_the_documented_columns(run_dir):
    src = Sources({"m": {0: run_dir}})
    comb = T.combiners_rows({"MSDNet": "m"}, src)
    assert list(comb.columns) == ["model", "seed", "combiner", "calibrated", "exit", "macs",
                                  "accuracy", "ece_percent", "nll"]
    assert len(comb) == 4 * 2 * 4 and set(comb["combiner"]) == set(cb.COMBINERS)
    mono = T.monotonicity_rows({"MSDNet": "m"}, src)
    assert list(mono.columns) == ["model", "seed", "combiner", "calibrated", "epsilon", "decrease_percent"]
    assert sorted(set(mono["epsilon"])) == [0.01, 0.05, 0.1, 0.2, 0.5]
    cal = T.calibration_rows({"MSDNet": "m"}, src)
    assert list(cal.columns) == ["model", "seed", "exit", "macs", "temperature", "ece_percent",
                                 "ece_percent_calibrated", "nll", "nll_calibrated"]
    bud = T.budgeted_combiners_rows({"MSDNet": "m"}, src)
    assert list(bud.columns) == T.BUDGETED_COLUMNS + ["combiner"]
    # the paper's softmax row of the anytime table is the anytime figure's; calibration agrees
    anytime = T.anytime_rows({"MSDNet": "m"}, src)
    soft = comb[(comb["combiner"] == "softmax") & ~comb["calibrated"]]
    assert np.allclose(soft["accuracy"], anytime["accuracy"]) and np.allclose(soft["macs"], anytime["macs"])
    assert np.allclose(soft["ece_percent"], cal["ece_percent"])
    # temperatures never change the softmax's predictions
    assert np.allclose(comb[(comb["combiner"] == "softmax") & comb["calibrated"]]["accuracy"],
                       anytime["accuracy"])
    rel = T.reliability_rows({"MSDNet": "m"}, src)
    assert set(rel["exit"]) == {1, 4} and rel.groupby(["exit", "calibrated"])["count"].sum().eq(400).all()


def test_budgeted_softmax_is_the_papers_curve_and_other_combiners_move_it(run_dir):
    src = Sources({"m": {0: run_dir}})
    bud = T.budgeted_combiners_rows({"MSDNet": "m"}, src)
    paper = T.dynamic_rows({"MSDNet": ["m"]}, src)
    soft = bud[bud["combiner"] == "softmax"].reset_index(drop=True)
    for col in ("p", "avg_macs", "accuracy", "val_avg_macs", "val_accuracy"):
        assert np.array_equal(soft[col].to_numpy(), paper[col].to_numpy()), col
    mean = bud[bud["combiner"] == "mean"].reset_index(drop=True)
    assert not np.allclose(mean["accuracy"], soft["accuracy"])


def _binary(rng, n, split, start):
    y = rng.integers(0, 2, n)
    z = rng.normal(size=(3, n, 2)) * 2
    z[:, np.arange(n), y] += np.linspace(0.5, 2, 3)[:, None]
    return Predictions(logits=z.astype(np.float32), labels=y, exit_macs=np.array([1.0, 2.0, 3.0]),
                       sample_ids=np.arange(start, start + n), meta={"split": split})


def test_temperature_alone_keeps_a_budgeted_curve_when_it_keeps_the_ranking():
    """Two classes: the max probability is a monotone function of |z1 - z2| / T, so per-exit
    temperatures keep every exit's ranking, hence its quantile thresholds and the curve."""
    rng = np.random.default_rng(3)
    val, test = _binary(rng, 500, "val", 0), _binary(rng, 400, "test", 1000)
    temps = [3.0, 0.4, 1.7]
    plain = BudgetedEvaluator(val, test).sweep()
    scaled = BudgetedEvaluator(cb.combined_predictions(val, "softmax", temps),
                               cb.combined_predictions(test, "softmax", temps)).sweep()
    for a, b in zip(plain, scaled):
        assert a.accuracy == b.accuracy and a.avg_macs == b.avg_macs
        assert np.array_equal(a.exit_fractions, b.exit_fractions)


def test_with_more_classes_a_temperature_can_reorder_confidences():
    """Why the budgeted-combiners table has no temperature column beside the combiner, and why
    docs/method.md says the curve moves only where the ranking does: with 3 classes, the max
    softmax of two images can swap order under one temperature."""
    a, b = np.array([2.0, 0.0, 0.0]), np.array([3.0, 2.5, -20.0])
    assert softmax(a).max() > softmax(b).max()
    assert softmax(a / 10).max() < softmax(b / 10).max()


# -- the command --------------------------------------------------------------------------------

def test_combine_command_json_matches_the_metrics(run_dir, capsys):
    assert main(["combine", "--test", str(run_dir / "test.npz"), "--combiner", "product", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    m = cb.exit_metrics(load(run_dir / "test.npz"), "product")
    assert out["combiner"] == "product" and out["calibrated"] is False and out["temperatures"] is None
    assert [e["exit"] for e in out["exits"]] == [1, 2, 3, 4]
    assert np.allclose([e["accuracy"] for e in out["exits"]], m.accuracy)
    assert np.allclose([e["ece_percent"] for e in out["exits"]], m.ece_percent)
    assert [d["epsilon"] for d in out["monotonicity"]] == list(cb.EPSILONS)
    assert main(["combine", "--test", str(run_dir / "test.npz"), "--combiner", "mean"]) == 0
    assert "ece_percent" in capsys.readouterr().out


def test_combine_calibrate_needs_val_and_refuses_a_swapped_pair(run_dir, capsys):
    assert main(["combine", "--test", str(run_dir / "test.npz"), "--combiner", "mean", "--calibrate"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--val" in err
    assert main(["combine", "--test", str(run_dir / "val.npz"), "--val", str(run_dir / "test.npz"),
                 "--combiner", "mean", "--calibrate"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


# -- the figures --------------------------------------------------------------------------------

def test_the_four_figures_draw_their_tables(run_dir):
    from msdnet.figures import combiners as F
    from msdnet.figures.registry import FIGURES, resolve

    src = Sources({"m": {0: run_dir}})
    for fid in ("anytime-combiners", "monotonicity", "calibration", "budgeted-combiners"):
        spec = FIGURES[fid]
        assert not spec.macs_axis                        # the paper has no points to draw beside them
        tables = {t.name: resolve(t.build)({"MSDNet": "m"}, src) for t in spec.tables}
        fig = resolve(spec.draw)(tables)
        assert fig.axes
    fig = F.anytime_combiners_figure(T.combiners_rows({"MSDNet": "m"}, src))
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["as trained", "temperature-scaled per exit"]
    for ax in panels:
        assert [ln.get_label() for ln in ax.get_lines() if not ln.get_label().startswith("_")] == \
            list(cb.COMBINERS)
    # several models: one curve per model and combiner
    two = T.budgeted_combiners_rows({"A": "m", "B": "m"}, src)
    fig = F.budgeted_combiners_figure(two)
    labels = {ln.get_label() for ln in fig.axes[0].get_lines() if not ln.get_label().startswith("_")}
    assert labels == {f"{m}: {c}" for m in "AB" for c in cb.COMBINERS}


def test_a_figure_names_the_missing_column(run_dir):
    from msdnet.figures import combiners as F

    df = T.monotonicity_rows({"MSDNet": "m"}, Sources({"m": {0: run_dir}})).drop(columns=["epsilon"])
    with pytest.raises(DataError, match="epsilon"):
        F.monotonicity_figure(df)
