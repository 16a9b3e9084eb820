"""The embedded default is the paper's CIFAR-100 preset made small by one rule (issue: a
faithful miniature): the committed configs are what the rule writes, and every model of the
default is its namesake in paper-cifar100.yaml with the same overrides."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from msdnet.core.config import load_yaml
from msdnet.core.errors import ConfigError
from msdnet.models.miniature import RULE, SOURCES, miniature, miniature_yaml, source_path, target_path

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "config/models"


@pytest.mark.parametrize("name", SOURCES)
def test_the_rule_regenerates_the_committed_config(name):
    assert target_path(name, MODELS).read_text(encoding="utf-8") == miniature_yaml(name, MODELS), \
        f"{target_path(name, MODELS)} differs from the rule; run `msdnet miniature` and commit"


def test_no_stray_config_in_the_miniature_folder():
    written = {target_path(n, MODELS).name for n in SOURCES}
    assert {p.name for p in (MODELS / "mini").glob("*.yaml")} == written


def test_every_default_model_is_its_paper_namesake_made_small():
    default = yaml.safe_load((REPO / "config/config.yaml").read_text())
    paper = yaml.safe_load((REPO / "config/paper-cifar100.yaml").read_text())
    by_source = {str(source_path(n, "config/models")): str(target_path(n, "config/models")) for n in SOURCES}
    for name, entry in default["models"].items():
        assert name in paper["models"], f"{name}: no namesake in paper-cifar100.yaml"
        theirs = paper["models"][name]
        assert entry["config"] == by_source[theirs["config"]], name
        assert entry.get("set", {}) == theirs.get("set", {}), name
    assert not default.get("model_set"), "a preset-wide model override would bypass the rule"


@pytest.mark.parametrize("name", SOURCES)
def test_the_rule_changes_only_widths_input_classes_and_heads(name):
    paper = load_yaml(source_path(name, MODELS))
    mini = miniature(paper, name)
    changed = {k for k in set(paper) | set(mini) if paper.get(k) != mini.get(k)}
    widths = {"n_channels", "growth_rate", "widths"}
    assert changed <= widths | {"input_size", "num_classes", "head_channels", "head_resolution"}
    assert mini["input_size"] == RULE["input_size"] and mini["num_classes"] == RULE["num_classes"]
    for key in changed & widths & set(paper):
        half = [v // 2 for v in paper[key]] if isinstance(paper[key], list) else paper[key] // 2
        assert mini[key] == half, key


def test_the_rule_fills_default_widths_and_scales_the_head_pooling():
    mini = miniature(load_yaml(source_path("resnet110-stochastic-depth", MODELS)), "sd")
    assert mini["widths"] == [8, 16, 32]                  # the family's default 16-32-64, halved
    assert mini["head_resolution"] == 8 * RULE["input_size"][1] // 32


@pytest.mark.parametrize("name", ["wrn-40-1", "fractalnet"])
def test_what_the_rule_cannot_make_small_is_refused_in_one_line(name):
    with pytest.raises(ConfigError) as exc:
        miniature(load_yaml(source_path(name, MODELS)), name)
    assert "\n" not in str(exc.value)
