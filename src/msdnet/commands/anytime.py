"""``msdnet anytime``: top-1 accuracy and cumulative MACs of every exit of a predictions file."""

from __future__ import annotations

import argparse

from ..evaluation.analysis.anytime import anytime_table
from ..evaluation.analysis.common import dumps, format_table, records, write_csv
from ..inference.predictions import check_split, load

HELP = "anytime prediction: accuracy (top-1 %) and cumulative MACs per exit of a predictions file"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--test", required=True, metavar="TEST.npz", help="test-split predictions file")
    parser.add_argument("--model", metavar="NAME", help="model name in the table (default: from meta)")
    parser.add_argument("--json", action="store_true",
                        help="print a JSON list of {exit, macs, params, accuracy} instead of a table")
    parser.add_argument("--out", "--csv", dest="out", metavar="OUT.csv",
                        help="also write the table (model, exit, macs, params, accuracy) as CSV"
                             " (--csv: deprecated spelling)")


def run(args: argparse.Namespace) -> int:
    preds = load(args.test)
    check_split(preds, "test", args.test)
    df = anytime_table(preds, model=args.model)
    if args.out:
        write_csv(df, args.out)
    if args.json:
        print(dumps(records(df[["exit", "macs", "params", "accuracy"]])))
    else:
        print(format_table(df))
    return 0
