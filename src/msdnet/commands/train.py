"""msdnet train: train (or resume) a model on a data set with a recipe."""

from __future__ import annotations

import argparse

from ..core.errors import ConfigError
from ..planning.runs import resolve

HELP = "train a model config with a recipe (data + optimisation); re-running resumes"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="model config YAML (config/models/*.yaml)")
    p.add_argument("--recipe", required=True, help="recipe YAML with sections data: and train:")
    p.add_argument("--out", required=True, help="run directory (checkpoint.pt, metrics.csv, config.yaml)")
    p.add_argument("--final", metavar="FILE",
                   help="when training has finished, also write the final artifact here: weights, "
                        "config, epochs and metrics, byte-identical for identical runs (no optimizer, "
                        "RNG or timings); checkpoint.pt stays the resume state")
    p.add_argument("--expect-key", metavar="KEY",
                   help="refuse to train unless the resolved config has this run key (the workflow "
                        "passes the key in the run's path; see msdnet.planning.runs)")
    p.add_argument("--data", metavar="SUMMARY.json",
                   help="the data summary written by `msdnet data --out`; refuse to train unless it "
                        "describes this run's data")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a key, e.g. --set train.epochs=5 --set data.root=data "
                        "--set model.dense=false (VALUE is parsed as YAML); repeatable")


def run(args: argparse.Namespace) -> int:
    from ..training.train import train       # torch: imported when the command runs

    run_cfg = resolve(args.model, args.recipe, args.set)
    check_planned(run_cfg, args)
    train(run_cfg, args.out, final=args.final, model_source=args.model, recipe_source=args.recipe)
    return 0


def check_planned(run_cfg, args: argparse.Namespace) -> None:
    """The workflow's guards: the run key it planned, and the data it prepared."""
    from ..planning.runs import check_data_summary, run_key

    if args.expect_key and run_key(run_cfg) != args.expect_key:
        raise ConfigError(f"{args.model}: this config resolves to run {run_key(run_cfg)}, not the "
                          f"planned {args.expect_key} (a config file changed after planning); "
                          "re-run the workflow")
    if args.data:
        check_data_summary(args.data, run_cfg)
