"""msdnet preset: validate a workflow preset and list the runs it needs, with their keys."""

from __future__ import annotations

import argparse

from ..core.config import load_yaml
from ..planning.workflow import plan

HELP = "validate a workflow preset (config/*.yaml) and list the training runs it needs"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="preset YAML (e.g. config/config.yaml)")
    p.add_argument("--runs", action="store_true",
                   help="print every training run: model, seed and its run directory")


def run(args: argparse.Namespace) -> int:
    preset = plan(load_yaml(args.config), args.config)
    if args.runs:
        for model, seed in preset.runs_needed():
            print(f"{model}\tseed{seed}\t{preset.run_dir(model, seed)}")
    else:
        print(f"{args.config}: preset '{preset.name}' is valid: {len(preset.runs_needed())} training runs, "
              f"figures: {', '.join(preset.figures)}")
    return 0
