"""msdnet preset: validate a workflow preset and list what it needs."""

from __future__ import annotations

import argparse
import json

import yaml

from ..config import load_yaml
from ..io import write_json_atomic, write_text_atomic
from ..workflow import Preset, validate_preset

HELP = "validate a workflow preset (config/*.yaml) and print or save the runs it needs"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="preset YAML (e.g. config/config.yaml), or '-' with --json-config")
    p.add_argument("--json-config", help="the preset as a JSON string (what Snakemake resolved)")
    p.add_argument("--write", metavar="FILE", help="save the validated preset (defaults filled in) as JSON")
    p.add_argument("--write-data", metavar="FILE", help="save the data section of its recipe (YAML)")
    p.add_argument("--runs", action="store_true", help="print every (model, seed) training run it needs")


def run(args: argparse.Namespace) -> int:
    if args.json_config:
        cfg, source = json.loads(args.json_config), "preset given by the workflow"
    else:
        cfg, source = load_yaml(args.config), args.config
    resolved = validate_preset(cfg, source)
    preset = Preset(resolved)
    if args.write:
        write_json_atomic(args.write, resolved)
    if args.write_data:
        write_text_atomic(args.write_data, yaml.safe_dump(preset.data_config(), sort_keys=True))
    if args.runs:
        for model, seed in preset.runs_needed():
            print(f"{model}\tseed{seed}")
    else:
        print(f"{source}: preset '{preset.name}' is valid: {len(preset.runs_needed())} training runs, "
              f"figures: {', '.join(preset.figures)}")
    return 0
