"""docs/fidelity.md: every switch between the paper / the authors' codes and this project reaches
its effect, and config/recipes/cifar-authors-pytorch.yaml sets the port's side of each."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from msdnet.core.config import from_dict, load_yaml
from msdnet.data import DataConfig, iterate_batches, load_data, normalize
from msdnet.core.errors import ConfigError
from msdnet.models import build
from msdnet.planning.runs import resolve, run_key
from msdnet.training.train import TrainConfig, make_optimizer, maybe_sync_batchnorm

from conftest import REPO, TINY_MSDNET
from test_data import _write_cifar

RECIPES = REPO / "config" / "recipes"
MODEL = REPO / "config" / "models" / "msdnet-budgeted-b4-cifar100.yaml"
PORT = RECIPES / "cifar-authors-pytorch.yaml"
PORT_MEAN, PORT_STD = [0.5071, 0.4867, 0.4408], [0.2675, 0.2565, 0.2761]


@pytest.fixture
def cifar(tmp_path) -> tuple[Path, dict]:
    raw = _write_cifar(tmp_path / "data", "cifar100", per_batch=100, n_test=20)
    return tmp_path / "data", raw


def _data(root: Path, **keys) -> DataConfig:
    return from_dict(DataConfig, {"name": "cifar100", "root": str(root), "val_size": 10, **keys})


def _all(bundle, split: str, **kw) -> torch.Tensor:
    return torch.cat([x for x, _, _ in iterate_batches(bundle, split, 7, **kw)])


def test_the_port_recipe_sets_the_port_side_of_every_switch():
    port, ours = resolve(MODEL, PORT), resolve(MODEL, RECIPES / "cifar.yaml")
    assert port.model["init"] == "pytorch" and "init" not in ours.model
    assert port.train.nesterov is False and ours.train.nesterov is True
    assert port.data.mean == PORT_MEAN and port.data.std == PORT_STD and ours.data.mean is None
    assert port.data.augment_holdout is True and ours.data.augment_holdout is False
    assert (port.train.precision, port.train.compile) == ("fp32", False)
    same = ("epochs", "batch_size", "lr", "momentum", "weight_decay", "lr_milestones", "lr_gamma")
    assert all(getattr(port.train, k) == getattr(ours.train, k) for k in same)
    assert port.data.val_size == ours.data.val_size == 5000
    assert run_key(port) != run_key(ours)


# -- optimizer ------------------------------------------------------------------------------------

def test_nesterov_off_reaches_the_optimizer():
    model = build(TINY_MSDNET)
    assert make_optimizer(model, TrainConfig()).defaults["nesterov"] is True
    port = resolve(MODEL, PORT)
    opt = make_optimizer(model, port.train)
    assert opt.defaults["nesterov"] is False and opt.defaults["momentum"] == 0.9
    assert opt.defaults["weight_decay"] == 1e-4


# -- normalisation --------------------------------------------------------------------------------

def test_fixed_constants_reach_the_normaliser(cifar):
    root, raw = cifar
    computed = load_data(_data(root))
    fixed = load_data(_data(root, mean=PORT_MEAN, std=PORT_STD))
    assert list(fixed.mean) == PORT_MEAN and list(fixed.std) == PORT_STD
    assert list(computed.mean) != PORT_MEAN                     # from the training split
    x = _all(fixed, "test")
    want = normalize(torch.from_numpy(raw["test"]).reshape(-1, 3, 32, 32), PORT_MEAN, PORT_STD)
    torch.testing.assert_close(x, want)


def test_fixed_constants_reach_the_imagenet_transforms(tmp_path):
    from PIL import Image

    root = tmp_path / "imagenet"
    for part in ("train", "val"):
        for cls in ("n01", "n02"):
            (root / part / cls).mkdir(parents=True)
            for i in range(2):
                Image.new("RGB", (8, 8), (i * 90, 10, 200)).save(root / part / cls / f"{i}.png")
    b = load_data(DataConfig(name="imagenet", root=str(tmp_path / "d"), imagenet_dir=str(root), val_size=1,
                             mean=[0.5, 0.5, 0.5], std=[0.25, 0.25, 0.25], augment_holdout=True))
    norms = [t for t in b.test.transform.transforms if type(t).__name__ == "Normalize"]
    assert list(norms[0].mean) == [0.5] * 3 and list(b.mean) == [0.5] * 3
    # augment_holdout: the held-out images carry the training transform
    assert any(type(t).__name__ == "RandomResizedCrop" for t in b.val.dataset.transform.transforms)
    assert not any(type(t).__name__ == "RandomResizedCrop" for t in b.train_plain.dataset.transform.transforms)


def test_mean_and_std_go_together_and_only_where_the_authors_fixed_them():
    with pytest.raises(ConfigError, match="mean"):
        from_dict(DataConfig, {"name": "cifar10", "mean": [0.5, 0.5, 0.5]})
    with pytest.raises(ConfigError, match="mean"):
        from_dict(DataConfig, {"name": "digits", "mean": [0.5] * 3, "std": [0.2] * 3})
    with pytest.raises(ConfigError, match="augment_holdout"):
        from_dict(DataConfig, {"name": "digits", "augment_holdout": True})


# -- training set of anytime models ---------------------------------------------------------------

def test_val_size_zero_trains_on_the_whole_training_set(cifar):
    root, _ = cifar
    b = load_data(_data(root, val_size=0))
    assert b.val is None and len(b.train) == 100
    assert len(load_data(_data(root)).train) == 90


# -- held-out images augmented --------------------------------------------------------------------

def test_augment_holdout_augments_the_held_out_images_the_same_way_every_pass(cifar):
    root, raw = cifar
    plain = load_data(_data(root))
    augmented = load_data(_data(root, augment_holdout=True))
    x_plain, x_aug = _all(plain, "val"), _all(augmented, "val")
    want = normalize(torch.from_numpy(raw["train"])[plain.val.ids].reshape(-1, 3, 32, 32),
                     plain.mean, plain.std)
    torch.testing.assert_close(x_plain, want)                    # ours: never augmented
    assert not torch.equal(x_aug, x_plain)
    torch.testing.assert_close(x_aug, _all(augmented, "val"))    # seeded: the same crops each pass
    torch.testing.assert_close(_all(augmented, "test"), _all(plain, "test"))   # test untouched
    with pytest.raises(ValueError, match="augment"):
        next(iterate_batches(plain, "val", 4, augment=True))


# -- initialisation -------------------------------------------------------------------------------

def test_init_pytorch_keeps_pytorch_defaults():
    torch.manual_seed(0)
    paper = build({**TINY_MSDNET, "growth_rate": 16, "head_channels": 64})
    torch.manual_seed(0)
    port = build({**TINY_MSDNET, "growth_rate": 16, "head_channels": 64, "init": "pytorch"})
    assert torch.all(paper.heads[0].linear.bias == 0) and torch.any(port.heads[0].linear.bias != 0)
    conv = port.heads[0].features[0][0]
    fan_in = conv.in_channels * 9
    assert conv.weight.std().item() == pytest.approx(1 / math.sqrt(3 * fan_in), rel=0.1)   # kaiming_uniform(a=sqrt 5)
    conv = paper.heads[0].features[0][0]
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / (9 * conv.out_channels)), rel=0.1)
    # the same modules otherwise: one config key changes only the initial values
    assert [k for k in paper.state_dict()] == [k for k in port.state_dict()]


# -- budgeted costs -------------------------------------------------------------------------------

def test_budgeted_costs_full_reaches_the_budgeted_table(tmp_path):
    from msdnet.inference.predictions import Predictions, save
    from msdnet.evaluation.tables import Sources, budgeted_rows

    rng = np.random.default_rng(0)
    for split in ("val", "test"):
        labels = rng.integers(0, 5, 200)
        logits = rng.normal(size=(3, 200, 5)).astype(np.float32)
        for k in range(3):
            logits[k, np.arange(200), labels] += k + 1.0
        save(tmp_path / f"{split}.npz", Predictions(
            logits=logits, labels=labels, exit_macs=np.array([1e6, 2e6, 3e6]), sample_ids=np.arange(200),
            meta={"split": split, "exit_macs_lazy": [0.8e6, 1.9e6, 3e6]}))
    src = Sources({"m": {0: tmp_path}})
    lazy = budgeted_rows({"dynamic": {"MSDNet with dynamic evaluation": ["m"]}}, src)
    full = budgeted_rows({"costs": "full", "dynamic": {"MSDNet with dynamic evaluation": ["m"]}}, src)
    # the same exits taken (thresholds fit shares of images), paid at the full costs
    assert list(full["accuracy"]) == list(lazy["accuracy"]) and len(full) == len(lazy) > 1
    assert (full["avg_macs"].to_numpy() > lazy["avg_macs"].to_numpy()).all()
    from msdnet.planning.workflow import validate_preset

    cfg = load_yaml(REPO / "config" / "tiny.yaml")
    cfg["figures"]["budgeted"]["costs"] = "full"
    validate_preset(cfg, "tiny.yaml")                              # a preset may set it


# -- GPU numerics ---------------------------------------------------------------------------------

def test_fp32_and_no_compile_reach_the_precision_policy(monkeypatch):
    from msdnet.training.precision import decide

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    ours = decide("cuda", TrainConfig())
    assert ours.dtype == torch.bfloat16 and ours.compile is True
    port = decide("cuda", resolve(MODEL, PORT).train)
    assert port.dtype == torch.float32 and port.compile is False


# -- BatchNorm under several GPUs -----------------------------------------------------------------

def test_sync_batchnorm_off_keeps_per_process_statistics():
    from msdnet.training.distributed import AllReduceBatchNorm2d, Context

    two = Context(rank=0, world_size=2)
    per_gpu = build(TINY_MSDNET)
    assert not maybe_sync_batchnorm(per_gpu, two, torch.device("cpu"), TrainConfig(sync_batchnorm=False))
    assert not any(isinstance(m, AllReduceBatchNorm2d) for m in per_gpu.modules())
    synced = build(TINY_MSDNET)
    assert maybe_sync_batchnorm(synced, two, torch.device("cpu"), TrainConfig())
    assert any(isinstance(m, AllReduceBatchNorm2d) for m in synced.modules())
    assert not maybe_sync_batchnorm(build(TINY_MSDNET), Context(), torch.device("cpu"), TrainConfig())
    authors = load_yaml(RECIPES / "imagenet-authors-pytorch.yaml")["train"]
    assert authors["sync_batchnorm"] is False and authors["nesterov"] is False


def test_the_new_keys_at_their_default_are_not_hashed_and_set_they_are():
    from msdnet.core.config import compact_dict

    assert not {"holdout_indices", "mean", "std", "augment_holdout"} & set(compact_dict(DataConfig(name="cifar10")))
    assert "sync_batchnorm" not in compact_dict(TrainConfig())
    assert compact_dict(TrainConfig(sync_batchnorm=False))["sync_batchnorm"] is False
    ours = resolve(MODEL, RECIPES / "cifar.yaml")
    assert run_key(resolve(MODEL, RECIPES / "cifar.yaml", ["data.augment_holdout=false"])) == run_key(ours)
    assert run_key(resolve(MODEL, RECIPES / "cifar.yaml", ["data.augment_holdout=true"])) != run_key(ours)
