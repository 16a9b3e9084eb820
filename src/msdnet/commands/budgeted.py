"""``msdnet budgeted``: budgeted batch classification with the paper's dynamic-evaluation
thresholds (``msdnet.evaluation.analysis.budgeted`` documents the algorithm, the JSON and the tables).

Modes:
  --val VAL --test TEST               the paper's sweep, one point per p = j/20 (j = 1..39)
  --val VAL --test TEST --budget B..  one point per budget: validation cost closest to B, <= B
  --model NAME VAL TEST (repeated)    every model's sweep, plus the best-on-validation envelope
                                      over all their points, at the --budget values if given,
                                      else at every distinct validation cost

--json prints a JSON list, one object per point: {"p", "avg_macs", "accuracy",
"exit_fractions", "thresholds", "val_accuracy", "val_avg_macs", "val_exit_fractions"}
(+ "budget" for budget / envelope points; + "model", "curve" with --model). Infinite thresholds
(and p) are the strings "inf" / "-inf".
"""

from __future__ import annotations

import argparse

from ..evaluation.analysis.budgeted import (BudgetedEvaluator, budgeted_exit_table, budgeted_table,
                                 envelope)
from ..evaluation.analysis.common import CONFIDENCES, dumps, format_table, write_csv
from ..core.errors import MsdnetError
from ..inference.predictions import COSTS, load, with_costs

HELP = "budgeted batch classification: the paper's threshold sweep, a target budget, or an envelope"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--val", metavar="VAL.npz", help="validation-split predictions (thresholds)")
    parser.add_argument("--test", metavar="TEST.npz", help="test-split predictions (reported)")
    parser.add_argument("--model", nargs=3, action="append", metavar=("NAME", "VAL", "TEST"),
                        help="a model for the best-on-validation envelope (repeat for each model)")
    parser.add_argument("--name", metavar="NAME", help="model name with --val/--test (default: from meta)")
    parser.add_argument("--confidence", choices=CONFIDENCES, default="max_prob",
                        help="confidence measure (default max_prob, the paper's)")
    parser.add_argument("--costs", choices=COSTS, default="lazy",
                        help="exit costs: lazy (default; features an earlier exit computed are "
                             "reused, as in the workflow's budgeted figures) or full (each exit's "
                             "cumulative MACs as if evaluated alone)")
    parser.add_argument("--budget", type=float, nargs="+", metavar="MACS",
                        help="target average MACs per image (validation cost never exceeds it)")
    parser.add_argument("--json", action="store_true", help="print a JSON list of points")
    parser.add_argument("--out", "--csv", dest="out", metavar="OUT.csv",
                        help="write the per-point table as CSV (--csv: deprecated spelling)")
    parser.add_argument("--exits-csv", metavar="OUT.csv",
                        help="write the per-exit table (fractions, thresholds) as CSV")


def run(args: argparse.Namespace) -> int:
    multi = bool(args.model)
    if multi and (args.val or args.test or args.name):
        raise MsdnetError("give either --val/--test (one model) or --model NAME VAL TEST, not both")
    if not multi and not (args.val and args.test):
        raise MsdnetError("give --val VAL.npz and --test TEST.npz (or --model NAME VAL TEST)")
    if multi:
        names = [m[0] for m in args.model]
        if len(set(names)) != len(names):
            raise MsdnetError(f"model names must be distinct, got {', '.join(names)}")
        sweeps = {}
        for name, val, test in args.model:
            ev = BudgetedEvaluator(with_costs(load(val), args.costs), with_costs(load(test), args.costs),
                                   args.confidence, model=name,
                                   val_name=val, test_name=test)
            sweeps[name] = ev.sweep()
        points = [pt for pts in sweeps.values() for pt in pts]
        points += envelope(sweeps, budgets=args.budget)
    else:
        ev = BudgetedEvaluator(with_costs(load(args.val), args.costs), with_costs(load(args.test), args.costs),
                               args.confidence, model=args.name,
                               val_name=args.val, test_name=args.test)
        points = [ev.at_budget(b) for b in args.budget] if args.budget else ev.sweep()
    table = budgeted_table(points)
    if args.out:
        write_csv(table, args.out)
    if args.exits_csv:
        write_csv(budgeted_exit_table(points), args.exits_csv)
    if args.json:
        print(dumps([pt.to_json(with_model=multi) for pt in points]))
    else:
        cols = ["model", "curve", "p", "budget", "val_avg_macs", "val_accuracy", "avg_macs", "accuracy"]
        print(format_table(table[cols]))
    return 0
