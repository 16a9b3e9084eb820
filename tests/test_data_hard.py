"""Tests of the digits-hard data set (msdnet.data.digits_hard): no source digit shared between
splits, determinism, sizes, a spread of difficulty, the cache and the split file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from msdnet.core.config import from_dict, load_yaml
from msdnet.data import DataConfig, load_data, split_sizes
from msdnet.data import digits_hard as dh
from msdnet.core.errors import ConfigError, DataError

REPO = Path(__file__).resolve().parents[1]


def _cfg(tmp_path, **kw) -> DataConfig:
    return from_dict(DataConfig, {"name": "digits-hard", "root": str(tmp_path / "data"), "image_size": 16,
                                  **kw}, "test.yaml")


@pytest.fixture(scope="module")
def default(tmp_path_factory):
    """The default data set (as the recipe builds it), generated once for the module."""
    root = tmp_path_factory.mktemp("hard")
    cfg = from_dict(DataConfig, {**load_yaml(REPO / "config" / "recipes" / "digits-hard.yaml")["data"],
                                 "root": str(root / "data")}, "digits-hard.yaml")
    data, split_file = dh.load_arrays(cfg)
    return cfg, data, split_file


def _pools(data: dh.HardDigits) -> dict[str, set[int]]:
    return {s: set(data.source[data.index(s)].tolist()) for s in dh.SPLIT_CODES}


def test_splits_share_no_source_digit(default):
    _, data, _ = default
    pools = _pools(data)
    assert not pools["train"] & pools["val"]
    assert not pools["train"] & pools["test"]
    assert not pools["val"] & pools["test"]
    # clutter pasted into an image comes from the same split's pool
    for s, pool in pools.items():
        pasted = data.clutter[data.index(s)]
        assert set(pasted[pasted >= 0].tolist()) <= pool
        assert (pasted >= 0).mean() > 0.1        # and there is clutter to check
    # each pool is used in full and evenly (every source digit of a split to within one image)
    for s, pool in pools.items():
        counts = np.bincount(data.source[data.index(s)], minlength=dh.N_SOURCE)[sorted(pool)]
        assert counts.max() - counts.min() <= 1


def test_source_split_is_stratified_and_saved(default):
    cfg, data, split_file = default
    labels = np.asarray(__import__("sklearn.datasets", fromlist=["x"]).load_digits().target)
    saved = json.loads(Path(split_file).read_text())
    assert Path(split_file).parent == Path(cfg.root) / "digits-hard" / "splits"
    assert saved["dataset"] == "digits-hard" and saved["num_train_total"] == dh.N_SOURCE
    assert set(saved["test"]) == _pools(data)["test"] and set(saved["val"]) == _pools(data)["val"]
    share = len(saved["test"]) / dh.N_SOURCE
    for c in range(10):
        n_c = int((labels == c).sum())
        assert abs(int((labels[saved["test"]] == c).sum()) - share * n_c) <= 1.5
    assert np.array_equal(data.labels, labels[data.source])


def test_default_sizes_shapes_and_bundle(default, tmp_path):
    cfg, data, _ = default
    b = load_data(cfg)
    n = split_sizes(b)
    side = cfg.image_size
    assert n["test"] >= 3000 and n["val"] >= 2000 and n["train"] >= 8000
    assert b.name == "digits-hard" and b.num_classes == 10 and b.input_size == (3, side, side)
    assert b.class_names == tuple("0123456789") and b.flip is False and b.crop_pad == side // 8
    for s in ("train", "val", "test"):
        split = b.split(s)
        assert split.images.dtype == torch.uint8 and split.images.shape[1:] == (3, side, side)
        assert np.array_equal(split.ids.numpy(), data.index(s))      # ids index the whole set
        assert np.array_equal(split.labels.numpy(), data.labels[data.index(s)])
        assert set(np.unique(split.labels.numpy())) == set(range(10))
    assert not torch.equal(b.train.images[:, 0], b.train.images[:, 1])     # coloured, not grey
    x = b.train.images.float() / 255
    assert b.mean[1] == pytest.approx(x[:, 1].mean().item(), abs=1e-5)
    small = load_data(_cfg(tmp_path, image_size=12, hard_train_images=100, hard_val_images=20,
                           hard_test_images=30, val_size=0))
    assert small.input_size == (3, 12, 12) and small.val is None
    assert split_sizes(small) == {"train": 100, "val": 0, "test": 30}


def test_deterministic_and_seeded(default, tmp_path):
    cfg, data, _ = default
    again = dh.generate(cfg)
    for key in ("images", "labels", "source", "clutter", "difficulty", "split"):
        assert np.array_equal(getattr(again, key), getattr(data, key)), key
    other = dh.generate(_cfg(tmp_path, split_seed=1))
    assert _pools(other)["test"] != _pools(data)["test"]
    assert not np.array_equal(other.images, data.images)


def _nn_accuracy(train_x, train_y, test_x, test_y) -> np.ndarray:
    """1-nearest-neighbour hits on grey raw pixels (whole images standardised)."""
    def grey(x):
        g = torch.as_tensor(x, dtype=torch.float32).mean(1).flatten(1)
        return (g - g.mean(1, keepdim=True)) / (g.std(1, keepdim=True) + 1e-3)
    nearest = torch.cdist(grey(test_x), grey(train_x)).argmin(1).numpy()
    return np.asarray(train_y)[nearest] == np.asarray(test_y)


def test_harder_than_digits_with_a_spread_of_difficulty(default, tmp_path):
    _, data, _ = default
    d = data.difficulty
    assert d.min() >= 0 and d.max() <= 1
    assert np.median(d) < 0.4 and (d > 0.6).mean() > 0.05    # many easy images, a tail of hard ones
    plain = load_data(from_dict(DataConfig, {"name": "digits", "root": str(tmp_path / "data"),
                                             "image_size": default[0].image_size}, "x"))
    plain_acc = _nn_accuracy(plain.train.images, plain.train.labels, plain.test.images,
                             plain.test.labels).mean()
    tr, te = data.index("train"), data.index("test")
    hits = _nn_accuracy(data.images[tr], data.labels[tr], data.images[te], data.labels[te])
    assert plain_acc > 0.95
    assert 0.3 < hits.mean() < plain_acc - 0.2               # clearly harder, far above chance (0.1)
    easy, hard = d[te] < np.quantile(d[te], 0.25), d[te] > np.quantile(d[te], 0.75)
    assert hits[easy].mean() > hits[hard].mean() + 0.3        # difficulty means what it says


def test_cache_round_trip_and_corrupt_cache(default, tmp_path, monkeypatch):
    cfg, data, _ = default
    cached = list((Path(cfg.root) / "digits-hard").glob(f"digits-hard-s{cfg.image_size}-seed0-*.npz"))
    assert len(cached) == 1
    monkeypatch.setattr(dh, "generate", lambda *a, **k: pytest.fail("regenerated a valid cache"))
    again, _ = dh.load_arrays(cfg)
    assert np.array_equal(again.images, data.images) and np.array_equal(again.clutter, data.clutter)
    monkeypatch.undo()
    # another construction parameter: another cache file
    other = _cfg(tmp_path, hard_train_images=50, hard_val_images=10, hard_test_images=10)
    dh.load_arrays(other)
    assert len(list((tmp_path / "data" / "digits-hard").glob("*.npz"))) == 1
    # a corrupt cache is regenerated, with a warning naming the file
    path = next((tmp_path / "data" / "digits-hard").glob("*.npz"))
    good = path.read_bytes()
    path.write_bytes(good[:100])
    with pytest.warns(UserWarning, match="regenerating"):
        regenerated, _ = dh.load_arrays(other)
    assert path.read_bytes() == good and len(regenerated.labels) == 70


def test_bad_split_file_and_config(tmp_path):
    cfg = _cfg(tmp_path, hard_train_images=50, hard_val_images=10, hard_test_images=10)
    _, split_file = dh.load_arrays(cfg)
    Path(split_file).write_text('{"dataset": "digits-hard"}')
    with pytest.raises(DataError, match="split file does not match"):
        dh.load_arrays(cfg)
    with pytest.raises(ConfigError, match="hard_test_images"):
        _cfg(tmp_path, hard_test_images=0)
    with pytest.raises(ConfigError, match="digits-hard"):
        _cfg(tmp_path, name="digits-harder")
