"""msdnet data: load (and, for CIFAR, download) a data set, fix its held-out split, summarise it."""

from __future__ import annotations

import argparse

from ..core.config import compact_dict, from_dict, load_yaml
from ..core.io import write_json_atomic
from ..data.config import DataConfig
from ..planning.runs import apply_overrides

HELP = "prepare a data set (download CIFAR when possible, save the held-out split) and summarise it"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="a recipe YAML (its data: section) or a data YAML")
    p.add_argument("--set", action="append", default=[], metavar="data.KEY=VALUE",
                   help="override a data key, e.g. --set data.image_size=16 (repeatable; other "
                        "sections are ignored, so a training run's --set list can be passed as is)")
    p.add_argument("--out", help="write the summary as JSON (what the workflow's training jobs check)")


def summary(cfg: DataConfig) -> dict:
    from ..data import load_data, split_sizes    # torch: imported when the command runs

    bundle = load_data(cfg, check_images=True)
    return {"config": compact_dict(cfg), "dataset": bundle.name, "num_classes": bundle.num_classes,
            "input_size": list(bundle.input_size), "splits": split_sizes(bundle),
            "split_file": bundle.split_file}


def data_section(path: str, overrides: list[str]) -> dict:
    raw = load_yaml(path)
    data = raw["data"] if isinstance(raw.get("data"), dict) else raw     # a recipe, or a data YAML
    recipe = apply_overrides({"data": data}, [o for o in overrides if o.startswith("data.")], path)
    return recipe["data"]


def run(args: argparse.Namespace) -> int:
    report = summary(from_dict(DataConfig, data_section(args.config, args.set), f"{args.config} [data]"))
    if args.out:
        write_json_atomic(args.out, report)
    sizes = ", ".join(f"{k} {v}" for k, v in report["splits"].items())
    print(f"{report['dataset']}: {report['num_classes']} classes, input {report['input_size']}, {sizes}")
    return 0
