"""Multi-process training under torchrun (gloo, CPU): the same steps as one process.

Two processes with the global batch split between them must end with the weights a single
process gets from the same global batches. BatchNorm statistics are synchronised
(msdnet.training.distributed.AllReduceBatchNorm2d on CPU), so this holds with BatchNorm in training
mode; without the synchronisation the weights differ by ~0.3 after six steps.
Tolerance 1e-5: float32 sums taken in another order (gradients averaged across ranks, BN
statistics from partial sums) differ by a few ulps; measured max differences 5e-7 (one step)
and 3e-6 (the resume test's six steps).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from msdnet.data import DataConfig, iterate_batches, load_data
from msdnet.training.distributed import AllReduceBatchNorm2d, Context, rank_batches, shard_bounds
from msdnet.training.train import load_checkpoint, make_run_config, train

from conftest import TINY_MSDNET

pytestmark = pytest.mark.skipif(not torch.distributed.is_available()
                                or not torch.distributed.is_gloo_available(),
                                reason="torch.distributed with gloo is not available")


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)          # as the torchrun workers (OMP_NUM_THREADS=1)


def _model(size: int) -> dict:
    return {**TINY_MSDNET, "input_size": [3, size, size]}


def _recipe(root: Path, epochs: int, batch_size: int, size: int = 16) -> dict:
    # 10 synthetic images, 2 kept for test: 8 training images, no validation split.
    return {"data": {"name": "synthetic", "root": str(root / "data"), "image_size": size,
                     "synthetic_images": 10, "synthetic_classes": 10, "test_size": 0.2, "val_size": 0},
            "train": {"epochs": epochs, "batch_size": batch_size, "lr": 0.1, "lr_milestones": [1.0],
                      "device": "cpu", "num_workers": 0, "progress": "none"}}


def _torchrun(tmp_path: Path, model: dict, recipe: dict, out: Path,
              kill_after: int = 0) -> subprocess.CompletedProcess:
    (tmp_path / "model.yaml").write_text(yaml.safe_dump(model))
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MSDNET_FAULT_KILL_AFTER_EPOCH": str(kill_after or "")}
    if sys.platform.startswith("linux"):
        env.setdefault("GLOO_SOCKET_IFNAME", "lo")         # no dependence on hostname resolution
    return subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "msdnet.cli", "train", str(tmp_path / "model.yaml"), "--recipe", str(tmp_path / "recipe.yaml"),
         "--out", str(out)], capture_output=True, text=True, env=env, timeout=300)


def _assert_same_weights(a: dict, b: dict, tol: float = 1e-5) -> None:
    assert a.keys() == b.keys()
    for key, tensor in b.items():
        if tensor.is_floating_point():
            torch.testing.assert_close(a[key], tensor, rtol=0, atol=tol, msg=lambda m: f"{key}: {m}")
        else:
            assert torch.equal(a[key], tensor), key


def test_shard_bounds_split_evenly():
    for n in range(0, 12):
        for world in (1, 2, 3, 5):
            parts = [shard_bounds(n, r, world) for r in range(world)]
            assert parts[0][0] == 0 and parts[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(parts, parts[1:]))
            sizes = [hi - lo for lo, hi in parts]
            assert max(sizes) - min(sizes) <= 1


def test_one_process_batches_are_iterate_batches(tmp_path):
    bundle = load_data(DataConfig(**_recipe(tmp_path, 1, 3)["data"]))
    ours = list(rank_batches(bundle, "train", 3, Context(), shuffle=True, augment=True,
                             generator=torch.Generator().manual_seed(1), device=torch.device("cpu")))
    theirs = list(iterate_batches(bundle, "train", 3, shuffle=True, augment=True,
                                  generator=torch.Generator().manual_seed(1)))
    assert [n for *_, n in ours] == [3, 3, 2]
    for (x, y, ids, _), (x2, y2, ids2) in zip(ours, theirs):
        assert torch.equal(x, x2) and torch.equal(y, y2) and torch.equal(ids, ids2)


def test_all_reduce_batchnorm_is_batchnorm_without_a_group():
    torch.manual_seed(0)
    bn, ours = torch.nn.BatchNorm2d(3), torch.nn.BatchNorm2d(3)
    ours.__class__ = AllReduceBatchNorm2d
    x = torch.randn(4, 3, 5, 5)
    assert torch.equal(bn(x), ours(x)) and torch.equal(bn.running_var, ours.running_var)


def test_two_processes_take_the_same_step_as_one(tmp_path):
    """One SGD step on a global batch of 8 split 4 + 4, against one process on the same 8."""
    recipe = _recipe(tmp_path, epochs=1, batch_size=8)
    result = _torchrun(tmp_path, TINY_MSDNET, recipe, tmp_path / "ddp")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 processes" in result.stdout and result.stdout.count("epoch 1/1") == 1   # rank 0 logs
    single = train(make_run_config(TINY_MSDNET, recipe), tmp_path / "one", log=lambda *_: None)
    ddp = load_checkpoint(tmp_path / "ddp" / "checkpoint.pt")
    assert ddp["world_size"] == 2 and ddp["config_hash"] == single["config_hash"]
    _assert_same_weights(ddp["model"], single["model"])
    for key, value in single["metrics"][0].items():
        if key.startswith("train_"):
            assert ddp["metrics"][0][key] == pytest.approx(value, abs=1e-5), key
    assert sorted(p.name for p in (tmp_path / "ddp").iterdir()) == [".lock", "checkpoint.pt", "config.yaml",
                                                                    "metrics.csv", "timing.csv"]


def test_killed_two_process_run_resumes_like_one_process(tmp_path):
    """Global batch 7 over 8 images: slices of 4 + 3, then 1 + 0 (rank 1 gets no image);
    killed after epoch 1 of 3, resumed under torchrun.

    32x32 images: the one-image step normalises the tiny model's last BatchNorms over only
    the 4x4 = 16 values of one image (at 16x16 it would be 4 values, an ill-conditioned step
    in which a one-ulp difference grows to 1e-3 in one process too, whatever the number of
    processes).
    """
    model, recipe = _model(32), _recipe(tmp_path, epochs=3, batch_size=7, size=32)
    killed = _torchrun(tmp_path, model, recipe, tmp_path / "ddp", kill_after=1)
    assert killed.returncode != 0
    assert load_checkpoint(tmp_path / "ddp" / "checkpoint.pt")["epoch"] == 1
    resumed = _torchrun(tmp_path, model, recipe, tmp_path / "ddp")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming" in resumed.stdout
    single = train(make_run_config(model, recipe), tmp_path / "one", log=lambda *_: None)
    ddp = load_checkpoint(tmp_path / "ddp" / "checkpoint.pt")
    assert ddp["epoch"] == 3 and ddp["finished"]
    _assert_same_weights(ddp["model"], single["model"])
    for row, ref in zip(ddp["metrics"], single["metrics"]):
        assert row["train_loss_exit2"] == pytest.approx(ref["train_loss_exit2"], abs=1e-5)
