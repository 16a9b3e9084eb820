"""msdnet train: train (or resume) a model on a data set with a recipe."""

from __future__ import annotations

import argparse

import shutil
from pathlib import Path

import yaml

from ..config import load_yaml
from ..errors import ConfigError, MsdnetError
from ..io import atomic_path
from ..train import CHECKPOINT, make_run_config, train

HELP = "train a model config with a recipe (data + optimisation); re-running resumes"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="model config YAML (config/models/*.yaml)")
    p.add_argument("--recipe", required=True, help="recipe YAML with sections data: and train:")
    p.add_argument("--out", required=True, help="run directory (checkpoint.pt, metrics.csv, config.yaml)")
    p.add_argument("--final", metavar="FILE",
                   help="when training has finished, also save the final checkpoint here (the file a "
                        "workflow declares as output; checkpoint.pt stays the resume state)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a key, e.g. --set train.epochs=5 --set data.root=data "
                        "--set model.dense=false (VALUE is parsed as YAML); repeatable")


def apply_overrides(recipe: dict, overrides: list[str], source: str) -> dict:
    recipe = {k: dict(v or {}) for k, v in recipe.items()}
    for item in overrides:
        key, sep, value = item.partition("=")
        section, dot, name = key.partition(".")
        if not sep or not dot or not name:
            raise ConfigError(f"--set {item!r}: expected SECTION.KEY=VALUE, e.g. train.epochs=5")
        recipe.setdefault(section, {})[name] = yaml.safe_load(value)
    return recipe


def run(args: argparse.Namespace) -> int:
    model = load_yaml(args.model)
    recipe = apply_overrides(load_yaml(args.recipe), args.set, args.recipe)
    model.update(recipe.pop("model", {}))
    run_cfg = make_run_config(model, recipe, args.model, args.recipe)
    ckpt = train(run_cfg, args.out)
    if args.final:
        if not ckpt.get("finished"):
            raise MsdnetError(f"{args.out}: training did not finish; re-run to resume")
        with atomic_path(args.final) as tmp:
            shutil.copyfile(Path(args.out) / CHECKPOINT, tmp)
    return 0
