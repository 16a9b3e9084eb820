"""Tests of the data layer: digits, fake CIFAR-10/100 on disk, a tiny ImageFolder, augmentation,
batch iteration and the data config. Nothing here downloads anything."""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from msdnet.core.config import from_dict
from msdnet.data import (
    ArraySplit, DataBundle, DataConfig, augment_batch, iterate_batches, load_data, normalize,
    split_sizes,
)
from msdnet.core.errors import ConfigError, DataError


@pytest.fixture(autouse=True)
def _no_download(monkeypatch):
    monkeypatch.setenv("MSDNET_NO_DOWNLOAD", "1")


def _cfg(tmp_path, **kw) -> DataConfig:
    return from_dict(DataConfig, {"root": str(tmp_path / "data"), **kw}, "test.yaml")


def _ids(split) -> set[int]:
    return set(split.ids.tolist())


# ---------------------------------------------------------------- digits / synthetic


def test_digits_shapes_dtypes_and_stats(tmp_path):
    b = load_data(_cfg(tmp_path, name="digits", image_size=16))
    assert b.num_classes == 10 and b.input_size == (3, 16, 16)
    assert b.crop_pad == 2 and b.flip is False
    for split in (b.train, b.val, b.test):
        assert split.images.dtype == torch.uint8 and split.images.shape[1:] == (3, 16, 16)
        assert split.labels.dtype == torch.int64 and split.ids.dtype == torch.int64
        assert torch.equal(split.images[:, 0], split.images[:, 2])  # replicated channels
    assert int(b.train.images.max()) > 200  # 0..16 was scaled to 0..255
    x = b.train.images.float() / 255
    assert b.mean[0] == pytest.approx(x.mean().item(), abs=1e-5)
    assert b.std[0] == pytest.approx(x.std(unbiased=False).item(), abs=1e-5)


def test_digits_splits_disjoint_and_cover_everything(tmp_path):
    b = load_data(_cfg(tmp_path, name="digits", val_size=100))
    tr, va, te = _ids(b.train), _ids(b.val), _ids(b.test)
    assert len(va) == 100 and len(te) == round(0.2 * 1797)
    assert not (tr & va) and not (tr & te) and not (va & te)
    assert tr | va | te == set(range(1797))
    assert split_sizes(b) == {"train": 1797 - 100 - len(te), "val": 100, "test": len(te)}


def test_digits_deterministic_and_split_file_reread(tmp_path):
    cfg = _cfg(tmp_path, name="digits")
    a, b = load_data(cfg), load_data(cfg)
    for s in ("train", "val", "test"):
        assert torch.equal(getattr(a, s).ids, getattr(b, s).ids)
        assert torch.equal(getattr(a, s).images, getattr(b, s).images)
    path = Path(a.split_file)
    assert path.parent == tmp_path / "data" / "digits" / "splits"
    saved = json.loads(path.read_text())
    assert saved["dataset"] == "digits" and saved["seed"] == 0 and saved["num_train_total"] == 1797
    assert saved["val"] == a.val.ids.tolist() and saved["test"] == a.test.ids.tolist()
    # the file is the source of truth: a different valid split written there is used
    saved["val"], saved["test"] = list(range(len(saved["val"]))), list(range(1000, 1000 + len(saved["test"])))
    path.write_text(json.dumps(saved))
    c = load_data(cfg)
    assert c.val.ids.tolist() == saved["val"] and c.test.ids.tolist() == saved["test"]


def test_split_seed_changes_split(tmp_path):
    a = load_data(_cfg(tmp_path, name="digits", split_seed=0))
    b = load_data(_cfg(tmp_path, name="digits", split_seed=1))
    assert not torch.equal(a.val.ids, b.val.ids)
    assert a.split_file != b.split_file


@pytest.mark.parametrize("content", ["{not json", '{"dataset": "digits"}'])
def test_bad_split_file_is_a_data_error(tmp_path, content):
    cfg = _cfg(tmp_path, name="digits")
    path = Path(load_data(cfg).split_file)
    path.write_text(content)
    with pytest.raises(DataError, match="delete") as err:
        load_data(cfg)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_no_val_split(tmp_path):
    b = load_data(_cfg(tmp_path, name="digits", val_size=0))
    assert b.val is None and split_sizes(b)["val"] == 0
    assert len(b.train) + len(b.test) == 1797
    with pytest.raises(DataError, match="val_size > 0"):
        next(iterate_batches(b, "val", 8))


def test_synthetic(tmp_path):
    b = load_data(_cfg(tmp_path, name="synthetic", synthetic_images=50, synthetic_classes=3, image_size=8))
    assert b.input_size == (3, 8, 8) and b.num_classes == 3
    assert sum(split_sizes(b).values()) == 50
    assert int(b.train.labels.max()) < 3
    assert torch.equal(b.train.images, load_data(_cfg(tmp_path, name="synthetic", synthetic_images=50,
                                                       synthetic_classes=3, image_size=8)).train.images)


# ---------------------------------------------------------------- fake CIFAR on disk


def _write_cifar(root: Path, name: str, per_batch: int = 20, n_test: int = 20) -> dict[str, np.ndarray]:
    """Write a small CIFAR-10/100 in the real pickle layout; return the arrays written."""
    rng = np.random.default_rng(1)
    n_cls, key = (10, b"labels") if name == "cifar10" else (100, b"fine_labels")
    folder = root / name / ("cifar-10-batches-py" if name == "cifar10" else "cifar-100-python")
    folder.mkdir(parents=True)
    files = [f"data_batch_{i}" for i in range(1, 6)] if name == "cifar10" else ["train"]
    n_train = per_batch * (5 if name == "cifar10" else 1)
    train = rng.integers(0, 256, (n_train, 3072), dtype=np.uint8)
    train_labels = rng.integers(0, n_cls, n_train).tolist()
    test = rng.integers(0, 256, (n_test, 3072), dtype=np.uint8)
    test_labels = rng.integers(0, n_cls, n_test).tolist()
    step = n_train // len(files)
    for i, f in enumerate(files):
        obj = {b"data": train[i * step:(i + 1) * step], key: train_labels[i * step:(i + 1) * step]}
        (folder / f).write_bytes(pickle.dumps(obj))
    test_name = "test_batch" if name == "cifar10" else "test"
    (folder / test_name).write_bytes(pickle.dumps({b"data": test, key: test_labels}))
    (folder / ("batches.meta" if name == "cifar10" else "meta")).write_bytes(pickle.dumps({}))
    return {"train": train, "train_labels": np.array(train_labels), "test": test,
            "test_labels": np.array(test_labels), "folder": folder}


@pytest.mark.parametrize("name,per_batch", [("cifar10", 20), ("cifar100", 100)])
def test_fake_cifar_round_trip(tmp_path, name, per_batch):
    raw = _write_cifar(tmp_path / "data", name, per_batch=per_batch)
    b = load_data(_cfg(tmp_path, name=name, val_size=10))
    assert b.num_classes == (10 if name == "cifar10" else 100)
    assert b.input_size == (3, 32, 32) and b.crop_pad == 4 and b.flip is True
    assert split_sizes(b) == {"train": 90, "val": 10, "test": 20}
    assert _ids(b.train) | _ids(b.val) == set(range(100)) and not _ids(b.train) & _ids(b.val)
    # pixel (c=1, y=2, x=3) of test image 5 is byte 1*1024 + 2*32 + 3 of its row
    assert int(b.test.images[5, 1, 2, 3]) == int(raw["test"][5, 1024 + 64 + 3])
    assert torch.equal(b.test.images.reshape(20, -1), torch.from_numpy(raw["test"]))
    assert b.test.labels.tolist() == raw["test_labels"].tolist()
    for split in (b.train, b.val):
        src = torch.from_numpy(raw["train"])[split.ids].reshape(-1, 3, 32, 32)
        assert torch.equal(split.images, src)
        assert split.labels.tolist() == raw["train_labels"][split.ids.numpy()].tolist()
    assert Path(b.split_file) == tmp_path / "data" / name / "splits" / "holdout-seed0-val10.json"
    assert json.loads(Path(b.split_file).read_text())["num_train_total"] == 100


def test_cifar_missing_names_directory(tmp_path):
    with pytest.raises(DataError) as err:
        load_data(_cfg(tmp_path, name="cifar10"))
    msg = str(err.value)
    assert str(tmp_path / "data" / "cifar10" / "cifar-10-batches-py") in msg
    assert "MSDNET_NO_DOWNLOAD" in msg and "cifar-10-python.tar.gz" in msg and "\n" not in msg


def test_cifar_missing_batch_names_file(tmp_path):
    raw = _write_cifar(tmp_path / "data", "cifar100")
    (raw["folder"] / "test").unlink()
    with pytest.raises(DataError, match=re.escape(str(raw["folder"] / "test"))):
        load_data(_cfg(tmp_path, name="cifar100", val_size=5))


def test_cifar_corrupt_batch_names_file(tmp_path):
    raw = _write_cifar(tmp_path / "data", "cifar10")
    bad = raw["folder"] / "data_batch_3"
    bad.write_bytes(b"\x80\x04 not a pickle")
    with pytest.raises(DataError) as err:
        load_data(_cfg(tmp_path, name="cifar10", val_size=5))
    assert str(bad) in str(err.value) and "\n" not in str(err.value)


def test_cifar_default_val_larger_than_train_set(tmp_path):
    _write_cifar(tmp_path / "data", "cifar10")
    with pytest.raises(DataError, match="val_size"):
        load_data(_cfg(tmp_path, name="cifar10"))  # default 5000 > 100 fake images


def test_split_file_of_other_total_is_rejected(tmp_path):
    _write_cifar(tmp_path / "data", "cifar10")
    path = Path(load_data(_cfg(tmp_path, name="cifar10", val_size=10)).split_file)
    saved = json.loads(path.read_text())
    saved["num_train_total"] = 50000
    path.write_text(json.dumps(saved))
    with pytest.raises(DataError, match="num_train_total") as err:
        load_data(_cfg(tmp_path, name="cifar10", val_size=10))
    assert str(path) in str(err.value)


# ---------------------------------------------------------------- tiny ImageFolder


@pytest.fixture
def imagenet_dir(tmp_path) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    root = tmp_path / "imagenet"
    for part, n in (("train", 6), ("val", 2)):
        for cls in ("n01", "n02"):
            (root / part / cls).mkdir(parents=True)
            for i in range(n):
                pixels = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / part / cls / f"{i}.JPEG", format="JPEG")
    return root


def test_imagenet_folder(tmp_path, imagenet_dir):
    b = load_data(_cfg(tmp_path, name="imagenet", imagenet_dir=str(imagenet_dir), val_size=4))
    assert b.num_classes == 2 and b.input_size == (3, 224, 224)
    assert split_sizes(b) == {"train": 8, "val": 4, "test": 4}
    assert Path(b.split_file).parent == tmp_path / "data" / "imagenet" / "splits"
    batches = list(iterate_batches(b, "train", 3, shuffle=True, augment=True,
                                   generator=torch.Generator().manual_seed(0)))
    x, y, ids = batches[0]
    assert x.shape == (3, 3, 224, 224) and x.dtype == torch.float32 and y.dtype == torch.int64
    train_ids = sorted(torch.cat([i for _, _, i in batches]).tolist())
    val_ids = [i for _, _, ids in iterate_batches(b, "val", 4) for i in ids.tolist()]
    assert train_ids == b.train.indices and val_ids == b.val.indices
    assert not set(train_ids) & set(val_ids) and set(train_ids) | set(val_ids) == set(range(12))
    v1, v2 = (torch.cat([x for x, _, _ in iterate_batches(b, "val", 2)]) for _ in range(2))
    assert torch.equal(v1, v2)  # test transform: deterministic
    p1, p2 = (torch.cat([x for x, _, _ in iterate_batches(b, "train", 8)]) for _ in range(2))
    assert torch.equal(p1, p2)  # unaugmented training pass uses the test transform
    test_x, test_y, test_ids = next(iterate_batches(b, "test", 4))
    assert test_ids.tolist() == [0, 1, 2, 3] and test_y.tolist() == [0, 0, 1, 1]
    with pytest.raises(ValueError, match="augment"):
        next(iterate_batches(b, "val", 2, augment=True))


def test_imagenet_missing_dir(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError, match="imagenet_dir") as err:
        load_data(_cfg(tmp_path, name="imagenet", imagenet_dir=str(missing)))
    assert str(missing / "train") in str(err.value)


# ---------------------------------------------------------------- augment / normalize


def _batch(b=6, c=3, h=5, w=7, dtype=torch.uint8) -> torch.Tensor:
    return (torch.arange(b * c * h * w) % 251 + 1).reshape(b, c, h, w).to(dtype)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_augment_identity_and_shape(dtype):
    x = _batch(dtype=dtype)
    assert torch.equal(augment_batch(x, 0, False), x)
    y = augment_batch(x, 2, True, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and y.dtype == dtype


def test_augment_flip_only():
    x = _batch(b=32)
    y = augment_batch(x, 0, True, torch.Generator().manual_seed(3))
    flipped = [torch.equal(y[i], x[i].flip(-1)) for i in range(32)]
    assert all(f or torch.equal(y[i], x[i]) for i, f in enumerate(flipped))
    assert 0 < sum(flipped) < 32


def test_augment_crops_are_shifted_windows_of_padded_image():
    x, pad = _batch(b=40), 2
    y = augment_batch(x, pad, False, torch.Generator().manual_seed(1))
    padded = torch.nn.functional.pad(x, (pad,) * 4)
    h, w = x.shape[-2:]
    offsets = set()
    for i in range(len(x)):
        hits = [(dy, dx) for dy in range(2 * pad + 1) for dx in range(2 * pad + 1)
                if torch.equal(y[i], padded[i, :, dy:dy + h, dx:dx + w])]
        assert len(hits) == 1
        offsets.add(hits[0])
    assert len(offsets) > 5  # offsets vary per image


def test_augment_deterministic_given_generator():
    x = _batch(b=16, dtype=torch.float32)
    a = augment_batch(x, 3, True, torch.Generator().manual_seed(7))
    b = augment_batch(x, 3, True, torch.Generator().manual_seed(7))
    c = augment_batch(x, 3, True, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_normalize():
    x = torch.tensor([[[[0, 255]], [[51, 102]]]], dtype=torch.uint8)
    out = normalize(x, (0.5, 0.2), (0.5, 0.1))
    assert out.dtype == torch.float32
    assert torch.allclose(out, torch.tensor([[[[-1.0, 1.0]], [[0.0, 2.0]]]]), atol=1e-6)


# ---------------------------------------------------------------- iterate_batches


def _array_bundle(n=23, val=True) -> DataBundle:
    images = torch.randint(0, 256, (n, 3, 4, 4), generator=torch.Generator().manual_seed(0),
                           dtype=torch.uint8)
    split = ArraySplit(images, torch.arange(n) % 3, torch.arange(100, 100 + n))
    return DataBundle("toy", 3, (3, 4, 4), (0.5,) * 3, (0.25,) * 3, 1, True,
                      train=split, val=split if val else None, test=split, split_file=None)


def test_iterate_covers_each_image_once():
    b = _array_bundle()
    batches = list(iterate_batches(b, "train", 5, shuffle=True, augment=True,
                                   generator=torch.Generator().manual_seed(0)))
    assert [len(ids) for _, _, ids in batches] == [5, 5, 5, 5, 3]
    ids = torch.cat([ids for _, _, ids in batches])
    assert sorted(ids.tolist()) == list(range(100, 123)) and ids.tolist() != sorted(ids.tolist())
    for x, y, ids in batches:
        assert x.dtype == torch.float32 and x.shape[1:] == (3, 4, 4)
        assert torch.equal(y, b.train.labels[ids - 100])  # labels follow their images
    assert len(list(iterate_batches(b, "train", 5, drop_last=True))) == 4


def test_iterate_unaugmented_batches_are_normalised_images():
    b = _array_bundle()
    x, _, ids = next(iterate_batches(b, "test", 23))
    assert torch.allclose(x, normalize(b.test.images[ids - 100], b.mean, b.std))


def test_iterate_shuffle_follows_generator():
    b = _array_bundle()

    def order(seed: int) -> list[int]:
        gen = torch.Generator().manual_seed(seed)
        batches = iterate_batches(b, "train", 4, shuffle=True, generator=gen)
        return torch.cat([ids for _, _, ids in batches]).tolist()

    assert order(0) == order(0) and order(0) != order(1)


def test_iterate_refuses_augmenting_val_and_test():
    b = _array_bundle()
    for split in ("val", "test"):
        with pytest.raises(ValueError, match="augment"):
            iterate_batches(b, split, 4, augment=True)  # raises on the call, not on first next()
    with pytest.raises(DataError, match="val_size"):
        iterate_batches(_array_bundle(val=False), "val", 4)


def test_device_copy_is_normalised_once_and_cached():
    b = _array_bundle()
    list(iterate_batches(b, "train", 8))
    cached = b.normalized_on("train", torch.device("cpu"))
    list(iterate_batches(b, "train", 8, shuffle=True, augment=True))
    assert b.normalized_on("train", torch.device("cpu"))[0] is cached[0]
    assert cached[0].dtype == torch.float32 and cached[0].shape == (23, 4, 4, 3)   # NHWC


@pytest.mark.parametrize("crop_pad,flip", [(1, True), (2, False), (0, True), (0, False)])
def test_device_batches_equal_textbook_augment_then_normalise(monkeypatch, crop_pad, flip):
    """The GPU-resident path (draws up front, one gather per chunk of normalised NHWC data)
    gives exactly what the textbook does per batch: index the uint8 images, augment_batch
    with the same generator, normalise. Chunks of 2 batches exercise the chunk boundaries."""
    import msdnet.data.bundle as bundle_mod

    b = _array_bundle()
    b.crop_pad, b.flip = crop_pad, flip
    monkeypatch.setattr(bundle_mod, "CHUNK_BYTES", 2 * 5 * 3 * 4 * 4 * 4)
    gen = torch.Generator().manual_seed(3)
    got = list(iterate_batches(b, "train", 5, shuffle=True, augment=True, generator=gen))
    gen = torch.Generator().manual_seed(3)
    order = torch.randperm(23, generator=gen)
    assert len(got) == 5
    for i, (x, y, ids) in enumerate(got):
        idx = order[5 * i:5 * i + 5]
        want = normalize(augment_batch(b.train.images[idx], crop_pad, flip, gen), b.mean, b.std)
        assert torch.equal(ids, b.train.ids[idx]) and torch.equal(y, b.train.labels[idx])
        assert x.is_contiguous() and torch.equal(x, want), i


def test_batches_come_in_the_asked_memory_format():
    b = _array_bundle()
    for fmt in (torch.channels_last, torch.contiguous_format):
        for augment in (False, True):
            x, _, ids = next(iterate_batches(b, "train", 6, shuffle=True, augment=augment,
                                             memory_format=fmt))
            assert x.shape == (6, 3, 4, 4) and x.is_contiguous(memory_format=fmt)
            if not augment:
                assert torch.equal(x, normalize(b.train.images[ids - 100], b.mean, b.std))


# ---------------------------------------------------------------- DataConfig


def test_config_unknown_key():
    with pytest.raises(ConfigError, match="run.yaml: unknown key 'batch'"):
        from_dict(DataConfig, {"name": "digits", "batch": 3}, "run.yaml")


@pytest.mark.parametrize("bad", [{"val_size": 1.5}, {"val_size": -1}, {"val_size": True},
                                 {"test_size": 1.0}, {"name": "mnist"}, {"name": "imagenet"}])
def test_config_bad_values(bad):
    with pytest.raises(ConfigError, match="run.yaml"):
        from_dict(DataConfig, {"name": "digits", **bad}, "run.yaml")


def test_config_accepts_counts_and_shares():
    assert from_dict(DataConfig, {"name": "cifar10", "val_size": 5000}, "x").val_size == 5000
    assert from_dict(DataConfig, {"name": "digits", "val_size": 0.1}, "x").val_size == 0.1
    assert from_dict(DataConfig, {"name": "digits", "val_size": 0}, "x").val_size == 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_batches_equal_cpu_batches():
    """The GPU-resident path on CUDA gives the CPU path's batches (same generator, same draws)."""
    b = _array_bundle()
    got = {}
    for dev in ("cpu", "cuda"):
        gen = torch.Generator().manual_seed(5)
        got[dev] = [(x.cpu(), y.cpu(), ids) for x, y, ids in iterate_batches(
            b, "train", 5, shuffle=True, augment=True, generator=gen, device=dev,
            memory_format=torch.channels_last)]
    for (xc, yc, ic), (xg, yg, ig) in zip(got["cpu"], got["cuda"]):
        assert torch.equal(ic, ig) and torch.equal(yc, yg)
        assert torch.allclose(xc, xg, atol=1e-6)
