"""MAC and parameter counting (docs/method.md §Cost convention) against hand-computed small networks."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from msdnet.cli import main
from msdnet.models.cost import count_costs
from msdnet.models import SegmentedMultiExit, build

from conftest import REPO


def test_segmented_network_by_hand():
    # exit 1: conv 3->4 (3x3, pad 1) on 8x8, ReLU, maxpool 2 -> 4x4; head: flatten 64 -> linear 5
    # exit 2: conv 4->6 (1x1, bias) on 4x4, ReLU, adaptive avgpool 4x4 -> 1x1; head: linear 6 -> 5
    seg1 = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.ReLU(), nn.MaxPool2d(2))
    head1 = nn.Sequential(nn.Flatten(), nn.Linear(64, 5))
    seg2 = nn.Sequential(nn.Conv2d(4, 6, 1, bias=True), nn.BatchNorm2d(6), nn.ReLU())
    head2 = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.5), nn.Linear(6, 5))
    model = SegmentedMultiExit([seg1, seg2], [head1, head2], (3, 8, 8))
    macs1 = (3 * 4 * 9 * 64) + (4 * 64) + (2 * 2) * (4 * 16) + (64 * 5 + 5)
    macs2 = macs1 + (4 * 6 * 16) + (6 * 16) + (16 * 6) + (6 * 5 + 5)
    params1 = 3 * 4 * 9 + 64 * 5 + 5
    params2 = params1 + (4 * 6 + 6) + 12 + (6 * 5 + 5)
    costs = count_costs(model)
    assert [c.macs for c in costs] == [macs1, macs2]
    assert [c.params for c in costs] == [params1, params2]
    assert params2 == sum(p.numel() for p in model.parameters())


def test_grouped_and_strided_conv_and_functional_relu():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 8, 3, stride=2, padding=1, groups=2, bias=False)

        def forward(self, x):
            return torch.nn.functional.relu(self.conv(x))

    model = SegmentedMultiExit([Net()], [nn.Sequential(nn.Flatten(), nn.Linear(8 * 16, 2, bias=False))], (4, 8, 8))
    expected = (4 // 2) * 8 * 9 * 16 + 8 * 16 + 8 * 16 * 2
    assert count_costs(model)[0].macs == expected


def test_tiny_msdnet_by_hand():
    cfg = {"arch": "msdnet", "num_classes": 10, "input_size": [3, 8, 8], "n_blocks": 1, "base": 1,
           "n_channels": 4, "growth_rate": 2, "gr_factor": [1, 2], "bn_factor": [1, 2], "bottleneck": False,
           "prune": "max", "reduction": 0.0, "stem": "cifar", "head_channels": 5}
    first = (3 * 4 * 9 * 64 + 4 * 64) + (4 * 8 * 9 * 16 + 8 * 16)
    layer = (4 * 2 * 9 * 64 + 2 * 64) + (4 * 2 * 9 * 16 + 2 * 16) + (8 * 2 * 9 * 16 + 2 * 16)
    head = (12 * 5 * 9 * 4 + 5 * 4) + (5 * 5 * 9 * 1 + 5) + 5 + (5 * 10 + 10)
    costs = count_costs(build(cfg))
    assert costs[0].macs == first + layer + head
    bn = lambda c: 2 * c
    params = (3 * 4 * 9 + bn(4) + 4 * 8 * 9 + bn(8)) + (4 * 2 * 9 + bn(2) + 4 * 2 * 9 + bn(2) + 8 * 2 * 9 + bn(2)) \
        + (12 * 5 * 9 + bn(5) + 5 * 5 * 9 + bn(5) + 5 * 10 + 10)
    assert costs[0].params == params


def test_bottleneck_width_is_min_of_input_and_factor():
    cfg = {"arch": "msdnet", "num_classes": 10, "input_size": [3, 8, 8], "n_blocks": 1, "base": 1,
           "n_channels": 4, "growth_rate": 2, "gr_factor": [1], "bn_factor": [4], "bottleneck": True,
           "prune": "max", "reduction": 0.0, "head_channels": 5}
    model = build(cfg)
    branch = model.segments[0][0].branches["0"]["normal"]
    assert branch[0].out_channels == min(4, 4 * 2)
    cfg["bn_factor"] = [1]
    assert build(cfg).segments[0][0].branches["0"]["normal"][0].out_channels == 2


def test_costs_are_cumulative_and_include_earlier_heads():
    cfg = {"arch": "msdnet", "num_classes": 10, "input_size": [3, 16, 16], "n_blocks": 3, "base": 1,
           "step": 1, "n_channels": 4, "growth_rate": 2, "gr_factor": [1, 2], "bn_factor": [1, 2]}
    model = build(cfg)
    with_heads = count_costs(model)
    assert all(b.macs > a.macs for a, b in zip(with_heads, with_heads[1:]))
    assert with_heads[-1].params == sum(p.numel() for p in model.parameters())
    final_only = count_costs(build({**cfg, "intermediate_classifiers": False}))
    assert len(final_only) == 1

    def head_macs(head):
        c_in = head.features[0][0].in_channels
        return count_costs(SegmentedMultiExit([nn.Identity()], [head], (c_in, 8, 8)))[0].macs

    assert with_heads[-1].macs - final_only[0].macs == head_macs(model.heads[0]) + head_macs(model.heads[1])


def test_cost_cli_json_shape(capsys):
    path = REPO / "config/models/msdnet-anytime-cifar100.yaml"
    assert main(["cost", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["arch"] == "msdnet" and report["input_size"] == [3, 32, 32]
    assert [e["exit"] for e in report["exits"]] == list(range(1, 8))
    macs = [e["macs"] for e in report["exits"]]
    assert macs == sorted(macs) and all(isinstance(m, int) for m in macs)
    # the anytime CIFAR-100 MSDNet is a ~1e7 - 1e8 MACs network (the range of the paper's CIFAR-100 figures)
    assert 5e6 < macs[0] < 3e7 and 5e7 < macs[-1] < 1.5e8


@pytest.mark.parametrize("name", ["msdnet-imagenet-k4.yaml", "msdnet-budgeted-b8-cifar100.yaml"])
def test_cost_cli_table(name, capsys):
    assert main(["cost", str(REPO / "config/models" / name)]) == 0
    out = capsys.readouterr().out
    assert "MACs" in out and "params" in out
