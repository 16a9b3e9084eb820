"""``msdnet staircase``: relative accuracy of a single intermediate classifier at varying depth."""

from __future__ import annotations

import argparse

import pandas as pd

from ..evaluation.analysis.common import dumps, format_table, records, write_csv
from ..evaluation.analysis.staircase import BASELINE_COLUMNS, RUN_COLUMNS, baseline_row, run_row, staircase_table
from ..core.errors import MsdnetError
from ..inference.predictions import load

HELP = "staircase figure table: single intermediate classifier vs depth, relative accuracies"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", nargs=4, action="append", required=True,
                        metavar=("FAMILY", "SEED", "LOCATION", "TEST.npz"),
                        help="a 2-exit run (intermediate at relative depth LOCATION in (0,1)); repeat")
    parser.add_argument("--baseline", nargs=3, action="append", required=True,
                        metavar=("FAMILY", "SEED", "TEST.npz"),
                        help="the same network without intermediate classifier; repeat")
    parser.add_argument("--out", "--csv", dest="out", metavar="OUT.csv",
                        help="write the table (family, location, metric, mean, std, n_seeds) as CSV"
                             " (--csv: deprecated spelling)")
    parser.add_argument("--json", action="store_true", help="print the table as a JSON list")


def _num(text: str, kind, what: str):
    try:
        return kind(text)
    except ValueError:
        raise MsdnetError(f"{what} must be a number, got {text!r}") from None


def run(args: argparse.Namespace) -> int:
    runs = [run_row(load(path), family, _num(seed, int, "SEED"), _num(loc, float, "LOCATION"),
                    source=path) for family, seed, loc, path in args.run]
    base = [baseline_row(load(path), family, _num(seed, int, "SEED"), source=path)
            for family, seed, path in args.baseline]
    df = staircase_table(pd.DataFrame(runs, columns=RUN_COLUMNS),
                         pd.DataFrame(base, columns=BASELINE_COLUMNS))
    if args.out:
        write_csv(df, args.out)
    if args.json:
        print(dumps(records(df)))
    else:
        print(format_table(df))
    return 0
