"""The job planner's keys and its guards, without running a job: what an edit changes, and that
no preset string can become a shell command or a path outside results/ and figures/."""

from __future__ import annotations

import copy
import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from msdnet.cli import main
from msdnet.core.config import load_yaml
from msdnet.core.errors import ConfigError
from msdnet.figures.registry import FIGURES, TABLES
from msdnet.planning.workflow import Preset, validate_preset

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch):
    monkeypatch.chdir(REPO)


def _tiny() -> dict:
    return load_yaml(REPO / "config" / "tiny.yaml")


def _plan(cfg: dict) -> Preset:
    return Preset(validate_preset(copy.deepcopy(cfg), "tiny.yaml"), "tiny.yaml")


def _keys(p: Preset) -> dict:
    return {m: p.run_of(m).key for m in p.models_needed()}


def test_a_label_or_description_changes_no_run_or_prediction():
    cfg = _tiny()
    before = _plan(cfg)
    edited = copy.deepcopy(cfg)
    edited["description"] = "something else"
    edited["figures"]["anytime"] = {f"{k} (renamed)": v for k, v in cfg["figures"]["anytime"].items()}
    after = _plan(edited)
    assert _keys(after) == _keys(before)
    assert [str(after.predictions_dir(n, s)) for n, s in after.predictions_needed()] == \
           [str(before.predictions_dir(n, s)) for n, s in before.predictions_needed()]
    changed = [t for t in before.tables() if before.table_spec(t) != after.table_spec(t)]
    assert changed == ["anytime"]
    assert [f for f in before.figures if before.figure_spec(f) != after.figure_spec(f)] == ["anytime"]


def test_a_model_knob_changes_exactly_the_runs_built_from_it():
    cfg = _tiny()
    before = _keys(_plan(cfg))
    edited = copy.deepcopy(cfg)
    edited["models"]["msdnet-small"]["set"]["n_blocks"] = 1
    after = _keys(_plan(edited))
    assert {m for m in before if before[m] != after[m]} == {"msdnet-small"}


def test_recipe_knobs_change_every_run_but_execution_keys_change_none():
    cfg = _tiny()
    before = _keys(_plan(cfg))
    epochs = copy.deepcopy(cfg)
    epochs["recipe_set"]["train.epochs"] = 2
    assert all(k != before[m] for m, k in _keys(_plan(epochs)).items())
    fast = copy.deepcopy(cfg)
    fast["recipe_set"].update({"train.progress": "bar", "train.device": "cpu", "data.root": "elsewhere"})
    assert _keys(_plan(fast)) == before


def test_ensemble_key_follows_its_members():
    cfg = _tiny()
    p = _plan(cfg)
    edited = copy.deepcopy(cfg)
    edited["models"]["resnet"]["set"]["depth"] = 14
    q = _plan(edited)
    assert p.key_of("ensemble-resnets") != q.key_of("ensemble-resnets")
    assert p.key_of("resnet-mc") == q.key_of("resnet-mc")


def test_a_per_model_data_override_gets_its_own_data_key():
    cfg = copy.deepcopy(_tiny())
    cfg["models"]["resnet"]["recipe_set"] = {"data.split_seed": 3}
    p = _plan(cfg)
    assert p.data_summary("resnet") != p.data_summary("msdnet")
    assert len(p.data_plans()) == 2


BAD_NAMES = ["a;touch X;b", "cifar100 $(touch X)", "..", "../../x", "a b", "-rf", "x/y", "`id`", ""]


@pytest.mark.parametrize("bad", BAD_NAMES)
@pytest.mark.parametrize("where", ["preset", "model", "ensemble", "reference_dataset", "figure model",
                                   "ensemble member"])
def test_unsafe_names_are_refused_in_one_line(bad, where):
    cfg = copy.deepcopy(_tiny())
    if where == "preset":
        cfg["preset"] = bad
    elif where == "model":
        cfg["models"][bad] = cfg["models"]["resnet"]
    elif where == "ensemble":
        cfg["ensembles"][bad] = ["resnet"]
    elif where == "reference_dataset":
        cfg["reference_dataset"] = bad
    elif where == "figure model":
        cfg["figures"]["anytime"]["X"] = bad
    else:
        cfg["ensembles"]["ens"] = [bad]
    with pytest.raises(ConfigError) as exc:
        validate_preset(cfg, "tiny.yaml")
    assert "\n" not in str(exc.value) and "tiny.yaml" in str(exc.value)


def test_unknown_figure_id_is_refused():
    cfg = copy.deepcopy(_tiny())
    cfg["figures"]["../x"] = {"MSDNet": "msdnet"}
    with pytest.raises(ConfigError, match="figures"):
        validate_preset(cfg, "tiny.yaml")


def test_every_planned_path_stays_inside_results_and_figures():
    p = _plan(_tiny())
    paths = [p.model_file(m, s) for m, s in p.runs_needed()]
    paths += [p.predictions_dir(n, s) for n, s in p.predictions_needed()]
    paths += [p.data_summary(m) for m in p.models_needed()]
    for path in paths:
        assert (REPO / path).resolve().is_relative_to(REPO / "results" / "tiny")


def test_the_registry_is_the_one_list_of_figures():
    from msdnet.commands import figure as figure_command

    schema = load_yaml(REPO / "workflow/schemas/config.schema.yaml")
    assert "properties" not in schema["properties"]["figures"]     # filled in from the registry
    parser = argparse.ArgumentParser()
    figure_command.add_arguments(parser)
    assert tuple(parser._actions[1].choices) == tuple(FIGURES)
    for fid, spec in FIGURES.items():
        assert spec.tables and all(TABLES[t.name][0] is spec for t in spec.tables)


def test_a_malicious_preset_never_reaches_a_shell(tmp_path):
    cfg = _tiny()
    cfg["reference_dataset"] = f"cifar100 $(touch {tmp_path}/pwned)"
    bad = tmp_path / "bad.yaml"
    bad.write_text(json.dumps(cfg))
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    out = subprocess.run([str(BIN / "snakemake"), "-n", "figures", "--configfile", str(bad)], cwd=REPO,
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode != 0
    assert "reference_dataset" in out.stdout + out.stderr
    assert not (tmp_path / "pwned").exists()


def test_train_refuses_a_key_it_does_not_resolve_to(tmp_path, capsys):
    p = _plan(_tiny())
    run = p.run_of("resnet")
    args = ["train", run.config, "--recipe", run.recipe, "--out", str(tmp_path / "r"),
            "--expect-key", "0" * 16, *[f"--set={o}" for o in run.overrides]]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and run.key in err and not (tmp_path / "r").exists()


def test_train_refuses_a_data_summary_of_other_data(tmp_path, capsys):
    p = _plan(_tiny())
    run = p.run_of("resnet")
    summary = tmp_path / "data.json"
    summary.write_text(json.dumps({"config": {"name": "digits", "image_size": 32}}))
    args = ["train", run.config, "--recipe", run.recipe, "--out", str(tmp_path / "r"),
            "--data", str(summary), *[f"--set={o}" for o in run.overrides]]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "data.json" in err and "image_size" in err


def test_key_files_name_their_spec_and_replace_older_keys(tmp_path, capsys):
    from msdnet.core.errors import ConfigError
    from msdnet.planning.runs import key_path, read_key, write_key

    spec_a, spec_b = {"table": "anytime", "section": {"A": "m"}}, {"table": "anytime", "section": {"B": "m"}}
    a, b = key_path(tmp_path, "anytime", spec_a), key_path(tmp_path, "anytime", spec_b)
    assert a != b and a.parent == b.parent == tmp_path / ".keys"
    write_key(a, spec_a)
    assert read_key(a, "table", "anytime") == spec_a
    write_key(b, spec_b)
    assert not a.exists() and json.loads(b.read_text()) == spec_b       # one key per name
    with pytest.raises(ConfigError, match="not the key file of this spec"):
        write_key(a, spec_b)                                            # a key must match its spec
    with pytest.raises(ConfigError, match="not the key file of table budgeted"):
        read_key(b, "table", "budgeted")
    b.write_text(json.dumps({**spec_b, "section": {"B": "edited"}}))    # edited by hand
    with pytest.raises(ConfigError, match="does not match the hash in its name"):
        read_key(b, "table", "anytime")


def test_collect_reads_its_spec_from_the_key_file_and_refuses_a_bad_one(tmp_path, capsys):
    from msdnet.planning.runs import key_path, write_key

    key = tmp_path / ".keys" / "anytime.0123456789abcdef.json"
    key.parent.mkdir()
    key.write_text("{not json")
    out = tmp_path / "anytime.csv"
    assert main(["collect", "anytime", "--key", str(key), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(key) in err and "not a readable key file" in err
    spec = {"table": "budgeted", "figure": "budgeted", "section": {}, "sources": {}}
    other = write_key(key_path(tmp_path, "budgeted", spec), spec)
    assert main(["collect", "anytime", "--key", str(other), "--out", str(out)]) == 2
    assert "not the key file of table anytime" in capsys.readouterr().err
    assert not out.exists()


def test_plan_keys_follow_labels_not_descriptions():
    cfg = _tiny()
    p = _plan(cfg)
    edited = copy.deepcopy(cfg)
    edited["description"] = "other"
    assert [p.table_key(t) for t in p.tables()] == [_plan(edited).table_key(t) for t in p.tables()]
    edited["figures"]["budgeted"]["dynamic"] = {"Renamed": ["msdnet"]}
    q = _plan(edited)
    assert [t for t in p.tables() if p.table_key(t) != q.table_key(t)] == ["budgeted"]
    assert [f for f in p.figures if p.figure_key(f) != q.figure_key(f)] == ["budgeted"]
    assert p.notebook_key() != q.notebook_key()


def _authors() -> dict:
    return load_yaml(REPO / "config" / "paper-imagenet-authors.yaml")


def test_an_imported_model_is_keyed_on_its_checkpoint_path_and_config_not_on_data_location():
    from msdnet.planning.runs import import_key, resolve

    cfg = _authors()
    p = _plan(cfg)
    spec = cfg["models"]["msdnet-k4"]
    run = resolve(spec["config"], cfg["recipe"], p.train_overrides("msdnet-k4"))
    assert p.run_of("msdnet-k4").key == import_key(spec["checkpoint"], run)
    assert p.run_of("msdnet-k4").checkpoint == spec["checkpoint"]
    assert p.seeds_of("msdnet-k4") == [0] and p.runs_needed() == [("msdnet-k4", 0), ("msdnet-k7", 0)]
    moved = copy.deepcopy(cfg)
    moved["models"]["msdnet-k4"]["checkpoint"] = "elsewhere/k4.pth.tar"
    assert _keys(_plan(moved))["msdnet-k4"] != _keys(p)["msdnet-k4"]
    assert _keys(_plan(moved))["msdnet-k7"] == _keys(p)["msdnet-k7"]
    relocated = copy.deepcopy(cfg)
    relocated["recipe_set"]["data.imagenet_dir"] = "/datasets/imagenet"
    assert _keys(_plan(relocated)) == _keys(p)
    other_split = copy.deepcopy(cfg)
    other_split["models"]["msdnet-k7"]["recipe_set"]["data.holdout_indices"] = "data/other-index.pth"
    assert _keys(_plan(other_split))["msdnet-k7"] != _keys(p)["msdnet-k7"]
    assert p.data_summary("msdnet-k4") != p.data_summary("msdnet-k7")      # each model's own split


def test_an_imported_model_has_one_seed_and_is_no_ensemble_member():
    cfg = copy.deepcopy(_authors())
    cfg["models"]["msdnet-k4"]["seeds"] = [0, 1]
    with pytest.raises(ConfigError, match="one seed"):
        validate_preset(cfg, "authors.yaml")
    cfg = copy.deepcopy(_authors())
    cfg["ensembles"] = {"ens": ["msdnet-k4", "msdnet-k7"]}
    with pytest.raises(ConfigError, match="imported"):
        validate_preset(cfg, "authors.yaml")
