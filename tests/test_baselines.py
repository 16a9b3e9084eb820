"""Baselines (ResNet, Wide ResNet, DenseNet, FractalNet, torchvision ImageNet networks) behind the
MultiExitModel interface.

Every config in config/models/ whose arch is a baseline family is tested by existing (timm's
habit: parametrised over what is there): forward shapes, no NaN, exit-by-exit == forward. Then
published parameter counts and MACs, train-only randomness (stochastic depth, drop-path), exit
placement, config errors, torchvision weight loading, and a few SGD steps on the digits data.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from msdnet.core.config import load_yaml
from msdnet.core.errors import ConfigError
from msdnet.models import build, build_from_file, families, parse

BASELINE_ARCHS = {"resnet", "wide_resnet", "densenet", "fractalnet", "torchvision"}
CONFIG_DIR = Path(__file__).resolve().parents[1] / "config" / "models"
CIFAR10 = {"num_classes": 10, "input_size": [3, 32, 32]}


def _baseline_configs() -> list[Path]:
    return [p for p in sorted(CONFIG_DIR.glob("*.yaml"))
            if load_yaml(p).get("arch") in BASELINE_ARCHS]


CONFIGS = _baseline_configs()
DIGITS = [p for p in CONFIGS if p.stem.endswith("-digits")]
# one per family variant; the staircase-*-digits files differ from resnet/densenet-mc only by
# where their single intermediate exit sits
DIGITS_TRAIN = [p for p in DIGITS if "-staircase-" not in p.stem]
# ImageNet networks above ~1 GMAC run at 64x64 here (2 CPU cores); their wiring is the same.
FULL_SIZE_IMAGENET = {"resnet10", "alexnet"}


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_every_family_is_registered_and_has_configs():
    assert BASELINE_ARCHS <= set(families())
    archs = {load_yaml(p)["arch"] for p in CONFIGS}
    assert archs == BASELINE_ARCHS
    assert len(DIGITS) >= 8


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_forward_and_exit_by_exit(path: Path):
    cfg = load_yaml(path)
    torch.manual_seed(0)
    model = build_from_file(path).eval()
    size = list(model.input_size)
    assert size == cfg["input_size"]
    if cfg["arch"] == "torchvision" and cfg["name"] not in FULL_SIZE_IMAGENET:
        size = [3, 64, 64]
    x = torch.randn(2, *size)
    with torch.no_grad():
        outs = model(x)
        assert isinstance(outs, list) and len(outs) == model.num_exits >= 1
        for o in outs:
            assert o.shape == (2, cfg["num_classes"])
            assert torch.isfinite(o).all()
        if model.num_exits > 1 or path in DIGITS:
            # (a single-exit network's advance() is its forward(); the digits ones check that)
            state = model.begin(x)
            stepped = [model.advance(state) for _ in range(model.num_exits)]
            for a, b in zip(outs, stepped):
                torch.testing.assert_close(a, b)
        if model.num_exits > 1:   # dynamic evaluation: drop an image after exit 1, continue
            state = model.begin(x)
            model.advance(state)
            state = state.select(torch.tensor([False, True]))
            rest = [model.advance(state) for _ in range(model.num_exits - 1)]
            for a, b in zip(outs[1:], rest):       # batch size 1 vs 2: other conv kernels
                torch.testing.assert_close(a[1:], b, rtol=1e-4, atol=1e-4)
    if "exits" in cfg or "exit_locations" in cfg:
        expected = len(cfg.get("exits") or cfg.get("exit_locations")) + 1
        assert model.num_exits == expected


# (config, exact count of this implementation, published count in millions, its precision)
PUBLISHED_PARAMS = [
    ("resnet-110-A-c10", dict(arch="resnet", depth=110, **CIFAR10), 1_727_962, 1.7, 1),
    ("resnet-110-A-c100", dict(arch="resnet", depth=110, num_classes=100, input_size=[3, 32, 32]),
     1_733_812, 1.7, 1),
    ("resnet-110-B-c10", dict(arch="resnet", depth=110, shortcut="B", **CIFAR10),
     1_730_714, 1.7, 1),
    ("resnet-20-A-c10", dict(arch="resnet", depth=20, **CIFAR10), 269_722, 0.27, 2),
    ("densenet-bc-100-k12-c10", dict(arch="densenet", depth=100, growth_rate=12, **CIFAR10),
     769_162, 0.8, 1),
    ("densenet-bc-100-k12-c100", dict(arch="densenet", depth=100, growth_rate=12, num_classes=100,
                                      input_size=[3, 32, 32]), 800_032, 0.8, 1),
    ("wrn-40-4-c10", dict(arch="wide_resnet", depth=40, widen_factor=4, **CIFAR10),
     8_949_210, 8.9, 1),
    ("wrn-40-1-c10", dict(arch="wide_resnet", depth=40, widen_factor=1, **CIFAR10),
     563_930, 0.6, 1),
]


@pytest.mark.parametrize("name,cfg,exact,published,digits", PUBLISHED_PARAMS,
                         ids=[p[0] for p in PUBLISHED_PARAMS])
def test_parameter_counts_match_published(name, cfg, exact, published, digits):
    n = _n_params(build(cfg))
    assert n == exact
    assert round(n / 1e6, digits) == published     # equal at the published precision


def test_fractalnet_parameter_count_is_the_layouts():
    """FractalNet-20 (C = 3, 64-128-256-512-512): 33,724,618 on CIFAR-10. The paper says 38.6M;
    the layout it describes has 33.7M (see fractalnet.py), so the test pins the layout's count."""
    model = build(dict(arch="fractalnet", columns=3, **CIFAR10))
    C, widths, c_prev, expect = 3, [64, 128, 256, 512, 512], 3, 0
    for c in widths:
        convs = 2 ** C - 1
        expect += C * c_prev * c * 9 + (convs - C) * c * c * 9 + convs * 2 * c   # convs + BN
        c_prev = c
    expect += 512 * 10 + 10
    assert _n_params(model) == expect == 33_724_618


def test_costs_match_the_paper():
    pytest.importorskip("msdnet.models.cost")
    from msdnet.models.cost import count_costs

    def macs(name: str) -> list[float]:
        return [c.macs / 1e6 for c in count_costs(build_from_file(CONFIG_DIR / name))]

    assert macs("resnet110-cifar10.yaml")[-1] == pytest.approx(253, rel=0.01)      # ~250M in the paper's figures
    assert macs("densenet-bc-100-k12-cifar10.yaml")[-1] == pytest.approx(292, rel=0.01)
    # single networks of the MSDNet paper's CIFAR-100 budgeted figure (authors' MACs, millions)
    for name, published in [("resnet14-cifar100.yaml", 26.592), ("resnet62-cifar100.yaml", 140.526),
                            ("densenet-bc-52-k12-cifar100.yaml", 107.008),
                            ("densenet-bc-88-k12-cifar100.yaml", 237.607),
                            ("wrn-40-1-cifar100.yaml", 83.821)]:
        assert macs(name)[-1] == pytest.approx(published, rel=0.02), name
    resnet_mc, densenet_mc = macs("resnet-mc-cifar100.yaml"), macs("densenet-mc-cifar100.yaml")
    assert resnet_mc[0] == pytest.approx(21, rel=0.1)        # the paper's figures: first exit ~21M / ~35M
    assert densenet_mc[0] == pytest.approx(35, rel=0.1)
    for costs in (resnet_mc, densenet_mc):
        assert all(a < b for a, b in zip(costs, costs[1:]))
        assert 1.0e2 < costs[-1] < 1.6e2                      # the paper's figures: ~1.3e8 in full


def _digits_batch(n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    datasets = pytest.importorskip("sklearn.datasets")
    digits = datasets.load_digits()
    x = torch.tensor(digits.images[:n], dtype=torch.float32).unsqueeze(1) / 16.0
    x = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False).repeat(1, 3, 1, 1)
    return (x - 0.5) / 0.5, torch.tensor(digits.target[:n])


def test_stochastic_depth_is_active_in_training_only():
    model = build_from_file(CONFIG_DIR / "resnet-sd-digits.yaml")
    blocks = [m for m in model.modules() if hasattr(m, "survival")]
    L = len(blocks)
    assert [b.survival for b in blocks] == pytest.approx([1 - l / L * 0.5 for l in range(1, L + 1)])
    x, _ = _digits_batch(8)
    torch.manual_seed(0)
    model.train()
    train_outs = [model(x)[0] for _ in range(6)]
    assert any(not torch.allclose(train_outs[0], o) for o in train_outs[1:])
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x)[0], model(x)[0])
    plain = build(dict(load_yaml(CONFIG_DIR / "resnet-sd-digits.yaml"), stochastic_depth=1.0))
    plain.train()
    torch.testing.assert_close(plain(x)[0], plain(x)[0])     # no randomness without it


def _conv_calls(model: nn.Module, x: torch.Tensor) -> int:
    calls = []
    hooks = [m.register_forward_hook(lambda *a: calls.append(1))
             for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        model(x)
    finally:
        for h in hooks:
            h.remove()
    return len(calls)


def test_fractalnet_drop_path_in_training_only():
    base = dict(arch="fractalnet", columns=3, widths=[4, 8], **CIFAR10)
    x, _ = _digits_batch(4)
    model = build(base)
    model.eval()
    assert _conv_calls(model, x) == 2 * 7                    # all paths: 2^C - 1 convs a block
    with torch.no_grad():
        torch.testing.assert_close(model(x)[0], model(x)[0])
    model.train()
    torch.manual_seed(0)
    outs = [model(x)[0] for _ in range(8)]
    assert any(not torch.allclose(outs[0], o) for o in outs[1:])
    # global drop-path: one column in the whole network -> 2^(c-1) convs in each of 2 blocks
    glob = build(dict(base, global_drop=1.0)).train()
    seen = {_conv_calls(glob, x) for _ in range(20)}
    assert seen <= {2 * 1, 2 * 2, 2 * 4} and len(seen) > 1
    # without drop-path a training forward is deterministic (BN uses the batch statistics)
    off = build(dict(base, global_drop=0.0, local_drop=0.0)).train()
    torch.testing.assert_close(off(x)[0], off(x)[0])


def test_fractalnet_column_exits_run_one_column_each():
    base = dict(arch="fractalnet", columns=3, widths=[4, 8], **CIFAR10)
    plain, columns = build(base), build(dict(base, column_exits=True))
    assert columns.num_exits == 3
    assert plain.state_dict().keys() == columns.state_dict().keys()   # checkpoints interchange
    columns.load_state_dict(plain.state_dict())
    x, _ = _digits_batch(2)
    calls = []
    hooks = [m.register_forward_hook(lambda *a: calls.append(1))
             for m in columns.modules() if isinstance(m, nn.Conv2d)]
    columns.eval()
    with torch.no_grad():
        state = columns.begin(x)
        per_exit = []
        for _ in range(3):
            columns.advance(state)
            per_exit.append(len(calls))
            calls.clear()
        full = plain.eval()(x)[0]
    for h in hooks:
        h.remove()
    assert per_exit == [2 * 1, 2 * 2, 2 * 4]                 # column k: 2^(k-1) convs a block
    assert not torch.allclose(columns(x)[-1], full)          # a column alone is not the fractal
    with pytest.raises(ConfigError, match="column_exits"):
        build(dict(base, column_exits=True, exits=[1]))


def test_exit_locations_map_to_nearest_unit_boundary():
    cfg = parse(dict(arch="resnet", depth=62, exit_locations=[0.01, 0.25, 0.5, 0.99], **CIFAR10))
    assert cfg.boundaries() == [1, 8, 15, 29]                # 30 blocks: floor(r * 30 + 0.5)
    cfg = parse(dict(arch="densenet", depth=52, growth_rate=12, exit_locations=[0.3], **CIFAR10))
    assert cfg.boundaries() == [7]                           # 24 dense layers
    locs = sorted(CONFIG_DIR.glob("resnet-staircase-*-cifar100.yaml"))
    bounds = [parse(load_yaml(p)).boundaries()[0] for p in locs]
    assert len(bounds) >= 5 and bounds == sorted(set(bounds))


@pytest.mark.parametrize("change,key", [
    ({"dept": 20}, "dept"),                       # unknown key
    ({"depth": 21}, "depth"),                     # not 6n + 2
    ({"exits": [9]}, "exits"),                    # ResNet-20 has 9 blocks: 9 is the final exit
    ({"exits": [3, 2]}, "exits"),
    ({"exit_locations": [1.5]}, "exit_locations"),
    ({"stochastic_depth": 0.0}, "stochastic_depth"),
    ({"shortcut": "C"}, "shortcut"),
    ({"widths": "16"}, "widths"),
])
def test_bad_config_names_key_and_file(tmp_path: Path, change: dict, key: str):
    body = dict(load_yaml(CONFIG_DIR / "resnet20-cifar100.yaml"), **change)
    if "dept" in change:
        del body["depth"]
    path = tmp_path / "bad.yaml"
    path.write_text("\n".join(f"{k}: {v!r}" if isinstance(v, str) else f"{k}: {v}"
                              for k, v in body.items()))
    with pytest.raises(ConfigError) as err:
        build_from_file(path)
    msg = str(err.value)
    assert str(path) in msg and f"'{key}'" in msg and "\n" not in msg


def test_exits_and_exit_locations_are_exclusive():
    with pytest.raises(ConfigError, match="not both"):
        build(dict(arch="densenet", depth=16, growth_rate=4, exits=[1], exit_locations=[0.5],
                   **CIFAR10), "x.yaml")


def test_torchvision_pretrained_weights(tmp_path: Path):
    cfg = dict(arch="torchvision", name="resnet10", num_classes=10, input_size=[3, 64, 64])
    missing = tmp_path / "nope.pth"
    with pytest.raises(ConfigError, match="pretrained_weights.*no such file"):
        build(dict(cfg, pretrained_weights=str(missing)))
    torch.manual_seed(1)
    donor = build(cfg).segments[0]
    good = tmp_path / "resnet10.pth"
    torch.save(donor.state_dict(), good)
    loaded = build(dict(cfg, pretrained_weights=str(good))).segments[0]
    torch.testing.assert_close(loaded.conv1.weight, donor.conv1.weight)
    with pytest.raises(ConfigError, match=r"shape mismatches \(e\.g\. 'fc\.bias'") as err:
        build(dict(cfg, num_classes=1000, pretrained_weights=str(good)))
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="missing keys"):
        build(dict(cfg, name="resnet18", pretrained_weights=str(good)))
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="not a readable"):
        build(dict(cfg, pretrained_weights=str(junk)))


def test_torchvision_old_densenet_keys_load(tmp_path: Path):
    cfg = dict(arch="torchvision", name="densenet36", num_classes=10, input_size=[3, 64, 64])
    donor = build(cfg).segments[0]
    old = {k.replace("norm1.", "norm.1.").replace("conv2.", "conv.2."): v
           for k, v in donor.state_dict().items()}
    assert any("norm.1." in k for k in old)
    path = tmp_path / "densenet36.pth"
    torch.save(old, path)
    loaded = build(dict(cfg, pretrained_weights=str(path))).segments[0]
    torch.testing.assert_close(loaded.features.denseblock1.denselayer1.norm1.weight,
                               donor.features.denseblock1.denselayer1.norm1.weight)


def test_googlenet_has_one_exit_in_training_too():
    model = build(dict(arch="torchvision", name="googlenet", num_classes=10,
                       input_size=[3, 224, 224])).train()
    outs = model(torch.randn(2, 3, 64, 64))
    assert model.num_exits == 1 and len(outs) == 1 and outs[0].shape == (2, 10)


@pytest.mark.parametrize("path", DIGITS_TRAIN, ids=lambda p: p.stem)
def test_digits_configs_learn(path: Path):
    """A few SGD steps on one batch of scikit-learn's digits lower the loss summed over exits."""
    torch.manual_seed(0)
    x, y = _digits_batch(32)
    model = build_from_file(path).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for _ in range(8):
        loss = sum(F.cross_entropy(o, y) for o in model(x))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses)
    assert sum(losses[-2:]) < sum(losses[:2])
