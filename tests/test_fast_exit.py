"""The fast early-exit engine (msdnet.inference.fast_exit): buckets, compaction, device confidences, and the
engine (eager on the CPU; CUDA graphs on a GPU) against the reference path (run_early_exit) and
the simulation on recorded logits, image by image, with test_inference.py's tolerance rule.

The CUDA tests at the end run only where a GPU is present (benchmarks/gpu_check.sh):
    pytest -q tests/test_fast_exit.py -k cuda
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from msdnet.evaluation.analysis.budgeted import exit_distribution, find_thresholds
from msdnet.evaluation.analysis.common import CONFIDENCES, confidence_rows, exit_scores
from msdnet.core.config import load_yaml
from msdnet.data import DataConfig, iterate_batches, load_data
from msdnet.inference.fast_exit import (ExitEngine, bucket_sizes, compact, device_confidence, pick_bucket,
                              run_fast_exit)
from msdnet.inference.early_exit import InferenceError, run_early_exit
from msdnet.models import SegmentedMultiExit, build
from msdnet.inference.predict import collect_logits

from conftest import REPO
from test_inference import TINY3, _near, _preds, _quantile_thresholds, _random_msdnet, _simulate

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    root = tmp_path_factory.mktemp("digits")
    return load_data(DataConfig(name="digits", image_size=16, root=str(root), val_size=0.2, test_size=0.2))


def _labelled(xs):
    out, start = [], 0
    for x in xs:
        out.append((x, torch.zeros(len(x), dtype=torch.long), torch.arange(start, start + len(x))))
        start += len(x)
    return out


def _check_against_simulation(model, batches, theta, res, measure="max_prob", max_near=2):
    """res (an engine result) equals the simulation on recorded logits except near-threshold images."""
    sim_exits, sim_preds, conf, labels, ids = _simulate(model, batches, theta, measure)
    near = _near(conf, theta, sim_exits)
    assert near.sum() <= max_near
    ok = ~near
    assert res.sample_ids.tolist() == ids.tolist()
    assert np.array_equal(res.exits[ok], sim_exits[ok])
    assert np.array_equal(res.predictions[ok], sim_preds[ok])
    np.testing.assert_allclose(res.confidences, conf[res.exits, np.arange(ids.size)], rtol=1e-5, atol=1e-7)
    return ok


# --------------------------------------------------------------------------------------------
# Pure parts
# --------------------------------------------------------------------------------------------

def test_bucket_sizes_and_pick():
    assert bucket_sizes(512) == (1, 2, 4, 8, 16, 32, 64, 128, 192, 256, 320, 384, 448, 512)
    assert bucket_sizes(1) == (1,)
    assert bucket_sizes(100, 32) == (1, 2, 4, 8, 16, 32, 64, 96, 100)
    assert bucket_sizes(5, 64) == (1, 2, 4, 5)
    b = bucket_sizes(512)
    assert [pick_bucket(n, b) for n in (1, 3, 64, 65, 129, 500, 512)] == [1, 4, 64, 128, 192, 512, 512]
    for n in range(1, 513):
        p = pick_bucket(n, b)
        assert p >= n and (p < 2 * n or p - n < 64)
    with pytest.raises(InferenceError):
        pick_bucket(513, b)
    with pytest.raises(InferenceError):
        bucket_sizes(0)


def test_compact_is_a_stable_partition():
    gen = torch.Generator().manual_seed(0)
    for n in (1, 2, 7, 64, 333):
        stay = torch.rand(n, generator=gen) < 0.4
        t = torch.randn(n, 3, generator=gen)
        order, count = compact(stay)
        assert int(count) == int(stay.sum())
        assert sorted(order.tolist()) == list(range(n))
        assert torch.equal(t[order][: int(count)], t[stay])            # staying rows, in order
        assert torch.equal(t[order][int(count):], t[~stay])            # then the others, in order
    order, count = compact(torch.zeros(4, dtype=torch.bool))
    assert int(count) == 0 and order.tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize("measure", CONFIDENCES)
def test_device_confidence_equals_host(measure):
    gen = torch.Generator().manual_seed(1)
    for c in (1, 2, 10, 100):
        logits = torch.randn(500, c, generator=gen) * torch.tensor([0.1, 3.0, 30.0, 300.0]).repeat(125)[:, None]
        host = confidence_rows(logits.numpy(), measure)
        dev = device_confidence(logits, measure).numpy()
        assert dev.dtype == np.float64
        np.testing.assert_allclose(dev, host, rtol=0, atol=1e-14)       # an ulp or two at most
        # the decision at a threshold between two confidences is the same
        theta = np.sort(host)[250]
        assert np.array_equal(dev[np.abs(host - theta) > 1e-12] >= theta, host[np.abs(host - theta) > 1e-12] >= theta)


# --------------------------------------------------------------------------------------------
# The engine, eager on the CPU
# --------------------------------------------------------------------------------------------

def test_engine_matches_simulation_and_reference(digits):
    model = _random_msdnet(TINY3)
    val_logits, val_labels, val_ids = collect_logits(model, iterate_batches(digits, "val", 128))
    val_conf, _ = exit_scores(_preds(val_logits, val_labels, val_ids, [1, 2, 3]))
    for lazy in (True, False):
        engine = ExitEngine(model, max_batch=64, lazy=lazy, granularity=16)
        assert engine.buckets == (1, 2, 4, 8, 16, 32, 48, 64) and not engine.graphs
        for p in (0.5, 1.0, 2.0):
            theta = find_thresholds(val_conf, exit_distribution(p, 3))
            batches = list(iterate_batches(digits, "test", 64))          # the last batch is short
            res = engine.run(batches, theta[:-1])
            _check_against_simulation(model, batches, theta, res)
            ref = run_early_exit(model, batches, theta[:-1], lazy=lazy)
            ok = ~_near(*_simulate(model, batches, theta)[2:3], theta, ref.exits)
            assert np.array_equal(res.exits[ok], ref.exits[ok]) and np.array_equal(res.predictions[ok],
                                                                                  ref.predictions[ok])
            assert (res.exit_counts > 0).sum() >= 2
            assert res.exit_macs.tolist() == ref.exit_macs.tolist()
            assert res.expected_macs == int(res.exit_counts @ ref.exit_macs)
            assert ref.measured_macs <= res.executed_macs                # padding is extra work
            assert res.labels.tolist() == ref.labels.tolist()
            n_batches = len(batches)
            assert res.syncs <= 2 * n_batches and res.replays <= 3 * n_batches
            assert res.host_rows == 0


def _families():
    tiny_resnet = {**load_yaml(REPO / "config/models/resnet-mc-digits.yaml"), "input_size": [3, 16, 16]}
    tiny_densenet = {**load_yaml(REPO / "config/models/densenet-mc-digits.yaml"), "input_size": [3, 16, 16]}
    tiny_fractal = {**load_yaml(REPO / "config/models/fractalnet-columns-digits.yaml"), "input_size": [3, 16, 16],
                    "widths": [4, 8, 8]}
    return {"msdnet-2scales": TINY_MSDNET_2, "msdnet-3scales": TINY3, "resnet-mc": tiny_resnet,
            "densenet-mc": tiny_densenet, "fractalnet-columns": tiny_fractal}


TINY_MSDNET_2 = {**TINY3, "n_blocks": 4, "gr_factor": [1, 2], "bn_factor": [1, 2]}


@pytest.mark.parametrize("family", ["msdnet-2scales", "msdnet-3scales", "resnet-mc", "densenet-mc",
                                    "fractalnet-columns"])
@pytest.mark.parametrize("lazy", [True, False])
def test_every_model_family(family, lazy):
    torch.manual_seed(7)
    model = build(_families()[family]).eval()
    scale = 3.0 if family.startswith("fractalnet") else 10.0
    with torch.no_grad():                                  # spread the confidences over (0, 1)
        for mod in model.modules():
            if isinstance(mod, nn.Linear):
                mod.weight.mul_(scale)
    gen = torch.Generator().manual_seed(3)
    xs = [torch.randn(n, 3, 16, 16, generator=gen) for n in (33, 33, 7)]
    batches = _labelled(xs)
    calib = _labelled([torch.randn(100, 3, 16, 16, generator=gen)])     # thresholds from other images
    logits, labels, ids = collect_logits(model, calib)
    conf, _ = exit_scores(_preds(logits, labels, ids, np.arange(1, model.num_exits + 1)))
    theta = _quantile_thresholds(conf, tuple([0.8 / (model.num_exits)] * (model.num_exits - 1)))
    res = run_fast_exit(model, batches, theta, lazy=lazy, granularity=8)
    _check_against_simulation(model, batches, theta, res)
    assert (res.exit_counts > 0).sum() >= 2
    # no op couples the images of a batch: NaN in every padding row changes nothing
    dirty = ExitEngine(model, max_batch=33, lazy=lazy, granularity=8)
    _fill_nan(dirty)
    again = dirty.run(batches, theta)
    assert np.array_equal(again.exits, res.exits) and np.array_equal(again.predictions, res.predictions)
    assert np.array_equal(again.confidences, res.confidences)


def _fill_nan(engine):
    for bufs in engine._bufs:
        for buf in bufs:
            if buf is not None and buf.is_floating_point():
                buf.fill_(float("nan"))
    for buf in engine._logits:
        buf.fill_(float("nan"))


@pytest.mark.parametrize("measure", ["entropy", "margin"])
def test_other_confidence_measures(measure):
    model = _random_msdnet(TINY3, seed=8)
    xs = _labelled([torch.randn(40, 3, 16, 16), torch.randn(9, 3, 16, 16)])
    logits, labels, ids = collect_logits(model, _labelled([torch.randn(60, 3, 16, 16)]))
    conf, _ = exit_scores(_preds(logits, labels, ids, [1, 2, 3]), measure)
    theta = _quantile_thresholds(conf)
    res = run_fast_exit(model, xs, theta, confidence=measure, granularity=8)
    _check_against_simulation(model, xs, theta, res, measure)
    assert (res.exit_counts > 0).all()


def test_padding_never_touches_real_rows():
    """NaN in every padding row and stale buffer: the real rows' results are bit-identical to a
    run on zero-filled buffers, and stage 1's real logits equal an unpadded forward's."""
    model = _random_msdnet(TINY3, seed=9)
    xs = [torch.randn(23, 3, 16, 16), torch.randn(5, 3, 16, 16)]
    conf, _ = exit_scores(_preds(*collect_logits(model, _labelled(xs)), [1, 2, 3]))
    theta = _quantile_thresholds(conf)
    clean = ExitEngine(model, max_batch=32, granularity=32)            # buckets 1, 2, ..., 16, 32
    dirty = ExitEngine(model, max_batch=32, granularity=32)
    _fill_nan(dirty)
    a, b = clean.run(xs, theta), dirty.run(xs, theta)
    assert np.array_equal(a.exits, b.exits) and np.array_equal(a.predictions, b.predictions)
    assert np.array_equal(a.confidences, b.confidences) and np.isfinite(b.confidences).all()
    assert a.executed_macs > a.expected_macs                             # 23 -> 32, 5 -> 8 rows
    # stage 1 at bucket 32 with 9 NaN rows against the model on the 23 images alone
    x = xs[0]
    dirty._bufs[0][0][:23].copy_(x)                                 # the state's x
    dirty._n0.fill_(23)
    with torch.no_grad():
        logits = dirty._stage(0, 32)
        ref = model.advance(model.begin(x, lazy=True))
    assert torch.isnan(logits[23:]).all()
    torch.testing.assert_close(logits[:23], ref, rtol=1e-5, atol=1e-6)


def test_infinite_thresholds():
    model = _random_msdnet(TINY3, seed=1)
    x = torch.randn(40, 3, 16, 16)
    engine = ExitEngine(model, max_batch=40, granularity=16)
    res = engine.run([x], [np.inf, np.inf])
    assert res.exits.tolist() == [2] * 40 and res.syncs == 2 and res.replays == 3
    with torch.no_grad():
        full = model(x)[-1].numpy()
    assert np.array_equal(res.predictions, full.argmax(axis=1))
    res = engine.run([x], [-np.inf, -np.inf, -np.inf])                  # K values ending in -inf
    assert res.exits.tolist() == [0] * 40 and res.replays == 1 and res.syncs == 1
    logits, labels, ids = collect_logits(model, _labelled([x]))
    conf, _ = exit_scores(_preds(logits, labels, ids, [1, 2, 3]))
    np.testing.assert_allclose(res.confidences, conf[0], rtol=0, atol=1e-15)
    assert np.array_equal(res.predictions, logits[0].argmax(axis=1))
    res = engine.run([x], [np.inf, -np.inf])                             # everybody at exit 2
    assert res.exits.tolist() == [1] * 40 and res.replays == 2


def test_confidence_equal_to_threshold_is_decided_on_the_host():
    """theta_1 = an image's own exit-1 confidence: the device flags the rows near theta and the
    host decides them with analysis.common's function, so >= holds bit for bit."""
    model = _random_msdnet(TINY3, seed=6)
    x = torch.randn(21, 3, 16, 16)
    logits, labels, ids = collect_logits(model, _labelled([x]))
    conf, _ = exit_scores(_preds(logits, labels, ids, [1, 2, 3]))
    j = int(np.argsort(conf[0])[10])
    res = run_fast_exit(model, [x], [conf[0, j], np.inf])
    assert res.host_rows > 0
    assert res.exits[j] == 0 and res.confidences[j] == conf[0, j]
    assert np.array_equal(res.exits == 0, conf[0] >= conf[0, j]) and (res.exits == 0).sum() == 11


@pytest.mark.parametrize("shift", [-1e-13, 1e-13])
def test_host_decision_overrides_a_wrong_device_decision(monkeypatch, shift):
    """A device confidence off by 1e-13 (more than float64 rounding could do) near theta flips the
    device's decision: the host redoes the decision, the record and the compaction, and the
    result equals the reference's."""
    import msdnet.inference.fast_exit as fx
    model = _random_msdnet(TINY3, seed=6)
    gen = torch.Generator().manual_seed(11)
    x = torch.randn(30, 3, 16, 16, generator=gen)
    with torch.no_grad():
        state = model.begin(x, lazy=True)
        first = model.advance(state).numpy()
        second = model.advance(state.select(torch.arange(30))).numpy()
    c1, c2 = confidence_rows(first, "max_prob"), confidence_rows(second, "max_prob")
    # ties at both exits; shifted up (down) the device wrongly keeps (lets go) the tied image,
    # so theta sits just above it for an upward shift
    theta = [np.sort(c1)[15], np.sort(c2)[20]]
    if shift > 0:
        theta = [np.nextafter(t, np.inf) for t in theta]
    real = fx.device_confidence
    monkeypatch.setattr(fx, "device_confidence", lambda lg, m: real(lg, m) * (1 + shift))
    res = ExitEngine(model, max_batch=30, granularity=8).run([x], theta)
    ref = run_early_exit(model, [x], theta, count_macs=False)
    assert res.host_rows > 0
    assert np.array_equal(res.exits, ref.exits) and np.array_equal(res.predictions, ref.predictions)
    assert (res.exit_counts > 0).all()


def test_batch_of_one_and_short_batches():
    model = _random_msdnet(TINY3, seed=3)
    gen = torch.Generator().manual_seed(5)
    xs = [torch.randn(n, 3, 16, 16, generator=gen) for n in (37, 20, 1)]
    calib = [torch.randn(60, 3, 16, 16, generator=gen)]
    conf, _ = exit_scores(_preds(*collect_logits(model, _labelled(calib)), [1, 2, 3]))
    theta = _quantile_thresholds(conf)
    engine = ExitEngine(model, max_batch=37, granularity=16)
    res = engine.run(_labelled(xs), theta)
    _check_against_simulation(model, _labelled(xs), theta, res)
    ones = [x[i:i + 1] for x in xs for i in range(len(x))][:30]
    single = ExitEngine(model, max_batch=1)
    assert single.buckets == (1,)
    res1 = single.run(ones, theta)
    ref1 = run_early_exit(model, ones, theta, count_macs=False)
    assert np.array_equal(res1.exits, ref1.exits) and np.array_equal(res1.predictions, ref1.predictions)
    assert res1.executed_macs == res1.expected_macs                     # no padding at batch 1
    # a batch larger than max_batch is cut into max_batch pieces
    big = engine.run([torch.cat(xs)], theta)
    assert big.n_images == 58 and big.batches == 1
    with pytest.raises(InferenceError):
        engine.run([xs[0]], [0.5])


@pytest.mark.parametrize("family", ["msdnet-3scales", "resnet-mc", "fractalnet-columns"])
def test_stage_code_never_reads_data_on_the_host(family):
    """What a CUDA graph captures must not sync with the host (no .item(), no data-dependent
    shapes): every stage at every bucket runs on the meta device, which has no data to read."""
    model = build(_families()[family]).eval().to("meta")
    for lazy in (True, False):
        engine = ExitEngine(model, max_batch=24, lazy=lazy, granularity=8,
                            exit_macs=range(1, model.num_exits + 1))
        engine.set_thresholds([0.5] * (model.num_exits - 1))
        with torch.no_grad():
            for k in range(model.num_exits):
                for b in engine.buckets:
                    assert engine._stage(k, b).device.type == "meta"


# --------------------------------------------------------------------------------------------
# CUDA graphs (benchmarks/gpu_check.sh)
# --------------------------------------------------------------------------------------------

@pytest.fixture
def strict_fp32():
    """cuDNN convolutions in TF32 (PyTorch's default) round differently per algorithm, and the
    algorithm depends on the batch size; the exactness checks need true float32."""
    before = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


@needs_cuda
@pytest.mark.parametrize("lazy", [True, False])
def test_cuda_graphs_equal_eager_and_simulation(lazy, strict_fp32):
    torch.manual_seed(0)
    model = build(load_yaml(REPO / "config/models/msdnet-anytime-cifar100.yaml")).cuda().eval()
    with torch.no_grad():
        for head in model.heads:
            head.linear.weight.mul_(6.0)
    gen = torch.Generator().manual_seed(2)
    xs = [torch.randn(n, 3, 32, 32, generator=gen).cuda() for n in (256, 256, 77)]
    batches = _labelled(xs)
    calib = _labelled([torch.randn(512, 3, 32, 32, generator=gen).cuda()])
    logits, labels, ids = collect_logits(model, calib)
    conf, _ = exit_scores(_preds(logits, labels, ids, np.arange(1, model.num_exits + 1)))
    theta = find_thresholds(conf, exit_distribution(1.0, model.num_exits))
    graphed = ExitEngine(model, max_batch=256, lazy=lazy)
    eager = ExitEngine(model, max_batch=256, lazy=lazy, graphs=False)
    assert graphed.graphs and not eager.graphs
    g, e = graphed.run(batches, theta), eager.run(batches, theta)
    ok = _check_against_simulation(model, batches, theta, g)
    assert np.array_equal(g.exits[ok], e.exits[ok]) and np.array_equal(g.predictions[ok], e.predictions[ok])
    np.testing.assert_allclose(g.confidences, e.confidences, rtol=1e-5, atol=1e-7)
    ref = run_early_exit(model, batches, theta, lazy=lazy, count_macs=False)
    assert np.array_equal(g.exits[ok], ref.exits[ok]) and np.array_equal(g.predictions[ok], ref.predictions[ok])
    assert (g.exit_counts > 0).sum() >= 4 and g.syncs <= (model.num_exits - 1) * 3
    assert g.replays <= model.num_exits * 3


@needs_cuda
def test_cuda_graphs_batch_of_one_and_new_thresholds(strict_fp32):
    model = _random_msdnet(TINY3, seed=4).cuda()
    x = torch.randn(24, 3, 16, 16).cuda()
    ones = [x[i:i + 1] for i in range(24)]
    engine = ExitEngine(model, max_batch=1)
    assert engine.graphs
    for theta in ([np.inf, np.inf], [-np.inf, np.inf], [0.2, 0.3]):      # no recapture between
        res = engine.run(ones, theta)
        ref = run_early_exit(model, ones, theta, count_macs=False)
        assert np.array_equal(res.exits, ref.exits) and np.array_equal(res.predictions, ref.predictions)
        assert res.syncs <= 2 * 24 and res.executed_macs == res.expected_macs


@needs_cuda
def test_cuda_threshold_tie_goes_to_the_host(strict_fp32):
    """theta_1 = an image's own exit-1 confidence computed on the host from the engine's own
    logits (a first run, nobody leaving): the second run decides the ties on the host."""
    model = _random_msdnet(TINY3, seed=6).cuda()
    x = torch.randn(21, 3, 16, 16).cuda()
    engine = ExitEngine(model, max_batch=21, buckets=[21])
    engine.run([x], [np.inf, np.inf])
    conf = confidence_rows(engine._logits[0][:21].cpu().numpy(), "max_prob")
    j = int(np.argsort(conf)[10])
    res = engine.run([x], [conf[j], np.inf])
    assert res.host_rows > 0 and res.exits[j] == 0 and res.confidences[j] == conf[j]
    assert np.array_equal(res.exits == 0, conf >= conf[j]) and (res.exits == 0).sum() == 11
