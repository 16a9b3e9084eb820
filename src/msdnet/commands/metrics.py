"""msdnet metrics: the metrics file DVC reads, from a preset's tables."""

from __future__ import annotations

import argparse
import json

from ..core.io import write_text_atomic
from ..evaluation.analysis.metrics import dvc_metrics

HELP = ("summarise a preset's tables for DVC (dvc metrics show): last exit's top-1 % and MMACs "
        "per model and seed, the findings' verdicts")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("tables", help="the tables folder, e.g. results/mini/tables")
    p.add_argument("--out", metavar="OUT.json",
                   help="write the metrics as JSON (the workflow: results/<preset>/metrics.json); "
                        "without it, print them")


def run(args: argparse.Namespace) -> int:
    text = json.dumps(dvc_metrics(args.tables), indent=2) + "\n"
    if args.out:
        write_text_atomic(args.out, text)
        print(f"wrote {args.out}")
    else:
        print(text, end="")
    return 0
