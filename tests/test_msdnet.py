"""MSDNet: structure, forward over every registered config, exit-by-exit and lazy evaluation."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from msdnet.core.config import load_yaml
from msdnet.models.cost import count_costs
from msdnet.core.errors import ConfigError
from msdnet.models import build, build_from_file
from msdnet.models.msdnet import MSDNetConfig, layer_plan

from conftest import REPO, TINY_MSDNET

CONFIGS = sorted((REPO / "config" / "models").glob("*.yaml"))
MSDNET_CONFIGS = [p for p in CONFIGS if load_yaml(p).get("arch") == "msdnet"]
BIG_INPUT = 64 * 64  # configs with larger inputs (ImageNet) are checked with batch size 1


@pytest.mark.parametrize("path", MSDNET_CONFIGS, ids=lambda p: p.stem)
def test_every_msdnet_config_builds_and_runs(path: Path):
    cfg = load_yaml(path)
    model = build_from_file(path).eval()
    c, h, w = model.input_size
    assert list(model.input_size) == cfg["input_size"]
    batch = 1 if h * w > BIG_INPUT else 2
    with torch.no_grad():
        outs = model(torch.randn(batch, c, h, w))
    assert len(outs) == model.num_exits >= 1
    for out in outs:
        assert out.shape == (batch, cfg["num_classes"])
        assert torch.isfinite(out).all()


@pytest.mark.parametrize("path", [p for p in MSDNET_CONFIGS if "imagenet" not in p.stem], ids=lambda p: p.stem)
def test_msdnet_exit_count_is_blocks(path: Path):
    cfg = load_yaml(path)
    assert build_from_file(path).num_exits == cfg["n_blocks"]


def test_paper_cifar100_anytime_layout():
    cfg = MSDNetConfig(**{k: v for k, v in load_yaml(REPO / "config/models/msdnet-anytime-cifar100.yaml").items()
                          if k != "arch"})
    assert cfg.steps == [4, 2, 2, 2, 2, 2, 2]
    plan = layer_plan(cfg)
    msdn = [s for s in plan if s.kind == "msdn"]
    assert len(msdn) == 16
    # prune max with L = 16, S = 3: interval 6; the finest scale goes after layer 7, the next after 13
    assert [(s.in_count, s.out_count) for s in msdn][:8] == [(3, 3)] * 6 + [(3, 2), (2, 2)]
    assert [(s.in_count, s.out_count) for s in msdn][12:14] == [(2, 1), (1, 1)]
    transitions = [s for s in plan if s.kind == "transition"]
    assert len(transitions) == 2
    assert transitions[0].n_in == 16 + 7 * 6 and transitions[0].n_out == math.floor(0.5 * (16 + 7 * 6))


def test_lin_grow_steps():
    cfg = MSDNetConfig(num_classes=10, input_size=[3, 32, 32], n_blocks=4, step_mode="lin_grow", step=1, base=1)
    assert cfg.steps == [1, 2, 3, 4] and sum(cfg.steps) == 10
    cfg8 = MSDNetConfig(num_classes=10, input_size=[3, 32, 32], n_blocks=8, step_mode="lin_grow", step=1, base=1)
    assert sum(cfg8.steps) == 36


def test_prune_min_transitions_at_thirds():
    cfg = MSDNetConfig(num_classes=10, input_size=[3, 32, 32], n_blocks=3, step=3, base=3, prune="min")
    plan = layer_plan(cfg)
    layer_no, where = 0, []
    for spec in plan:
        if spec.kind == "msdn":
            layer_no += 1
        else:
            where.append(layer_no)
    assert where == [3, 6]
    outs = [s.out_count for s in plan if s.kind == "msdn"]
    assert outs == [3, 3, 3, 3, 3, 3, 3, 2, 1]


@pytest.mark.parametrize("lazy", [False, True])
def test_exit_by_exit_equals_forward_and_select(lazy: bool):
    torch.manual_seed(0)
    model = build_from_file(REPO / "config/models/msdnet-budgeted-b4-cifar10.yaml").eval()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        full = model(x)
        state = model.begin(x, lazy=lazy)
        first = model.advance(state)
        torch.testing.assert_close(first, full[0])
        keep = torch.tensor([True, False, True, True])
        state = state.select(keep)
        for k in range(1, model.num_exits):
            torch.testing.assert_close(model.advance(state), full[k][keep])
        assert not state.cache["nodes"]          # nothing kept after the last exit
        with pytest.raises(IndexError):
            model.advance(state)


def test_exit_by_exit_never_recomputes():
    model = build_from_file(REPO / "config/models/msdnet-anytime-cifar10.yaml").eval()
    calls = []
    handles = [m.register_forward_hook(lambda m, i, o: calls.append(id(m)))
               for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        model(torch.randn(1, 3, 32, 32))
        n_full = len(calls)
        calls.clear()
        for lazy in (False, True):
            state = model.begin(torch.randn(1, 3, 32, 32), lazy=lazy)
            for _ in range(model.num_exits):
                model.advance(state)
            assert len(calls) == n_full == len(set(calls))
            calls.clear()
    for h in handles:
        h.remove()


def test_lazy_evaluation_defers_but_does_not_change_the_total():
    model = build_from_file(REPO / "config/models/msdnet-anytime-cifar100.yaml")
    eager, lazy = count_costs(model), count_costs(model, lazy=True)
    assert eager[-1].macs == lazy[-1].macs
    assert all(l.macs <= e.macs for l, e in zip(lazy, eager))
    assert lazy[0].macs < eager[0].macs


def _tiny(**kw) -> dict:
    return {**TINY_MSDNET, **kw}


@pytest.mark.parametrize("switch", [{"dense": False}, {"multi_scale": False},
                                    {"intermediate_classifiers": False}, {"exit_blocks": [3]}])
def test_ablation_switches(switch):
    model = build(_tiny(n_blocks=3, **switch)).eval()
    base = build(_tiny(n_blocks=3)).eval()
    outs = model(torch.randn(2, 3, 16, 16))
    assert all(o.shape == (2, 10) for o in outs)
    if "dense" in switch or "multi_scale" in switch:
        assert model.num_exits == 3
        assert sum(p.numel() for p in model.parameters()) != sum(p.numel() for p in base.parameters())
    else:
        assert model.num_exits == 1
    if "multi_scale" in switch:
        assert len(model.first.convs) == 1


def test_no_dense_layer_sees_only_new_features():
    model = build(_tiny(n_blocks=2, dense=False)).eval()
    feats = model.first(torch.randn(1, 3, 16, 16))
    out = model.segments[0][0](feats)
    assert out[0].shape[1] == TINY_MSDNET["growth_rate"] * 1
    assert out[1].shape[1] == TINY_MSDNET["growth_rate"] * 2


def test_paper_init():
    model = build(_tiny(n_channels=16, growth_rate=8))
    conv = model.first.convs[0][0]
    expected = math.sqrt(2.0 / (3 * 3 * conv.out_channels))
    assert abs(conv.weight.std().item() - expected) / expected < 0.25
    assert all(m.bias is None for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            assert torch.all(m.weight == 1) and torch.all(m.bias == 0)
        if isinstance(m, torch.nn.Linear):
            assert torch.all(m.bias == 0)


def test_imagenet_stem_has_bias_and_maxpool():
    cfg = dict(_tiny(input_size=[3, 64, 64], stem="imagenet"))
    model = build(cfg)
    stem = model.first.convs[0]
    assert stem[0].kernel_size == (7, 7) and stem[0].stride == (2, 2) and stem[0].bias is not None
    assert isinstance(stem[3], torch.nn.MaxPool2d)
    assert model(torch.randn(1, 3, 64, 64))[0].shape == (1, 10)


@pytest.mark.parametrize("bad, key", [
    ({"n_blok": 3}, "n_blok"),
    ({"growth_rate": "six"}, "growth_rate"),
    ({"prune": "medium"}, "prune"),
    ({"gr_factor": [1, 2, 4]}, "gr_factor"),       # length differs from bn_factor
    ({"growth_rate": 3, "gr_factor": [1, 3], "bn_factor": [1, 3]}, "growth_rate"),  # odd half width
])
def test_bad_config_names_key_and_file(bad, key):
    with pytest.raises(ConfigError) as err:
        build({**TINY_MSDNET, **bad}, "config/models/x.yaml")
    msg = str(err.value)
    assert "config/models/x.yaml" in msg and key in msg and "\n" not in msg
