"""Run keys do not move: every model's (and ensemble's) key of the paper presets and tiny, as the
code of df4216f computed them (``tests/data/run_keys.json``). A refactor that changed one would
orphan every trained run of it (its directory is named by the key). The default preset
(config/config.yaml) is left out on purpose: its configs are still being generated.

After a deliberate change of what identifies a run, regenerate the fixture and say so in the
commit:

    python -c "import tests.test_run_keys as t; t.write_fixture()"
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from msdnet.core.config import load_yaml
from msdnet.planning.workflow import Preset, plan

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "data" / "run_keys.json"
EXPECTED = json.loads(FIXTURE.read_text(encoding="utf-8"))
PRESETS = ["paper-cifar10", "paper-cifar100", "paper-imagenet", "paper-imagenet-authors", "tiny"]


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch):
    monkeypatch.chdir(REPO)


def keys(preset: Preset) -> dict[str, str]:
    """Every model's run key and every ensemble's key of a preset."""
    out = {m: preset.run_of(m).key for m in sorted(preset.cfg["models"])}
    out.update({e: preset.key_of(e) for e in sorted(preset.cfg["ensembles"])})
    return out


def _plan(name: str) -> Preset:
    source = f"config/{name}.yaml"
    return plan(load_yaml(REPO / source), source)


def write_fixture() -> None:
    FIXTURE.write_text(json.dumps({n: keys(_plan(n)) for n in PRESETS}, indent=1, sort_keys=True) + "\n")


def test_the_fixture_covers_the_presets():
    assert sorted(EXPECTED) == sorted(PRESETS)
    assert all(len(v) >= 2 for v in EXPECTED.values())


@pytest.mark.parametrize("name", PRESETS)
def test_run_keys_are_unchanged(name):
    got = keys(_plan(name))
    changed = {m: (EXPECTED[name].get(m), k) for m, k in got.items() if EXPECTED[name].get(m) != k}
    assert not changed, f"{name}: run keys changed (model: (fixture, now)): {changed}"
    assert sorted(got) == sorted(EXPECTED[name])
