"""Issue 19, "Nothing wrong passes silently": each case as it was found, now refused in one line
(or handled) instead of passing silently, losing a good output or running code from a data file."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from msdnet.core.errors import ConfigError, DataError, MsdnetError

REPO = Path(__file__).resolve().parents[1]


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    return err


# -- 4. nothing runs from a data file ---------------------------------------------------------------

class _Touch:
    """Unpickling this runs os.system("touch MARKER")."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_4_a_cifar_batch_that_would_run_code_is_refused_unrun(tmp_path, capsys):
    from msdnet.data.cifar import _read_batch

    marker = tmp_path / "PWNED"
    batch = tmp_path / "data_batch_1"
    batch.write_bytes(pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1],
                                    b"trap": _Touch(str(marker))}, protocol=2))
    with pytest.raises(DataError) as exc:
        _read_batch(batch, b"labels", 10)
    msg = str(exc.value)
    assert not marker.exists()
    assert str(batch) in msg and "posix.system" in msg and "\n" not in msg
    # a real batch (numpy arrays, any protocol) still loads
    for proto in (2, 5):
        batch.write_bytes(pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1]},
                                       protocol=proto))
        images, labels = _read_batch(batch, b"labels", 10)
        assert tuple(images.shape) == (2, 3, 32, 32) and labels.tolist() == [0, 1]


# -- 8. few-epoch lr schedule ------------------------------------------------------------------------

def test_8_one_epoch_trains_at_the_full_lr_and_longer_schedules_are_unchanged():
    from msdnet.training.train import TrainConfig, lr_at, lr_milestones

    one = TrainConfig(epochs=1, lr=0.1)
    assert lr_milestones(one) == [1, 1]                 # was [0, 1]: lr/10 from the start
    assert lr_at(0, one) == pytest.approx(0.1)
    for epochs in range(2, 300):
        cfg = TrainConfig(epochs=epochs, lr=0.1)
        assert lr_milestones(cfg) == [round(m * epochs) for m in cfg.lr_milestones]
    assert lr_milestones(TrainConfig(epochs=8)) == [4, 6]    # the default preset


# -- 1. read tables strictly -------------------------------------------------------------------------

ODD_LABELS = ["NA", "N/A", "None", "null", "007", "1e3", "2.50", "nan", "MSDNet"]


def _anytime_table(labels, seeds=(0,)):
    import pandas as pd

    rows = [{"model": lab, "name": f"m{i}", "seed": s, "exit": e, "macs": 1e6 * e, "params": 1e4,
             "accuracy": 50.0 + i + e} for i, lab in enumerate(labels) for s in seeds for e in (1, 2)]
    return pd.DataFrame(rows)


def test_1_labels_are_read_back_as_written(tmp_path):
    from msdnet.evaluation.analysis.common import write_csv
    from msdnet.figures.common import anytime_mean, check_anytime, read_table

    path = tmp_path / "anytime.csv"
    write_csv(_anytime_table(ODD_LABELS), path)
    df = check_anytime(read_table(path), str(path))
    assert list(dict.fromkeys(df["model"])) == ODD_LABELS
    assert list(dict.fromkeys(anytime_mean(df)["model"])) == ODD_LABELS
    assert df["accuracy"].dtype == float and df["seed"].dtype.kind == "i"


def test_1_a_truncated_table_is_refused_naming_file_and_row(tmp_path):
    from msdnet.evaluation.analysis.common import write_csv
    from msdnet.figures.common import check_anytime, read_table

    path = tmp_path / "anytime.csv"
    write_csv(_anytime_table(["MSDNet", "ResNet^MC"], seeds=(0, 1, 2)), path)
    data = path.read_bytes()
    cut = data[: int(0.6 * len(data))]
    cut = cut[: cut.rindex(b"\n") + 1] + b"MSDNet,"           # a half row, as a full disk leaves it
    path.write_bytes(cut)
    with pytest.raises(DataError) as exc:
        check_anytime(read_table(path), str(path))
    msg = str(exc.value)
    assert str(path) in msg and "row" in msg and "\n" not in msg
    # a number that is not finite is refused too
    df = _anytime_table(["MSDNet"])
    df.loc[1, "accuracy"] = float("inf")
    write_csv(df, path)
    with pytest.raises(DataError, match=r"row 2 .*accuracy"):
        check_anytime(read_table(path), str(path))


def test_1_a_figure_that_would_drop_a_curve_or_seed_refuses(tmp_path, capsys):
    from msdnet.cli import main
    from msdnet.evaluation.analysis.common import write_csv
    from msdnet.planning.runs import key_path, write_key

    table = tmp_path / "anytime.csv"
    write_csv(_anytime_table(["MSDNet", "ResNet^MC"], seeds=(0, 1)), table)
    spec = {"figure": "anytime", "reference_dataset": None,
            "tables": [{"table": "anytime", "figure": "anytime",
                        "section": {"MSDNet": "msdnet", "ResNet^MC": "resnet-mc", "DenseNet^MC": "d"},
                        "sources": {"msdnet": {"0": "x", "1": "x"}, "resnet-mc": {"0": "x", "1": "x"},
                                    "d": {"0": "x"}}}]}
    key = write_key(key_path(tmp_path, "anytime", spec), spec)
    out = tmp_path / "fig"
    assert main(["figure", "anytime", "--table", str(table), "--key", str(key), "--out", str(out)]) == 2
    assert "DenseNet^MC" in _one_line(capsys) and not (tmp_path / "fig.png").exists()
    spec["tables"][0]["section"].pop("DenseNet^MC")
    spec["tables"][0]["sources"]["msdnet"]["2"] = "x"                  # a seed the table lacks
    key = write_key(key_path(tmp_path, "anytime", spec), spec)
    assert main(["figure", "anytime", "--table", str(table), "--key", str(key), "--out", str(out)]) == 2
    assert "'MSDNet' seed 2" in _one_line(capsys)
    spec["tables"][0]["sources"]["msdnet"].pop("2")
    key = write_key(key_path(tmp_path, "anytime", spec), spec)
    assert main(["figure", "anytime", "--table", str(table), "--key", str(key), "--out", str(out)]) == 0
    assert (tmp_path / "fig.png").exists()


def test_1_colours_ignore_case_and_are_distinct_within_a_figure():
    from msdnet.figures import style

    assert style.colour("MSDNet") == style.colour("msdnet") == style.colour("MSDNET")
    assert style.marker("MSDNet") == style.marker("msdnet")
    assert style.colour("My Net") == style.colour("my net") and style.marker("My Net") == style.marker("my net")
    labels = ["MSDNet", "ResNet^MC"] + [f"custom net {i}" for i in range(8)]
    with style.figure_labels(labels):
        colours = [style.colour(n) for n in labels]
        markers = [style.marker(n) for n in labels]
    assert len(set(colours)) == len(labels) and len(set(markers)) == len(labels)
    assert colours[0] == style.colour("MSDNet")                   # fixed styles never move


# -- 2. presentation validated before any job runs ---------------------------------------------------

def _tiny():
    from msdnet.core.config import load_yaml

    return load_yaml(REPO / "config" / "tiny.yaml")


@pytest.mark.parametrize("change,expected", [
    (lambda c: c["figures"]["anytime"].update({"": "msdnet"}), "is empty"),
    (lambda c: c["figures"]["anytime"].update({"x" * 81: "msdnet"}), "81 characters"),
    (lambda c: c["figures"]["anytime"].update({"msdnet": "msdnet"}), "differ only in case"),
    (lambda c: c["figures"]["anytime"].update({r"$\foo$": "msdnet"}), "not valid mathtext"),
    (lambda c: c["figures"]["staircase"]["ResNet"]["runs"].update({1.5: "resnet"}), "in (0, 1)"),
    (lambda c: c["figures"]["staircase"]["ResNet"]["runs"].update({"deep": "resnet"}), "in (0, 1)"),
    (lambda c: c.update({"seeds": [18446744073709551616]}), "maximum"),
    (lambda c: c.update({"seeds": [2**32 - 1]}), "out of range"),    # the ensemble's copy: + 1000
])
def test_2_presentation_is_refused_at_planning(monkeypatch, change, expected):
    from msdnet.planning.workflow import plan

    monkeypatch.chdir(REPO)
    cfg = _tiny()
    change(cfg)
    with pytest.raises(ConfigError) as exc:
        plan(cfg, "tiny.yaml")
    assert expected in str(exc.value) and "\n" not in str(exc.value)
    ok = _tiny()
    ok["figures"]["anytime"]["Cost in $\\$$"] = "msdnet"             # valid mathtext passes
    plan(ok, "tiny.yaml")


# -- 3. a failed job never loses a good output ---------------------------------------------------------

def test_3_table_figure_and_notebook_outputs_survive_a_failed_rerun(tmp_path):
    """The rules that rebuild outputs from earlier ones (table, figure, notebook) flag every output
    update(): Snakemake backs the old file up and restores it when the job fails (instead of
    deleting it before the job and again after the failure). Shown here on a one-rule workflow
    with the Snakemake the project runs."""
    import re
    import subprocess
    import sys

    rules = {"table": "analyze.smk", "figure": "figures.smk", "notebook": "notebooks.smk"}
    for rule, smk in rules.items():
        text = (REPO / "workflow" / "rules" / smk).read_text()
        block = text[text.index(f"rule {rule}:"):]
        block = block[block.index("output:"):block.index("log:")]
        declared = [ln for ln in block.splitlines()[1:] if re.match(r"^ {8}[^ #)]", ln)]
        assert declared and all(re.match(r"^ {8}(\w+=)?update\(", ln) for ln in declared), (rule, block)
    (tmp_path / "Snakefile").write_text(
        'rule t:\n    output: update("out.csv")\n    shell: "echo half > {output} && exit 1"\n')
    (tmp_path / "out.csv").write_text("good\n")
    snakemake = Path(sys.executable).parent / "snakemake"
    out = subprocess.run([str(snakemake), "--cores", "1", "--forcerun", "t", "out.csv"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert (tmp_path / "out.csv").read_text() == "good\n"


def test_3_a_full_disk_during_msdnet_notebook_leaves_the_old_notebooks_and_no_stray_file(tmp_path, monkeypatch):
    import errno

    import nbformat
    import papermill

    from msdnet.commands import notebook

    src = tmp_path / "nb.py"
    src.write_text("# %%\nx = 1\n")
    out_dir = tmp_path / "notebooks"
    out_dir.mkdir()
    out = out_dir / "overview.ipynb"
    out.write_text("old ipynb")
    (out_dir / "overview.py").write_text("old py")

    def fake_execute(inp, outp, **kwargs):
        Path(outp).write_text(Path(inp).read_text())

    real_write = nbformat.write

    def full_disk(nb, fp, *a, **k):
        if str(fp).endswith(".tmp"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(nb, fp, *a, **k)

    monkeypatch.setattr(papermill, "execute_notebook", fake_execute)
    monkeypatch.setattr(nbformat, "write", full_disk)
    with pytest.raises(OSError):
        notebook.execute(src, out)
    assert sorted(p.name for p in out_dir.iterdir()) == ["overview.ipynb", "overview.py"]
    assert out.read_text() == "old ipynb"


# -- 5. remaining raw failures, one clear line each ----------------------------------------------------

def test_5_a_bogus_device_is_one_line(tmp_path, capsys):
    import msdnet
    from msdnet.cli import main

    with pytest.raises(MsdnetError, match="'bogus' is not a device name"):
        msdnet.load_model(tmp_path / "model.pt", device="bogus")
    with pytest.raises(MsdnetError, match="CPU or CUDA"):
        msdnet.load_model(tmp_path / "model.pt", device="meta")
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(b"")
    assert main(["predict", str(ckpt), "--device", "bogus", "--out-dir", str(tmp_path / "p")]) == 2
    assert "bogus" in _one_line(capsys)


def test_5_cost_of_a_huge_input_counts_on_the_meta_device(tmp_path):
    import time

    import yaml

    from msdnet.commands.cost import cost_report

    cfg = yaml.safe_load((REPO / "config/models/msdnet-anytime-cifar100.yaml").read_text())
    small = tmp_path / "small.yaml"
    small.write_text(yaml.safe_dump(cfg))
    cfg["input_size"] = [3, 4096, 4096]
    huge = tmp_path / "huge.yaml"
    huge.write_text(yaml.safe_dump(cfg))
    start = time.monotonic()
    report = cost_report(str(huge))
    assert time.monotonic() - start < 60
    ref = cost_report(str(small))
    assert [e["params"] for e in report["exits"]] == [e["params"] for e in ref["exits"]]
    # MACs grow with the pixels (the stem halves 4096 the same way it would on the CPU)
    assert report["exits"][-1]["macs"] > 10_000 * ref["exits"][-1]["macs"]


def test_5_cluster_profiles_refuse_missing_environment_and_sbatch(monkeypatch, capsys):
    from msdnet.cli import main

    monkeypatch.chdir(REPO)
    monkeypatch.setattr(os, "execv", lambda *a: pytest.fail("snakemake was started"))
    monkeypatch.delenv("MSDNET_S3_PREFIX", raising=False)
    monkeypatch.setenv("MSDNET_IMAGE", "registry/msdnet:1")
    from msdnet.planning.cluster import required_plugins

    if all(p.installed() for p in required_plugins("profiles/kubernetes")):
        assert main(["cluster", "kubernetes", "figures", "--configfile", "config/tiny.yaml"]) == 1
        assert "MSDNET_S3_PREFIX" in _one_line(capsys)
    if all(p.installed() for p in required_plugins("profiles/slurm")):
        monkeypatch.setenv("PATH", str(Path(os.__file__).parent))           # no sbatch there
        assert main(["cluster", "slurm", "figures", "--configfile", "config/tiny.yaml"]) == 1
        assert "sbatch" in _one_line(capsys)


def test_5_predictions_of_zero_images_are_refused(tmp_path, capsys):
    from msdnet.cli import main
    from msdnet.inference.predictions import Predictions, save

    empty = Predictions(logits=np.zeros((2, 0, 3), np.float32), labels=np.zeros(0, np.int64),
                        exit_macs=np.array([1.0, 2.0]), sample_ids=np.zeros(0, np.int64), meta={})
    path = tmp_path / "test.npz"
    save(path, empty)
    assert main(["anytime", "--test", str(path)]) == 2
    assert "0 images" in _one_line(capsys)


def test_5_params_yaml_preset_must_match_its_configfile(tmp_path, monkeypatch):
    from msdnet.planning.workflow import check_dvc_params

    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(
        "workflow:\n  configfile: config/tiny.yaml\n  preset: mini\n  cores: 2\n")
    with pytest.raises(ConfigError, match="workflow.preset is 'mini' but config/tiny.yaml is preset 'tiny'"):
        check_dvc_params("config/tiny.yaml", "tiny")
    check_dvc_params("config/config.yaml", "mini")        # another preset than params.yaml's: not checked
    (tmp_path / "params.yaml").write_text("workflow:\n  configfile: config/tiny.yaml\n  preset: tiny\n")
    check_dvc_params("config/tiny.yaml", "tiny")
    # the repository's own params.yaml agrees with its preset
    monkeypatch.chdir(REPO)
    check_dvc_params("config/config.yaml", "mini")


# -- 6. advice is safe ---------------------------------------------------------------------------------

def test_6_a_yaml_or_npz_given_as_checkpoint_is_named_not_deleted(tmp_path, capsys):
    from msdnet.cli import main

    yaml_file = REPO / "config/models/msdnet-anytime-cifar100.yaml"
    npz = tmp_path / "val.npz"
    np.savez(npz, a=np.zeros(3))
    for path, kind in ((yaml_file, "YAML"), (npz, "NumPy archive")):
        assert main(["predict", str(path), "--out-dir", str(tmp_path / "p")]) == 2
        err = _one_line(capsys)
        assert kind in err and "delete" not in err and "msdnet train" in err
    assert yaml_file.is_file()
    own = tmp_path / "run" / "checkpoint.pt"                  # msdnet train's own resume state
    own.parent.mkdir()
    own.write_bytes(b"PK\x03\x04 cut short")
    assert main(["predict", str(own), "--out-dir", str(tmp_path / "p")]) == 2
    assert "corrupt checkpoint" in _one_line(capsys)


# -- 7. ImageNet data checked when prepared --------------------------------------------------------------

def _imagenet(root: Path) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for part, n in (("train", 4), ("val", 2)):
        for cls in ("n01", "n02"):
            (root / part / cls).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(
                    root / part / cls / f"{i}.JPEG", format="JPEG")
    return root


@pytest.mark.parametrize("where,content", [("val/n02/0.JPEG", b""), ("train/n01/3.JPEG", b"just text\n")])
def test_7_a_bad_imagenet_image_is_named_by_msdnet_data(tmp_path, capsys, where, content):
    import yaml

    from msdnet.cli import main

    root = _imagenet(tmp_path / "imagenet")
    (root / where).write_bytes(content)
    data = tmp_path / "data.yaml"
    data.write_text(yaml.safe_dump({"name": "imagenet", "imagenet_dir": str(root), "val_size": 2,
                                    "root": str(tmp_path / "data")}))
    assert main(["data", str(data)]) == 2
    assert str(root / where) in _one_line(capsys)


def test_7_a_bad_image_met_later_is_one_line_naming_it(tmp_path, capsys):
    from torch.utils.data import DataLoader

    from msdnet.cli import _one_line as cli_line
    from msdnet.data.imagenet import load_image

    bad = tmp_path / "x.JPEG"
    bad.write_text("not an image")
    with pytest.raises(DataError) as exc:
        load_image(str(bad))
    assert str(bad) in str(exc.value) and "\n" not in str(exc.value)

    class Bad(torch_dataset()):
        def __len__(self):
            return 1

        def __getitem__(self, i):
            return load_image(str(bad))

    with pytest.raises(DataError) as wrapped:            # raised in a worker, wrapped by torch
        next(iter(DataLoader(Bad(), num_workers=1)))
    line = cli_line(wrapped.value)
    assert "\n" not in line and line.startswith(str(bad))


def torch_dataset():
    from torch.utils.data import Dataset

    return Dataset


def test_3_a_broken_mathtext_label_keeps_the_old_figure(tmp_path, capsys):
    from msdnet.cli import main
    from msdnet.evaluation.analysis.common import write_csv

    table = tmp_path / "anytime.csv"
    write_csv(_anytime_table(["MSDNet", r"$\foo$"]), table)
    for ext in ("pdf", "png"):
        (tmp_path / f"fig.{ext}").write_bytes(b"old " + ext.encode())
    assert main(["figure", "anytime", "--table", str(table), "--out", str(tmp_path / "fig")]) == 2
    assert "not valid mathtext" in _one_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["anytime.csv", "fig.pdf", "fig.png"]
    assert (tmp_path / "fig.png").read_bytes() == b"old png"
