"""msdnet data: load (and, for CIFAR, download) a data set, fix its held-out split, summarise it."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from ..config import from_dict, load_yaml
from ..data import DataConfig, load_data, split_sizes
from ..io import write_json_atomic

HELP = "prepare a data set (download CIFAR when possible, save the held-out split) and summarise it"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="a recipe YAML (its data: section), a data YAML, or a preset JSON from `msdnet preset --write`")
    p.add_argument("--out", help="write the summary as JSON")


def summary(cfg: DataConfig) -> dict:
    bundle = load_data(cfg)
    return {"config": asdict(cfg), "dataset": bundle.name, "num_classes": bundle.num_classes,
            "input_size": list(bundle.input_size), "splits": split_sizes(bundle),
            "split_file": bundle.split_file}


def run(args: argparse.Namespace) -> int:
    raw = load_yaml(args.config)
    if "preset" in raw and "recipe" in raw:
        from ..workflow import Preset
        data = Preset(raw).data_config()
    else:
        data = raw.get("data", raw)
    report = summary(from_dict(DataConfig, data, f"{args.config} [data]"))
    if args.out:
        write_json_atomic(args.out, report)
    sizes = ", ".join(f"{k} {v}" for k, v in report["splits"].items())
    print(f"{report['dataset']}: {report['num_classes']} classes, input {report['input_size']}, {sizes}")
    return 0
