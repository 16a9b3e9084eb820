"""msdnet cost: cumulative MACs and parameters per exit of a model config."""

from __future__ import annotations

import argparse
import json

from ..models import load_config

HELP = "print cumulative MACs (multiply-adds) and parameters per exit of a model config"
CONVENTION = ("MACs are counted for one image at the config's input size: convolutions (not "
              "their bias), linear layers, ReLUs and pooling count; batch norm, dropout, concatenation "
              "and additions are free. An exit's cost is everything computed up to it, the "
              "earlier exits' classifiers included; parameters are cumulative the same way.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = CONVENTION
    p.add_argument("config", help="model config YAML (config/models/*.yaml)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object instead of a table: arch, config, input_size, "
                        "lazy and exits (a list of {exit, macs, params})")
    p.add_argument("--lazy", action="store_true",
                   help="count lazy evaluation: finer-scale work a later exit needs is charged to it")


def cost_report(config_path: str, lazy: bool = False) -> dict:
    from ..models import build              # torch: imported when the command runs
    from ..models.cost import count_costs

    import torch

    cfg = load_config(config_path)
    # on the meta device: shapes only, no memory and no arithmetic, so a huge input (4096x4096)
    # is counted in seconds; the counts are the same as on the CPU (they depend on shapes only)
    with torch.device("meta"):
        model = build(cfg, config_path)
        exits = count_costs(model, lazy=lazy)
    return {"arch": cfg["arch"], "config": str(config_path), "input_size": list(model.input_size),
            "lazy": lazy, "exits": [e.to_dict() for e in exits]}


def run(args: argparse.Namespace) -> int:
    report = cost_report(args.config, lazy=args.lazy)
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"{report['config']}  arch={report['arch']}  input={report['input_size']}"
          f"{'  (lazy evaluation)' if args.lazy else ''}")
    print(f"{'exit':>4}  {'MACs':>15}  {'MMACs':>10}  {'params':>12}")
    for e in report["exits"]:
        print(f"{e['exit']:>4}  {e['macs']:>15,}  {e['macs'] / 1e6:>10.2f}  {e['params']:>12,}")
    return 0
