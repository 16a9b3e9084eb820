"""Several trainings per card (preset key ``gpu_slots``) and one card per job on a node with
several GPUs (:mod:`msdnet.training.gpu_slots`), without a GPU: fake device counts, the real flock
protocol, the real Snakemake scheduler on sleeping jobs."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from msdnet.training import gpu_slots as G
from msdnet.core.config import load_yaml
from msdnet.core.errors import ConfigError
from msdnet.planning.workflow import Preset, gpu_resources, gpu_slot_limit, validate_preset

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch):
    monkeypatch.chdir(REPO)


def _preset(name: str, **extra) -> dict:
    cfg = load_yaml(REPO / "config" / f"{name}.yaml")
    cfg.update(extra)
    return validate_preset(copy.deepcopy(cfg), f"{name}.yaml")


# -- the choice ---------------------------------------------------------------------------------
def test_least_loaded_card_lowest_index_among_equals():
    assert G.choose([0, 0, 0]) == 0
    assert G.choose([1, 0, 0]) == 1
    assert G.choose([2, 1, 1, 2]) == 1
    assert G.choose([3, 3, 2]) == 2
    with pytest.raises(ValueError):
        G.choose([])


def test_cards_are_named_by_visible_devices_when_set():
    assert G.card_names(3, None) == ["0", "1", "2"]
    assert G.card_names(2, "3,5") == ["3", "5"]
    assert G.card_names(1, "GPU-1a2b/c") == ["GPU-1a2b_c"]           # no path separators
    assert G.card_names(2, "7") == ["0", "1"]                         # inconsistent: indices


def test_only_auto_or_bare_cuda_on_several_cards_outside_torchrun_claims():
    assert G.wants_card("auto", 2, False) and G.wants_card("cuda", 4, False)
    assert not G.wants_card("auto", 1, False)          # one card: nothing to choose
    assert not G.wants_card("cuda:1", 4, False)        # the user named the card
    assert not G.wants_card("cpu", 0, False)
    assert not G.wants_card("auto", 4, True)           # torchrun: cuda:LOCAL_RANK


def test_claims_spread_over_cards_then_stack_and_free_on_release(tmp_path):
    held = [G.claim(3, visible="", directory=tmp_path) for _ in range(4)]
    assert [(c.index, c.slot) for c in held] == [(0, 0), (1, 0), (2, 0), (0, 1)]
    assert G.loads(tmp_path, ["0", "1", "2"]) == {"0": 2, "1": 1, "2": 1}
    held[1].release()
    again = G.claim(3, visible="", directory=tmp_path)
    assert (again.index, again.slot) == (1, 0)
    for c in [*held, again]:
        c.release()
    assert G.loads(tmp_path, ["0", "1", "2"]) == {"0": 0, "1": 0, "2": 0}


def test_another_process_claim_counts_and_goes_with_the_process(tmp_path):
    code = ("import sys; from msdnet.training import gpu_slots as G; c = G.claim(2, visible='', directory=sys.argv[1]);"
            " print(c.index, flush=True); sys.stdin.read()")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    child = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert child.stdout.readline().strip() == "0"
        mine = G.claim(2, visible="", directory=tmp_path)
        assert mine.index == 1                         # the child holds card 0
        mine.release()
    finally:
        child.communicate("", timeout=30)               # the child exits: its lock goes with it
    assert G.loads(tmp_path, ["0", "1"]) == {"0": 0, "1": 0}


def test_train_device_auto_lands_on_distinct_cards(tmp_path, monkeypatch):
    import torch

    monkeypatch.setenv(G.ENV_DIR, str(tmp_path))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    current = []
    monkeypatch.setattr(torch.cuda, "set_device", current.append)
    lines = []
    (first, a), (second, b) = G.claim_device("auto", log=lines.append), G.claim_device("cuda")
    assert (str(first), str(second)) == ("cuda:0", "cuda:1")
    assert [str(d) for d in current] == ["cuda:0", "cuda:1"]
    assert "card cuda:0" in lines[0]
    assert G.claim_device("cuda:1") == (torch.device("cuda:1"), None)        # named: no claim
    assert G.claim_device("auto", distributed=True) == (torch.device("cuda"), None)
    a.release()
    third, c = G.claim_device("auto")
    assert str(third) == "cuda:0"                                  # card 0 was freed
    b.release(), c.release()
    assert G._HELD == []


# -- the preset key -----------------------------------------------------------------------------
def test_gpu_slots_defaults_to_one_and_keeps_the_gpu_resource():
    cfg = _preset("paper-cifar100")
    assert cfg["gpu_slots"] == 1
    assert gpu_resources(cfg) == {"gpu": 1}
    assert gpu_resources(_preset("tiny")) == {}          # a CPU preset names no GPU at all
    assert gpu_slot_limit(cfg, 4) is None


def test_gpu_slots_is_an_execution_key_no_run_key_changes():
    plain = Preset(_preset("paper-cifar100"), "p")
    packed = Preset(_preset("paper-cifar100", gpu_slots=4), "p")
    keys = {m: plain.run_of(m).key for m in plain.models_needed()}
    assert keys == {m: packed.run_of(m).key for m in packed.models_needed()}
    assert len(keys) > 10
    assert gpu_resources(packed.cfg) == {"gpu_slot": 1}
    assert gpu_resources(packed.cfg, local=False) == {"gpu": 1}   # a cluster job's own card


def test_slot_limit_is_slots_per_card_unless_given():
    cfg = _preset("paper-cifar100", gpu_slots=4)
    assert gpu_slot_limit(cfg, 2) == 8
    assert gpu_slot_limit(cfg, 2, given=3) == 3
    assert gpu_slot_limit(cfg, None) is None


@pytest.mark.parametrize("bad, message", [({"gpu_slots": 0}, "gpu_slots"),
                                          ({"gpu_slots": 2, "gpu_jobs": 0}, "needs gpu_jobs: 1"),
                                          ({"gpu_slots": 2, "gpu_jobs": 2}, "needs gpu_jobs: 1")])
def test_bad_gpu_slots_are_refused_in_one_line(bad, message):
    with pytest.raises(ConfigError, match=message) as exc:
        _preset("paper-cifar100", **bad)
    assert "\n" not in str(exc.value)


# -- Snakemake: the real gpu.smk under the real scheduler --------------------------------------
SNAKEFILE = """
import types
PRESET = types.SimpleNamespace(cfg={cfg!r})
include: {gpu_smk!r}

rule all:
    input: expand("out/{{i}}.txt", i=range({jobs}))

rule work:
    output: "out/{{i}}.txt"
    resources: **GPU_RESOURCES
    shell: "python -c 'import time; a = time.time(); time.sleep(1.0); print(a, time.time())' > {{output}}"
"""


def _max_concurrent(folder: Path) -> int:
    events = []
    for f in folder.glob("out/*.txt"):
        start, end = map(float, f.read_text().split())
        events += [(start, 1), (end, -1)]
    now = most = 0
    for _, step in sorted(events):
        now += step
        most = max(most, now)
    return most


@pytest.mark.parametrize("slots, cards, expected", [(1, 1, 1), (2, 1, 2), (2, 2, 4)])
def test_snakemake_runs_slots_per_card_at_once(tmp_path, slots, cards, expected):
    cfg = {"gpu_jobs": 1, "gpu_slots": slots}
    (tmp_path / "Snakefile").write_text(textwrap.dedent(SNAKEFILE.format(
        cfg=cfg, gpu_smk=str(REPO / "workflow" / "rules" / "gpu.smk"), jobs=5)))
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "PATH": f"{BIN}:{os.environ['PATH']}"}
    subprocess.run([str(BIN / "snakemake"), "--cores", "8", "--resources", f"gpu={cards}", "--quiet", "all"],
                   cwd=tmp_path, env=env, check=True, capture_output=True, timeout=120)
    assert _max_concurrent(tmp_path) == expected


def test_workflow_dry_run_asks_train_and_predict_jobs_for_one_slot(tmp_path):
    cfg = load_yaml(REPO / "config" / "tiny.yaml")
    cfg.update(gpu_jobs=1, gpu_slots=3)
    preset = tmp_path / "tiny-slots.yaml"
    import yaml
    preset.write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "PATH": f"{BIN}:{os.environ['PATH']}"}
    out = subprocess.run([str(BIN / "snakemake"), "predict", "-n", "--configfile", str(preset),
                          "--resources", "gpu=1"], cwd=REPO, env=env, check=True, capture_output=True, text=True,
                         timeout=120).stdout
    blocks = out.split("rule ")
    jobs = [b for b in blocks if b.startswith(("train_model:", "predict_model:"))]
    assert jobs and all("gpu_slot=1" in b and "gpu=" not in b for b in jobs)


# -- the GPU-hours estimate with packing (benchmarks/bench_train.py) ---------------------------
def test_gpu_hours_with_packing_divide_by_the_best_aggregate_gain():
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import bench_train
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    rows = [{"config": c, "input": "3x32x32", "train_plain_img_s": 1000, "train_fast_graphs_img_s": 4000,
             "eval_plain_img_s": 9000, "eval_fast_img_s": 9000, "fast_graphs_compile_s": 60}
            for c in ("msdnet-anytime-cifar100", "resnet110-cifar100")]
    packing = [{"config": "msdnet-anytime-cifar100", "variant": "fast_graphs", "mps": m, "k": k,
                "aggregate_img_s": a} for m, k, a in [("off", 1, 4000), ("off", 2, 7000), ("off", 4, 9000),
                                                        ("on", 4, 10000)]]
    plain = {e["preset"]: e for e in bench_train.estimates(rows)}
    packed = {e["preset"]: e for e in bench_train.estimates(rows, packing)}
    assert set(packed) == {"paper-cifar100", "paper-cifar10"}          # no ImageNet-size rows
    for preset, est in packed.items():
        assert est["hours_fast_graphs"] == plain[preset]["hours_fast_graphs"]
        assert est["hours_best_k"] == round(est["hours_fast_graphs"] / 2.5, 1)
        assert est["best_k"].startswith("k=4 MPS, 2.50x")
    assert "hours_best_k" not in plain["paper-cifar100"]
