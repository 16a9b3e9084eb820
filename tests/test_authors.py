"""The authors' PyTorch checkpoints (kalviny/MSDNet-PyTorch) imported with `msdnet import-authors`,
and `msdnet.load_model`.

The tests write checkpoints in the authors' layout themselves: `authors_keys` lists every key and
shape their `MSDNet` module would have, following the structure of their `models/msdnet.py`
(its blocks, layers, transitions and classifiers) independently of our name mapping
(`msdnet.inference.authors.authors_key_map`). Their state_dict and ours list the same tensors in the same
order, so a network of ours exported by position is what their code would have saved.
"""

from __future__ import annotations

import argparse
import hashlib
import math
from collections import OrderedDict
from pathlib import Path

import pytest
import torch

import msdnet
from msdnet.inference.authors import convert_state_dict
from msdnet.planning.runs import import_key
from msdnet.cli import main
from msdnet.core.config import load_yaml
from msdnet.core.errors import MsdnetError
from msdnet.models import build
from msdnet.training.train import final_artifact

from conftest import REPO

MODELS = REPO / "config" / "models"
CIFAR = ["msdnet-anytime-cifar100.yaml", "msdnet-budgeted-b4-cifar100.yaml"]
IMAGENET = ["msdnet-imagenet-k4.yaml", "msdnet-imagenet-k7.yaml"]


def authors_keys(cfg: dict, nbt: bool = True) -> list[tuple[str, tuple[int, ...]]]:
    """(key, shape) of every tensor of the authors' MSDNet built with the arguments that match
    our model config ``cfg`` (nBlocks, base, step, stepmode, nChannels, growthRate, grFactor,
    bnFactor, bottleneck, prune, reduction, data), in their state_dict order. ``nbt``: BatchNorm
    has num_batches_tracked (PyTorch >= 0.4.1)."""
    out: list[tuple[str, tuple[int, ...]]] = []
    gr, bnf, growth = cfg["gr_factor"], cfg["bn_factor"], cfg["growth_rate"]
    S, imagenet = len(gr), cfg["stem"] == "imagenet"

    def bn(p, c):
        out.extend([(p + "weight", (c,)), (p + "bias", (c,)), (p + "running_mean", (c,)),
                    (p + "running_var", (c,))] + ([(p + "num_batches_tracked", ())] if nbt else []))

    def conv(p, cin, cout, k, bias=False):
        out.append((p + "weight", (cout, cin, k, k)))
        if bias:
            out.append((p + "bias", (cout,)))

    def conv_basic(p, cin, cout, k):                   # their ConvBasic: net = conv, BN, ReLU
        conv(p + "net.0.", cin, cout, k)
        bn(p + "net.1.", cout)

    def conv_bn(p, cin, cout, width):                  # their ConvBN: [1x1, BN, ReLU,] 3x3, BN, ReLU
        inner, j = cin, 0
        if cfg["bottleneck"]:
            inner, j = min(cin, width * cout), 3
            conv(p + "net.0.", cin, inner, 1)
            bn(p + "net.1.", inner)
        conv(f"{p}net.{j}.", inner, cout, 3)
        bn(f"{p}net.{j + 1}.", cout)

    steps = [cfg["base"]] + [cfg["step"] if cfg["step_mode"] == "even" else cfg["step"] * i + 1
                             for i in range(1, cfg["n_blocks"])]
    total, n, layer = sum(steps), cfg["n_channels"], 0
    n_after = []
    for b, count in enumerate(steps):
        j = 0
        if b == 0:                                      # MSDNFirstLayer
            if imagenet:
                conv("blocks.0.0.layers.0.0.", 3, n * gr[0], 7, bias=True)
                bn("blocks.0.0.layers.0.1.", n * gr[0])
            else:
                conv_basic("blocks.0.0.layers.0.", 3, n * gr[0], 3)
            for s in range(1, S):
                conv_basic(f"blocks.0.0.layers.{s}.", n * gr[s - 1], n * gr[s], 3)
            j = 1
        for _ in range(count):
            layer += 1
            if cfg["prune"] == "min":
                ins, outs = min(S, total - layer + 2), min(S, total - layer + 1)
            else:
                interval = math.ceil(total / S)
                ins = S - math.floor(max(0, layer - 2) / interval)
                outs = S - math.floor((layer - 1) / interval)
            offset = S - outs
            for t in range(outs):                       # MSDNLayer.layers[t]: scale offset + t
                s, p = offset + t, f"blocks.{b}.{j}.layers.{t}."
                if t == 0 and ins == outs:              # ConvNormal
                    conv_bn(p + "conv_normal.", n * gr[s], growth * gr[s], bnf[s])
                else:                                   # ConvDownNormal
                    conv_bn(p + "conv_down.", n * gr[s - 1], growth * gr[s] // 2, bnf[s - 1])
                    conv_bn(p + "conv_normal.", n * gr[s], growth * gr[s] // 2, bnf[s])
            j += 1
            n += growth
            if cfg["reduction"] > 0 and (
                    (cfg["prune"] == "max" and ins > outs)
                    or (cfg["prune"] == "min" and layer in (math.floor(total / 3), math.floor(2 * total / 3)))):
                new = math.floor(cfg["reduction"] * n)
                for t in range(outs):                   # ParallelModule of ConvBasic 1x1
                    conv_basic(f"blocks.{b}.{j}.m.{t}.", n * gr[offset + t], new * gr[offset + t], 1)
                n, j = new, j + 1
        n_after.append(n)
    for k, n in enumerate(n_after):                    # classifiers come after every block
        c = n * gr[-1]
        width = c if imagenet else 128
        conv_basic(f"classifier.{k}.m.0.", c, width, 3)
        conv_basic(f"classifier.{k}.m.1.", width, width, 3)
        out += [(f"classifier.{k}.linear.weight", (cfg["num_classes"], width)),
                (f"classifier.{k}.linear.bias", (cfg["num_classes"],))]
    return out


def _random_weights(model: torch.nn.Module, seed: int = 1) -> None:
    """Every parameter and buffer random (BN statistics too), so a tensor put in the wrong place
    changes the logits even where shapes coincide."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.dtype == torch.long:
                t.fill_(int(torch.randint(1, 100, (), generator=g)))
            elif name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            else:
                t.copy_(torch.randn(t.shape, generator=g) * (0.1 if t.dim() > 1 else 0.5))


def _authors_checkpoint(model, cfg: dict, prefix: str = "module.", nbt: bool = True) -> dict:
    """The dict their main.py saves, with ``model``'s tensors under their names (by position)."""
    theirs = authors_keys(cfg, nbt)
    ours = [(k, v) for k, v in model.state_dict().items() if nbt or not k.endswith("num_batches_tracked")]
    assert len(theirs) == len(ours)
    for (their_key, shape), (our_key, value) in zip(theirs, ours):
        assert tuple(value.shape) == shape, (their_key, our_key)
    state = OrderedDict((prefix + k, v.clone()) for (k, _), (_, v) in zip(theirs, ours))
    return {"epoch": 299, "arch": "msdnet", "state_dict": state, "best_prec1": torch.tensor(73.5),
            "optimizer": {"state": {}, "param_groups": [{"lr": 0.001, "momentum": 0.9, "dampening": 0,
                                                         "weight_decay": 1e-4, "nesterov": False,
                                                         "params": [0, 1, 2]}]}}


def _one_line_error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


# -- the mapping: every key and shape, four configs -------------------------------------------------

@pytest.mark.parametrize("name", CIFAR + IMAGENET)
@pytest.mark.parametrize("prefix", ["module.", ""])
def test_every_authors_key_and_shape_maps_onto_our_network(name, prefix):
    cfg = load_yaml(MODELS / name)
    with torch.device("meta"):
        model = build(cfg)
    state = OrderedDict((prefix + k, torch.empty(shape, device="meta")) for k, shape in authors_keys(cfg))
    converted = convert_state_dict(state, model, "src", name)
    ours = model.state_dict()
    assert list(converted) == list(ours)
    assert all(converted[k].shape == ours[k].shape for k in ours)
    if "imagenet" in name:                       # the ImageNet stem's 7x7 conv keeps its bias
        assert "first.convs.0.0.bias" in converted


@pytest.mark.parametrize("name", CIFAR)
@pytest.mark.parametrize("prefix", ["module.", ""])
def test_imported_network_gives_the_same_logits_per_exit(name, prefix, tmp_path):
    cfg = load_yaml(MODELS / name)
    torch.manual_seed(0)
    original = build(cfg).eval()
    _random_weights(original)
    src = tmp_path / "model_best.pth.tar"
    torch.save(_authors_checkpoint(original, cfg, prefix), src)
    out = tmp_path / "imported.pt"
    assert main(["import-authors", str(src), "--config", str(MODELS / name), "--out", str(out)]) == 0

    model = msdnet.load_model(out)
    assert not model.training and model.num_exits == cfg["n_blocks"]
    x = torch.randn(2, *cfg["input_size"], generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        want, got = original(x), model(x)
    assert len(got) == len(want) == cfg["n_blocks"]
    for a, b in zip(want, got):
        torch.testing.assert_close(b, a, rtol=0, atol=0)

    art = torch.load(out, weights_only=True)
    blank = final_artifact({"model": {}, "config": {"train": {"epochs": 1}}, "config_hash": "", "epoch": 1,
                            "num_exits": 1, "finished": True, "metrics": []})
    assert set(art) == set(blank) | {"imported"} and art["format"] == blank["format"] == "msdnet-final-1"
    assert art["imported"]["source_sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    assert art["imported"]["from"] == "kalviny/MSDNet-PyTorch"
    assert art["imported"]["dataparallel"] is (prefix == "module.")
    assert art["imported"]["best_prec1"] == pytest.approx(73.5) and art["epoch"] == 300
    assert art["config"] == {"model": cfg}
    # the same file imported twice gives the same bytes
    again = tmp_path / "again.pt"
    assert main(["import-authors", str(src), "--config", str(MODELS / name), "--out", str(again)]) == 0
    assert again.read_bytes() == out.read_bytes()


def test_a_pytorch_040_checkpoint_without_num_batches_tracked_imports(tmp_path):
    cfg = load_yaml(MODELS / CIFAR[1])
    original = build(cfg).eval()
    _random_weights(original)
    src = tmp_path / "old.pth.tar"
    torch.save(_authors_checkpoint(original, cfg, nbt=False), src)
    out = tmp_path / "imported.pt"
    assert main(["import-authors", str(src), "--config", str(MODELS / CIFAR[1]), "--out", str(out)]) == 0
    model = msdnet.load_model(out)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        for a, b in zip(original(x), model(x)):
            torch.testing.assert_close(b, a, rtol=0, atol=0)


# -- one line for a checkpoint that does not fit ----------------------------------------------------

@pytest.fixture(scope="module")
def budgeted_src(tmp_path_factory):
    cfg = load_yaml(MODELS / CIFAR[1])
    torch.manual_seed(0)
    return cfg, _authors_checkpoint(build(cfg), cfg)


def test_a_shape_mismatch_names_the_key_and_both_shapes(budgeted_src, tmp_path, capsys):
    cfg, ckpt = budgeted_src
    state = OrderedDict(ckpt["state_dict"])
    key = "module.blocks.1.0.layers.0.conv_normal.net.0.weight"
    shape = list(state[key].shape)
    state[key] = torch.zeros(shape[0] + 1, *shape[1:])
    torch.save({**ckpt, "state_dict": state}, tmp_path / "bad.pth")
    err = _one_line_error(capsys, ["import-authors", str(tmp_path / "bad.pth"), "--config",
                                   str(MODELS / CIFAR[1]), "--out", str(tmp_path / "o.pt")])
    assert "blocks.1.0.layers.0.conv_normal.net.0.weight" in err
    assert str([shape[0] + 1, *shape[1:]]) in err and str(shape) in err
    assert not (tmp_path / "o.pt").exists()


def test_an_unknown_key_is_one_line(budgeted_src, tmp_path, capsys):
    cfg, ckpt = budgeted_src
    state = OrderedDict(ckpt["state_dict"])
    state["module.blocks.9.0.layers.0.conv_normal.net.0.weight"] = torch.zeros(1)
    torch.save({**ckpt, "state_dict": state}, tmp_path / "bad.pth")
    err = _one_line_error(capsys, ["import-authors", str(tmp_path / "bad.pth"), "--config",
                                   str(MODELS / CIFAR[1]), "--out", str(tmp_path / "o.pt")])
    assert "blocks.9.0.layers.0.conv_normal.net.0.weight" in err


def test_a_missing_key_and_another_config_are_one_line(budgeted_src, tmp_path, capsys):
    cfg, ckpt = budgeted_src
    state = OrderedDict(ckpt["state_dict"])
    del state["module.classifier.3.linear.bias"]
    torch.save({**ckpt, "state_dict": state}, tmp_path / "bad.pth")
    err = _one_line_error(capsys, ["import-authors", str(tmp_path / "bad.pth"), "--config",
                                   str(MODELS / CIFAR[1]), "--out", str(tmp_path / "o.pt")])
    assert "classifier.3.linear.bias" in err and "missing" in err
    torch.save(ckpt, tmp_path / "b4.pth")              # a b4 checkpoint against the b6 config
    err = _one_line_error(capsys, ["import-authors", str(tmp_path / "b4.pth"), "--config",
                                   str(MODELS / "msdnet-budgeted-b6-cifar100.yaml"), "--out", str(tmp_path / "o.pt")])
    assert "msdnet-budgeted-b6-cifar100.yaml" in err


def test_a_pickled_object_is_refused_and_not_run(budgeted_src, tmp_path, capsys):
    cfg, ckpt = budgeted_src
    torch.save({**ckpt, "args": argparse.Namespace(data="cifar100")}, tmp_path / "obj.pth")
    err = _one_line_error(capsys, ["import-authors", str(tmp_path / "obj.pth"), "--config",
                                   str(MODELS / CIFAR[1]), "--out", str(tmp_path / "o.pt")])
    assert "refused" in err


def test_an_authors_file_given_to_load_model_says_import_it(budgeted_src, tmp_path):
    cfg, ckpt = budgeted_src
    torch.save(ckpt, tmp_path / "theirs.pth")
    with pytest.raises(MsdnetError, match="import-authors"):
        msdnet.load_model(tmp_path / "theirs.pth")


def test_with_a_recipe_the_artifact_records_the_data_and_checks_the_planned_key(budgeted_src, tmp_path, capsys):
    from msdnet.planning.runs import resolve

    cfg, ckpt = budgeted_src
    src = tmp_path / "theirs.pth"
    torch.save(ckpt, src)
    recipe = REPO / "config" / "recipes" / "cifar.yaml"
    run = resolve(MODELS / CIFAR[1], recipe, ["data.root=elsewhere"])
    out = tmp_path / "o.pt"
    argv = ["import-authors", str(src), "--config", str(MODELS / CIFAR[1]), "--recipe", str(recipe),
            "--set", "data.root=elsewhere", "--out", str(out)]
    assert main([*argv, "--expect-key", import_key(str(src), run)]) == 0
    art = torch.load(out, weights_only=True)
    assert art["config"]["data"]["name"] == "cifar100" and art["config"]["data"]["root"] == "elsewhere"
    assert art["config"]["train"]["epochs"] == 300
    out.unlink()
    err = _one_line_error(capsys, [*argv, "--expect-key", "0" * 16])
    assert "0" * 16 in err and not out.exists()


# -- msdnet.load_model ------------------------------------------------------------------------------

def test_load_model_reads_a_trained_checkpoint_and_its_final_artifact(tmp_path):
    from conftest import TINY_MSDNET, tiny_recipe
    from msdnet.training.train import make_run_config, train

    run = make_run_config(TINY_MSDNET, tiny_recipe(tmp_path / "data", epochs=1))
    train(run, tmp_path / "run", log=lambda *_: None, final=tmp_path / "final.pt")
    x = torch.randn(3, 3, 16, 16)
    outs = []
    for path in (tmp_path / "run" / "checkpoint.pt", tmp_path / "final.pt"):
        model = msdnet.load_model(path)
        assert isinstance(model, msdnet.models.MultiExitModel) and not model.training
        assert next(model.parameters()).device.type == "cpu"
        with torch.no_grad():
            outs.append(model(x))
        assert len(outs[-1]) == model.num_exits == 2 and outs[-1][0].shape == (3, 10)
    for a, b in zip(*outs):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


# -- the authors' validation indices (data.holdout_indices) ---------------------------------------

def _index_file(path: Path, n: int, seed: int = 3) -> torch.Tensor:
    """A file in the authors' format: dataloader.py's torch.save(torch.randperm(len(train_set)))."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    torch.save(perm, path)
    return perm


def test_authors_split_holds_out_the_last_entries_of_their_permutation(tmp_path):
    from msdnet.data.splits import authors_split

    perm = _index_file(tmp_path / "index.pth", 20)
    idx = authors_split(tmp_path / "index.pth", 20, 5)
    assert idx.val.tolist() == sorted(perm[-5:].tolist())
    assert idx.train.tolist() == sorted(perm[:-5].tolist())
    assert idx.file == str(tmp_path / "index.pth")


@pytest.mark.parametrize("content, match", [
    (torch.arange(19), "19 indices"), (torch.zeros(20, dtype=torch.long), "not a permutation"),
    (torch.rand(20), "integer"), ({"index": torch.arange(20)}, "1-D integer"),
    (argparse.Namespace(x=1), "weights_only")])
def test_a_wrong_indices_file_is_one_line(tmp_path, content, match):
    from msdnet.data.splits import authors_split
    from msdnet.core.errors import DataError

    torch.save(content, tmp_path / "index.pth")
    with pytest.raises(DataError, match=match) as exc:
        authors_split(tmp_path / "index.pth", 20, 5)
    assert "\n" not in str(exc.value)


def test_cifar_with_holdout_indices_holds_out_their_images(tmp_path):
    from test_data import _write_cifar

    from msdnet.core.config import from_dict
    from msdnet.data import DataConfig, load_data

    _write_cifar(tmp_path / "data", "cifar100", per_batch=100)
    perm = _index_file(tmp_path / "index.pth", 100)
    cfg = from_dict(DataConfig, {"name": "cifar100", "root": str(tmp_path / "data"), "val_size": 10,
                                 "holdout_indices": str(tmp_path / "index.pth")})
    b = load_data(cfg)
    assert b.val.ids.tolist() == sorted(perm[-10:].tolist())
    assert b.train.ids.tolist() == sorted(perm[:-10].tolist())
    assert b.split_file == str(tmp_path / "index.pth")
    assert not (tmp_path / "data" / "cifar100" / "splits").exists()      # no split of ours drawn


def test_imagenet_with_holdout_indices_holds_out_their_images(tmp_path):
    from PIL import Image

    from msdnet.data import DataConfig, load_data

    root = tmp_path / "imagenet"
    for part in ("train", "val"):
        for cls in ("n01", "n02"):
            (root / part / cls).mkdir(parents=True)
            for i in range(3):
                Image.new("RGB", (8, 8), (i * 40, 0, 0)).save(root / part / cls / f"{i}.png")
    perm = _index_file(tmp_path / "index.pth", 6)
    b = load_data(DataConfig(name="imagenet", root=str(tmp_path / "data"), imagenet_dir=str(root),
                             val_size=2, holdout_indices=str(tmp_path / "index.pth")))
    assert b.val.indices == sorted(perm[-2:].tolist()) and b.train.indices == sorted(perm[:-2].tolist())
    with pytest.raises(MsdnetError, match="6 images"):
        torch.save(torch.randperm(7), tmp_path / "index.pth")
        load_data(DataConfig(name="imagenet", root=str(tmp_path / "data"), imagenet_dir=str(root),
                             val_size=2, holdout_indices=str(tmp_path / "index.pth")))


def test_holdout_indices_is_only_for_the_authors_data_sets():
    from msdnet.core.config import from_dict
    from msdnet.data import DataConfig
    from msdnet.core.errors import ConfigError

    with pytest.raises(ConfigError, match="holdout_indices"):
        from_dict(DataConfig, {"name": "digits", "holdout_indices": "index.pth"})
    with pytest.raises(ConfigError, match="holdout_indices"):
        from_dict(DataConfig, {"name": "cifar10", "val_size": 0, "holdout_indices": "index.pth"})


# -- keys added for this issue leave every existing run key as it was -------------------------------

# The data and train keys every run was hashed with before this keys were added: a key
# added since must be left out of the hashed dicts while it holds its default (compact_dict).
DATA_KEYS_BEFORE = {"name", "root", "imagenet_dir", "val_size", "test_size", "image_size", "split_seed",
                    "synthetic_images", "synthetic_classes", "hard_train_images", "hard_val_images",
                    "hard_test_images"}
TRAIN_KEYS_BEFORE = {"epochs", "batch_size", "lr", "momentum", "nesterov", "weight_decay", "lr_milestones",
                     "lr_gamma", "exit_weights", "seed", "eval_batch_size", "num_workers", "device",
                     "eval_every", "progress", "precision", "channels_last", "compile", "compile_mode"}


@pytest.mark.parametrize("preset", ["tiny.yaml", "paper-cifar100.yaml", "paper-imagenet.yaml"])
def test_new_keys_at_their_default_change_no_run_key(preset, monkeypatch):
    from msdnet.planning.runs import resolve, run_identity
    from msdnet.planning.workflow import Preset, validate_preset

    monkeypatch.chdir(REPO)
    p = Preset(validate_preset(load_yaml(REPO / "config" / preset), preset), preset)
    for m in p.models_needed():
        run = resolve(p.cfg["models"][m]["config"], p.cfg["recipe"], p.train_overrides(m))
        d = run.to_dict()                                   # what RunConfig.hash hashes
        assert set(d["data"]) == DATA_KEYS_BEFORE and set(d["train"]) == TRAIN_KEYS_BEFORE
        assert set(run_identity(run)["data"]) <= DATA_KEYS_BEFORE


def test_an_imported_model_predicts_on_the_authors_held_out_images(budgeted_src, tmp_path):
    """import-authors with a recipe, then msdnet predict: what the workflow's import_model and
    predict_model jobs run for a preset model with `checkpoint:`."""
    from test_data import _write_cifar

    from msdnet.inference.predictions import load

    cfg, ckpt = budgeted_src
    _write_cifar(tmp_path / "data", "cifar100", per_batch=100, n_test=12)
    perm = _index_file(tmp_path / "index.pth", 100)
    torch.save(ckpt, tmp_path / "theirs.pth")
    out = tmp_path / "runs" / "model.pt"
    assert main(["import-authors", str(tmp_path / "theirs.pth"), "--config", str(MODELS / CIFAR[1]),
                 "--recipe", str(REPO / "config" / "recipes" / "cifar.yaml"),
                 "--set", f"data.root={tmp_path / 'data'}", "--set", "data.val_size=10",
                 "--set", f"data.holdout_indices={tmp_path / 'index.pth'}", "--out", str(out)]) == 0
    assert main(["predict", str(out), "--out-dir", str(tmp_path / "pred"), "--batch-size", "64"]) == 0
    val, test = load(tmp_path / "pred" / "val.npz"), load(tmp_path / "pred" / "test.npz")
    assert sorted(val.sample_ids.tolist()) == sorted(perm[-10:].tolist())
    assert val.num_exits == test.num_exits == 4 and len(test) == 12
    assert val.meta["checkpoint_sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert val.meta["data"]["holdout_indices"] == str(tmp_path / "index.pth")
