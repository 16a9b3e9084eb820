"""``msdnet easy-hard``: images that leave correctly at the first exit vs those only the last
exit gets right (``msdnet.evaluation.analysis.easy_hard`` documents the definitions and the table)."""

from __future__ import annotations

import argparse

from ..evaluation.analysis.common import CONFIDENCES, format_table, write_csv
from ..evaluation.analysis.easy_hard import easy_hard_from_budget, easy_hard_table
from ..core.errors import MsdnetError
from ..inference.predictions import load

HELP = "easy images (exit 1 right and leaving there) and hard ones (only the last exit right)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--test", required=True, metavar="TEST.npz", help="test-split predictions")
    parser.add_argument("--val", metavar="VAL.npz",
                        help="validation predictions: 'leaves at exit 1' = the budgeted threshold "
                             "theta_1 at --p")
    parser.add_argument("--p", type=float, help="the p of the budgeted thresholds (with --val)")
    parser.add_argument("--threshold", type=float,
                        help="exit-1 confidence at or above which an image leaves at exit 1")
    parser.add_argument("--top-share", type=float, default=0.2,
                        help="without --val/--threshold: the most confident share of exit-1 "
                             "confidences that leaves at exit 1 (default 0.2)")
    parser.add_argument("--per-class", type=int, metavar="N", help="keep at most N per class and kind")
    parser.add_argument("--confidence", choices=CONFIDENCES, default="max_prob",
                        help="confidence measure (default max_prob)")
    parser.add_argument("--out", "--csv", dest="out", metavar="OUT.csv",
                        help="write the table (sample_id, label, kind, confidence) as CSV"
                             " (--csv: deprecated spelling)")


def run(args: argparse.Namespace) -> int:
    if (args.val is None) != (args.p is None):
        raise MsdnetError("--val and --p go together (the budgeted thresholds at p on validation)")
    if args.val is not None and args.threshold is not None:
        raise MsdnetError("give either --val/--p or --threshold, not both")
    test = load(args.test)
    if args.val is not None:
        df = easy_hard_from_budget(test, load(args.val), args.p, per_class=args.per_class,
                                   confidence=args.confidence, val_name=args.val, test_name=args.test)
    else:
        df = easy_hard_table(test, threshold=args.threshold, top_share=args.top_share,
                             per_class=args.per_class, confidence=args.confidence, source=args.test)
    if args.out:
        write_csv(df, args.out)
        counts = df["kind"].value_counts()
        easy, hard = int(counts.get("easy", 0)), int(counts.get("hard", 0))
        print(f"wrote {args.out}: {easy} easy, {hard} hard images")
    else:
        print(format_table(df))
    return 0
