"""msdnet predict: the predictions file round trip, its meta, and msdnet anytime on it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from msdnet.cli import main
from msdnet.models.cost import count_costs
from msdnet.data import DataConfig, iterate_batches, load_data
from msdnet.core.io import sha256_file
from msdnet.models import build
from msdnet.inference.predictions import load
from msdnet.training.train import make_run_config, train

from conftest import TINY_MSDNET, tiny_recipe


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pred")
    run = make_run_config(TINY_MSDNET, tiny_recipe(tmp / "data", epochs=1))
    train(run, tmp / "run", log=lambda *_: None)
    return tmp, run


def test_predict_writes_contract(trained, capsys):
    tmp, run = trained
    ckpt = tmp / "run" / "checkpoint.pt"
    assert main(["predict", str(ckpt), "--out-dir", str(tmp / "preds")]) == 0
    model = build(TINY_MSDNET)
    macs = [c.macs for c in count_costs(model)]
    bundle = load_data(run.data)
    for split in ("val", "test"):
        preds = load(tmp / "preds" / f"{split}.npz")
        n = len(getattr(bundle, split))
        assert preds.logits.shape == (2, n, 10) and preds.logits.dtype == np.float32
        assert preds.labels.shape == (n,) and preds.sample_ids.shape == (n,)
        assert preds.exit_macs.tolist() == macs
        assert preds.meta["split"] == split and preds.meta["dataset"] == "digits"
        assert preds.meta["checkpoint_sha256"] == sha256_file(ckpt)
        assert preds.meta["config_hash"] == run.hash
        assert preds.meta["code_version"]
        assert len(preds.meta["exit_macs_lazy"]) == 2
    # the recorded logits are the model's own on the unaugmented split
    state = torch.load(ckpt, weights_only=True)["model"]
    model.load_state_dict(state)
    model.eval()
    x, y, ids = next(iterate_batches(bundle, "test", 8))
    with torch.no_grad():
        want = model(x)[1].numpy()
    got = load(tmp / "preds" / "test.npz")
    np.testing.assert_allclose(got.logits[1, :8], want, rtol=1e-5, atol=1e-5)
    assert got.sample_ids[:8].tolist() == ids.tolist() and got.labels[:8].tolist() == y.tolist()


def test_anytime_on_predictions(trained, capsys):
    tmp, _ = trained
    main(["predict", str(tmp / "run" / "checkpoint.pt"), "--out-dir", str(tmp / "p2"), "--splits", "test"])
    capsys.readouterr()
    assert main(["anytime", "--test", str(tmp / "p2" / "test.npz"), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    preds = load(tmp / "p2" / "test.npz")
    assert [r["exit"] for r in rows] == [1, 2]
    for k, row in enumerate(rows):
        acc = 100.0 * np.mean(preds.logits[k].argmax(1) == preds.labels)
        assert row["accuracy"] == pytest.approx(acc)
        assert row["macs"] == preds.exit_macs[k]


def test_unfinished_checkpoint_is_refused(tmp_path, capsys):
    run = make_run_config(TINY_MSDNET, tiny_recipe(tmp_path / "data", epochs=3))
    ckpt = train(run, tmp_path / "run", log=lambda *_: None)
    ckpt["finished"] = False
    torch.save(ckpt, tmp_path / "run" / "checkpoint.pt")
    assert main(["predict", str(tmp_path / "run" / "checkpoint.pt"), "--out-dir", str(tmp_path / "p")]) == 2
    assert "re-run `msdnet train`" in capsys.readouterr().err
    assert not (tmp_path / "p" / "val.npz").exists()


def test_corrupt_predictions_file(tmp_path, capsys):
    bad = tmp_path / "test.npz"
    bad.write_bytes(b"PK\x03\x04 broken")
    assert main(["anytime", "--test", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert str(bad) in err and len(err.splitlines()) == 1
