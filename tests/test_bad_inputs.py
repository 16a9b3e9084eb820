"""Bad input is one line naming the file and the fix (exit 2), never a traceback or a silent
wrong answer: configs, model vs data, predictions files, checkpoints, absurd model sizes, and
validation / test files that do not belong together."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from msdnet.evaluation.analysis.budgeted import BudgetedEvaluator
from msdnet.evaluation.analysis.synthetic import make_predictions
from msdnet.cli import main
from msdnet.core.errors import DataError
from msdnet.inference.predictions import Predictions, load, save
from msdnet.training.train import load_checkpoint, make_run_config, train

from conftest import TINY_MSDNET, tiny_recipe


def _one_line(capsys, argv, *needles) -> str:
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert str(needle) in err, (needle, err)
    return err


def _configs(tmp: Path, model: dict | None = None, recipe: dict | None = None) -> tuple[Path, Path]:
    m, r = tmp / "model.yaml", tmp / "recipe.yaml"
    m.write_text(yaml.safe_dump(model if model is not None else TINY_MSDNET))
    r.write_text(yaml.safe_dump(recipe if recipe is not None else tiny_recipe(tmp / "data", epochs=1)))
    return m, r


def _train_argv(m: Path, r: Path, out: Path) -> list:
    return ["train", m, "--recipe", r, "--out", out]


# ---- config files -----------------------------------------------------------------------------

@pytest.mark.parametrize("which", ["model", "recipe"])
def test_non_utf8_config_file(tmp_path, capsys, which):
    m, r = _configs(tmp_path)
    target = m if which == "model" else r
    target.write_bytes(target.read_bytes() + b"# caf\xe9 \xff\n")
    _one_line(capsys, _train_argv(m, r, tmp_path / "run"), target, "UTF-8")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("section, key, value", [
    ("train", "lr", ".nan"), ("train", "lr", ".inf"), ("train", "lr_gamma", "-.inf"),
    ("data", "val_size", ".nan"), ("model", "reduction", ".nan"),
])
def test_non_finite_float_in_a_config(tmp_path, capsys, section, key, value):
    m, r = _configs(tmp_path)
    target = m if section == "model" else r
    if section == "model":
        m.write_text(m.read_text() + f"{key}: {value}\n")
    else:
        recipe = yaml.safe_load(r.read_text())
        recipe[section][key] = "PLACEHOLDER"
        r.write_text(yaml.safe_dump(recipe).replace("PLACEHOLDER", value))
    _one_line(capsys, _train_argv(m, r, tmp_path / "run"), target, key, "finite")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("text", ["train: [1, 2]", "train: 3", "data: [digits]"])
def test_recipe_section_that_is_not_a_mapping(tmp_path, capsys, text):
    m, r = _configs(tmp_path)
    recipe = yaml.safe_load(r.read_text())
    section = text.split(":")[0]
    recipe[section] = yaml.safe_load(text)[section]
    r.write_text(yaml.safe_dump(recipe))
    _one_line(capsys, _train_argv(m, r, tmp_path / "run"), r, f"'{section}'", "mapping")


def test_set_with_a_section_that_is_not_a_mapping_is_one_line(tmp_path, capsys):
    m, r = _configs(tmp_path)
    r.write_text(r.read_text() + "model: [1, 2]\n")
    _one_line(capsys, _train_argv(m, r, tmp_path / "run") + ["--set", "model.dense=false"], r, "mapping")


# ---- the model against the data -----------------------------------------------------------------

@pytest.mark.parametrize("size, what", [([3, 32, 32], "image size"), ([1, 16, 16], "channels")])
def test_model_input_size_must_match_the_data(tmp_path, capsys, size, what):
    m, r = _configs(tmp_path, model={**TINY_MSDNET, "input_size": size})
    err = _one_line(capsys, _train_argv(m, r, tmp_path / "run"), m, "input_size", "[3, 16, 16]", what)
    assert "recipe" in err
    assert not (tmp_path / "run").exists()


def test_model_with_fewer_classes_than_the_data(tmp_path, capsys):
    m, r = _configs(tmp_path, model={**TINY_MSDNET, "num_classes": 5})
    _one_line(capsys, _train_argv(m, r, tmp_path / "run"), m, "num_classes 5", "num_classes: 10")
    assert not (tmp_path / "run").exists()


# ---- absurd model sizes -------------------------------------------------------------------------

@pytest.mark.parametrize("override, knob", [
    ({"n_blocks": 1000}, "n_blocks"),
    ({"n_blocks": 1000, "step": 2}, "n_blocks"),
    ({"growth_rate": 1_000_000}, "growth_rate"),
    ({"n_channels": 10 ** 12}, "n_channels"),
])
def test_absurd_model_size_is_refused_quickly(tmp_path, capsys, override, knob):
    m, _ = _configs(tmp_path, model={**TINY_MSDNET, **override})
    t0 = time.perf_counter()
    err = _one_line(capsys, ["cost", m], m, knob, "lower")
    assert time.perf_counter() - t0 < 5.0
    assert "parameters" in err or "layers" in err


def test_absurd_depth_of_a_baseline_is_refused(tmp_path, capsys):
    cfg = {"arch": "fractalnet", "num_classes": 10, "input_size": [3, 32, 32], "columns": 40}
    m, _ = _configs(tmp_path, model=cfg)
    _one_line(capsys, ["cost", m], m, "columns: 40", "layers")


def test_absurd_model_is_refused_before_training(tmp_path, capsys):
    m, r = _configs(tmp_path, model={**TINY_MSDNET, "growth_rate": 1_000_000})
    _one_line(capsys, _train_argv(m, r, tmp_path / "run"), m, "growth_rate")
    assert not (tmp_path / "run").exists()


# ---- predictions files --------------------------------------------------------------------------

def _npz(path: Path, **changes) -> Path:
    rng = np.random.default_rng(0)
    pr = make_predictions(rng, 2, 12, 4)
    arrays = {"logits": pr.logits, "labels": pr.labels, "exit_macs": pr.exit_macs,
              "sample_ids": pr.sample_ids, "meta": np.asarray('{"split": "test"}')}
    arrays.update(changes)
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


@pytest.mark.parametrize("key, value, needle", [
    ("logits", np.full((2, 12, 4), "1.0"), "floating"),
    ("labels", np.zeros(12, dtype=np.float64), "integer"),
    ("sample_ids", np.array(["a"] * 12), "integer"),
    ("exit_macs", np.array(["1", "2"]), "numeric"),
    ("meta", np.asarray("[1, 2]"), "JSON object"),
])
def test_predictions_file_with_wrong_dtypes(tmp_path, capsys, key, value, needle):
    bad = _npz(tmp_path / "test.npz", **{key: value})
    _one_line(capsys, ["anytime", "--test", bad], bad, key if key != "meta" else "meta", needle)


def test_predictions_file_with_object_logits(tmp_path, capsys):
    obj = np.empty((2, 12, 4), dtype=object)
    obj[...] = 1.0
    bad = tmp_path / "test.npz"
    with open(bad, "wb") as f:
        np.savez(f, logits=obj, labels=np.zeros(12, np.int64), exit_macs=np.array([1.0, 2.0]),
                 sample_ids=np.arange(12), meta=np.asarray("{}"))
    _one_line(capsys, ["anytime", "--test", bad], bad)


# ---- trained checkpoints ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One 1-epoch run and its predictions (val.npz, test.npz)."""
    tmp = tmp_path_factory.mktemp("badrun")
    cfg = make_run_config(TINY_MSDNET, tiny_recipe(tmp / "data", epochs=1))
    train(cfg, tmp / "run", log=lambda *_: None)
    assert main(["predict", str(tmp / "run" / "checkpoint.pt"), "--out-dir", str(tmp / "preds")]) == 0
    return tmp


def test_checkpoint_whose_config_does_not_match_its_weights(run, tmp_path, capsys):
    ckpt = load_checkpoint(run / "run" / "checkpoint.pt")
    ckpt["config"]["model"]["growth_rate"] = 4
    bad = tmp_path / "altered.pt"
    torch.save(ckpt, bad)
    _one_line(capsys, ["predict", bad, "--out-dir", tmp_path / "p"], bad, "do not match", "msdnet train")
    assert not (tmp_path / "p").exists()
    _one_line(capsys, ["infer", bad, "--thresholds", "0.5"], bad, "do not match")


@pytest.mark.parametrize("item", ["split_seed=5", "val_size=0.3", "image_size=32", "name=synthetic",
                                  "test_size=0.1"])
def test_predict_set_data_may_only_move_the_data(run, tmp_path, capsys, item):
    ckpt = run / "run" / "checkpoint.pt"
    key = item.split("=")[0]
    _one_line(capsys, ["predict", ckpt, "--out-dir", tmp_path / "p", "--set-data", item],
              f"--set data.{key}", "root, imagenet_dir")          # the deprecated spelling still works
    assert not (tmp_path / "p").exists()
    _one_line(capsys, ["predict", ckpt, "--out", tmp_path / "p", "--set", f"data.{item}"],
              f"--set data.{key}", "root, imagenet_dir")
    assert not (tmp_path / "p").exists()
    _one_line(capsys, ["infer", ckpt, "--thresholds", "0.5", "--set-data", item], f"--set data.{key}")


def test_predict_set_data_root_is_allowed(run, tmp_path, capsys):
    ckpt = run / "run" / "checkpoint.pt"
    root = load_checkpoint(ckpt)["config"]["data"]["root"]
    assert main(["predict", str(ckpt), "--out-dir", str(tmp_path / "p"), "--splits", "test",
                 "--set-data", f"root={root}"]) == 0
    assert load(tmp_path / "p" / "test.npz").meta["split"] == "test"


def test_budgeted_refuses_the_test_file_as_val(run, capsys):
    test = run / "preds" / "test.npz"
    _one_line(capsys, ["budgeted", "--val", test, "--test", test], test, "'test' split", "val file")
    val = run / "preds" / "val.npz"
    _one_line(capsys, ["budgeted", "--val", val, "--test", val], val, "'val' split", "test file")
    assert main(["budgeted", "--val", str(val), "--test", str(test), "--json"]) == 0


def test_anytime_refuses_a_val_file_as_test(run, capsys):
    val = run / "preds" / "val.npz"
    _one_line(capsys, ["anytime", "--test", val], val, "'val' split")


def test_infer_refuses_a_test_file_as_val(run, capsys):
    ckpt, test = run / "run" / "checkpoint.pt", run / "preds" / "test.npz"
    _one_line(capsys, ["infer", ckpt, "--val", test, "--p", "0.5"], test, "'test' split")
    _one_line(capsys, ["infer", ckpt, "--val", test, "--p", "0.5", "--split", "val"], test, "'test' split")


def test_infer_refuses_a_val_file_of_another_config(run, tmp_path, capsys):
    ckpt = run / "run" / "checkpoint.pt"
    val = load(run / "preds" / "val.npz")
    del val.meta["checkpoint_sha256"]
    val.meta["config_hash"] = "0" * 16
    other = tmp_path / "val.npz"
    save(other, val)
    _one_line(capsys, ["infer", ckpt, "--val", other, "--p", "0.5"], other, "config_hash")
    val.meta["config_hash"] = load(run / "preds" / "val.npz").meta["config_hash"]
    val.meta["split_seed"] = 7
    save(other, val)
    _one_line(capsys, ["infer", ckpt, "--val", other, "--p", "0.5"], other, "split_seed")


# ---- validation and test files that do not belong together (synthetic) -------------------------

def _pair(tmp_path: Path, val_meta: dict | None = None, test_meta: dict | None = None,
          same_ids: bool = False) -> tuple[Path, Path]:
    rng = np.random.default_rng(1)
    base = {"dataset": "digits", "split_seed": 0, "config_hash": "h1", "checkpoint_sha256": "s1",
            "data": {"name": "digits", "root": "data", "split_seed": 0, "val_size": 0.2}}
    val = make_predictions(rng, 3, 40, 5, meta={**base, "split": "val", **(val_meta or {})})
    test = make_predictions(rng, 3, 40, 5, meta={**base, "split": "test", **(test_meta or {})})
    test.exit_macs = val.exit_macs.copy()
    if not same_ids:
        test.sample_ids = test.sample_ids + 1000
    vp, tp = tmp_path / "v.npz", tmp_path / "t.npz"
    save(vp, val)
    save(tp, test)
    return vp, tp


def test_matching_synthetic_pair_is_accepted(tmp_path, capsys):
    vp, tp = _pair(tmp_path, val_meta={"data": {"name": "digits", "root": "/elsewhere", "split_seed": 0,
                                                "val_size": 0.2}})
    assert main(["budgeted", "--val", str(vp), "--test", str(tp), "--json"]) == 0


@pytest.mark.parametrize("val_meta, test_meta, same_ids, needles", [
    ({"config_hash": "h2"}, {}, False, ["different runs", "config_hash"]),
    ({"checkpoint_sha256": "s2"}, {}, False, ["different runs", "checkpoint_sha256"]),
    ({}, {"split_seed": 3}, False, ["different data", "split_seed"]),
    ({}, {"dataset": "cifar10"}, False, ["different data", "dataset"]),
    ({}, {"data": {"name": "digits", "root": "data", "split_seed": 0, "val_size": 0.3}}, False,
     ["different data", "val_size"]),
    ({}, {}, True, ["same images"]),
])
def test_budgeted_refuses_a_mismatched_pair(tmp_path, capsys, val_meta, test_meta, same_ids, needles):
    vp, tp = _pair(tmp_path, val_meta, test_meta, same_ids)
    _one_line(capsys, ["budgeted", "--val", vp, "--test", tp], vp, tp, *needles)
    _one_line(capsys, ["budgeted", "--model", "m", vp, tp], *needles)


def test_the_pair_check_is_inside_the_evaluator(tmp_path):
    """The workflow builds BudgetedEvaluator(val, test) itself: it gets the same check."""
    vp, tp = _pair(tmp_path, test_meta={"split_seed": 3})
    with pytest.raises(DataError, match="split_seed"):
        BudgetedEvaluator(load(vp), load(tp))
    with pytest.raises(DataError, match="'test' split"):
        BudgetedEvaluator(load(tp), load(tp))


def test_files_without_provenance_are_checked_on_what_they_have(tmp_path):
    rng = np.random.default_rng(2)
    val, test = make_predictions(rng, 2, 10, 3), make_predictions(rng, 2, 10, 3)
    test.exit_macs = val.exit_macs
    BudgetedEvaluator(val, test)                              # no meta: shapes only
    val.meta, test.meta = {"split": "val"}, {"split": "val"}
    with pytest.raises(DataError, match="'val' split but is given as the test file"):
        BudgetedEvaluator(val, test)


# ---- ensembles ----------------------------------------------------------------------------------

def _member(tmp_path: Path, name: str, cost: float, **meta) -> str:
    rng = np.random.default_rng(3)
    pr = make_predictions(rng, 1, 20, 4, labels=np.arange(20) % 4,
                          meta={"split": "test", "dataset": "digits", "split_seed": 0, **meta})
    pr.exit_macs = np.array([cost])
    path = tmp_path / name
    save(path, pr)
    return str(path)


@pytest.mark.parametrize("meta, needle", [
    ({"split": "val"}, "split"), ({"dataset": "cifar10"}, "dataset"), ({"split_seed": 4}, "split_seed"),
])
def test_ensemble_members_must_share_split_and_data(tmp_path, capsys, meta, needle):
    a = _member(tmp_path, "a.npz", 1.0)
    b = _member(tmp_path, "b.npz", 2.0, **meta)
    _one_line(capsys, ["ensemble", a, b, "--out", tmp_path / "e.npz"], "a.npz", "b.npz", needle)
    assert not (tmp_path / "e.npz").exists()


def test_ensembles_of_different_members_are_not_a_pair(tmp_path, capsys):
    def ens(split: str, hashes: list[str]) -> Path:
        files = []
        for i, h in enumerate(hashes):
            files.append(_member(tmp_path, f"{split}{i}.npz", float(i + 1), split=split, config_hash=h,
                                 checkpoint_sha256=h))
        out = tmp_path / f"ens_{split}_{'_'.join(hashes)}.npz"
        assert main(["ensemble", *files, "--out", str(out)]) == 0
        pr = load(out)
        if split == "test":                       # other images than the val members
            pr.sample_ids = pr.sample_ids + 1000
            save(out, pr)
        return out

    v, t_same, t_other = ens("val", ["a", "b"]), ens("test", ["a", "b"]), ens("test", ["a", "c"])
    capsys.readouterr()
    assert main(["budgeted", "--val", str(v), "--test", str(t_same), "--json"]) == 0
    capsys.readouterr()
    _one_line(capsys, ["budgeted", "--val", v, "--test", t_other], "ensembles of different runs")


def test_saved_predictions_check_dtypes_in_memory_too():
    pr = Predictions(logits=np.zeros((1, 2, 3), dtype=np.int64), labels=np.zeros(2, np.int64),
                     exit_macs=np.array([1.0]), sample_ids=np.arange(2))
    with pytest.raises(DataError, match="floating"):
        pr.check("x.npz")
