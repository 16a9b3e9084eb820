"""``msdnet combine``: anytime predictions of an exit combiner (softmax, mean, caching, product),
optionally with per-exit temperature scaling fitted on the validation split: per exit top-1 %,
ECE % and NLL on the test split, and the share of test images whose true-class probability
drops by more than epsilon between two exits (docs/method.md, "Combining exits and
calibration")."""

from __future__ import annotations

import argparse

import pandas as pd

from ..core.errors import MsdnetError
from ..evaluation.analysis.budgeted import check_pair
from ..evaluation.analysis.combiners import COMBINERS, exit_metrics, fit_temperatures
from ..evaluation.analysis.common import dumps, format_table, json_list, json_number, records
from ..inference.predictions import check_split, load

HELP = ("anytime predictions of an exit combiner (softmax, mean, caching, product), optionally "
        "temperature-scaled: top-1 %, ECE %, NLL per exit and monotonicity")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--test", required=True, metavar="TEST.npz", help="test-split predictions file")
    parser.add_argument("--val", metavar="VAL.npz",
                        help="validation-split predictions of the same run (needed by --calibrate)")
    parser.add_argument("--combiner", required=True, choices=COMBINERS,
                        help="softmax (the paper's), mean, caching or product")
    parser.add_argument("--calibrate", action="store_true",
                        help="scale each exit's logits by a temperature fitted on --val (NLL)")
    parser.add_argument("--json", action="store_true",
                        help="print JSON {combiner, calibrated, temperatures, exits: [{exit, macs, "
                             "accuracy, ece_percent, nll}], monotonicity: [{epsilon, "
                             "decrease_percent}]} instead of tables")


def run(args: argparse.Namespace) -> int:
    if args.calibrate and not args.val:
        raise MsdnetError("--calibrate needs --val VAL.npz: temperatures are fitted on the "
                          "validation split, never on the test images")
    test = load(args.test)
    check_split(test, "test", args.test)
    temps = None
    if args.val:
        val = load(args.val)
        check_pair(val, test, args.val, args.test)
        if args.calibrate:
            temps = fit_temperatures(val)
    m = exit_metrics(test, args.combiner, temps)
    exits = pd.DataFrame({"exit": range(1, test.num_exits + 1), "macs": test.exit_macs,
                          "accuracy": m.accuracy, "ece_percent": m.ece_percent, "nll": m.nll})
    if temps is not None:
        exits.insert(2, "temperature", temps)
    mono = pd.DataFrame({"epsilon": list(m.decrease_percent),
                         "decrease_percent": list(m.decrease_percent.values())})
    if args.json:
        print(dumps({"combiner": args.combiner, "calibrated": bool(args.calibrate),
                     "temperatures": None if temps is None else json_list(temps),
                     "exits": records(exits.drop(columns=["temperature"], errors="ignore")),
                     "monotonicity": [{"epsilon": json_number(e), "decrease_percent": json_number(d)}
                                      for e, d in m.decrease_percent.items()]}))
    else:
        print(f"combiner {args.combiner}{', temperature-scaled' if temps is not None else ''}")
        print(format_table(exits))
        print()
        print(format_table(mono))
    return 0
