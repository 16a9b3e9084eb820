"""``msdnet figure ID``: draw one of the paper's figures from its table(s); writes STEM.pdf and
STEM.png (``msdnet.figures`` documents every table's columns).

    msdnet figure anytime        --table anytime.csv        [--reference CSV --dataset NAME] --out STEM
    msdnet figure budgeted       --table budgeted.csv       [--reference CSV --dataset NAME] --out STEM
    msdnet figure ablation       --table ablation.csv       [--reference CSV --dataset NAME] --out STEM
    msdnet figure reduction-lazy --table reduction_lazy.csv [--reference CSV --dataset NAME] --out STEM
    msdnet figure densenet-star  --anytime A.csv --budgeted B.csv [--reference ...] --out STEM
    msdnet figure staircase      --table staircase.csv --out STEM
    msdnet figure easy-hard      --table easy_hard.csv --data DATA.yaml [--labels L ..]
                                 [--max-classes N] [--per-kind N] --out STEM

The paper's points (``--reference``, columns dataset, curve, macs_millions, top1_percent, optional
figure) are drawn only where ``dataset`` equals ``--dataset`` (and ``figure``, when the column
exists and is set, equals ID); a data set without points draws none. staircase and easy-hard have
no MACs axis: there ``--reference`` is ignored with a note on stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import MsdnetError

HELP = "draw a figure of the paper (PDF + PNG) from its analysis table(s)"

# Kept here (not imported from msdnet.figures) so that `msdnet --help` does not load matplotlib;
# tests/test_figures.py checks that the two lists agree.
FIGURE_IDS = ("anytime", "budgeted", "staircase", "ablation", "easy-hard", "densenet-star",
              "reduction-lazy")
_NO_REFERENCE = ("staircase", "easy-hard")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("figure", choices=FIGURE_IDS, metavar="ID",
                        help=f"which figure: {', '.join(FIGURE_IDS)}")
    parser.add_argument("--table", metavar="CSV", help="the figure's table (all but densenet-star)")
    parser.add_argument("--anytime", metavar="CSV", help="densenet-star: the anytime table")
    parser.add_argument("--budgeted", metavar="CSV", help="densenet-star: the budgeted table")
    parser.add_argument("--data", metavar="YAML",
                        help="easy-hard: data config (DataConfig keys, or a recipe with a data: "
                             "section) whose test split holds the images")
    parser.add_argument("--labels", type=int, nargs="+", metavar="L",
                        help="easy-hard: the classes to show (default: chosen from the table)")
    parser.add_argument("--max-classes", type=int, default=4, metavar="N",
                        help="easy-hard: at most N classes (default 4)")
    parser.add_argument("--per-kind", type=int, default=4, metavar="N",
                        help="easy-hard: images per class and kind (default 4)")
    parser.add_argument("--reference", metavar="CSV",
                        help="the paper's points (reference_points.csv) to draw beside the curves")
    parser.add_argument("--dataset", metavar="NAME",
                        help="with --reference: draw the points of this data set (e.g. cifar100)")
    parser.add_argument("--title", metavar="TEXT", help="figure title (default: the figure's)")
    parser.add_argument("--out", required=True, metavar="STEM", help="writes STEM.pdf and STEM.png")


def _stem(out: str) -> Path:
    p = Path(out)
    return p.with_suffix("") if p.suffix.lower() in (".pdf", ".png") else p


def _check(args: argparse.Namespace) -> None:
    fid = args.figure
    if fid == "densenet-star":
        if args.table or not (args.anytime and args.budgeted):
            raise MsdnetError("densenet-star takes --anytime CSV and --budgeted CSV (not --table)")
    else:
        if not args.table:
            raise MsdnetError(f"{fid} needs --table CSV")
        if args.anytime or args.budgeted:
            raise MsdnetError(f"--anytime/--budgeted are for densenet-star only, not {fid}")
    if fid == "easy-hard" and not args.data:
        raise MsdnetError("easy-hard needs --data YAML (the data config whose test split holds the images)")
    if fid != "easy-hard" and (args.data or args.labels):
        raise MsdnetError(f"--data/--labels are for easy-hard only, not {fid}")
    if (args.reference is None) != (args.dataset is None):
        raise MsdnetError("--reference and --dataset go together (the paper's points of one data set)")


def run(args: argparse.Namespace) -> int:
    _check(args)
    from .. import figures as F   # matplotlib is loaded only when a figure is drawn

    ref = None
    if args.reference and args.figure in _NO_REFERENCE:
        # a workflow may pass the same options to every figure: note it, do not fail
        print(f"msdnet figure: note: {args.figure} has no MACs axis; --reference is ignored",
              file=sys.stderr)
    elif args.reference:
        ref = F.load_reference(args.reference, args.dataset, figure=args.figure)
    fid = args.figure
    if fid == "densenet-star":
        fig = F.densenet_star_figure(F.read_table(args.anytime, "anytime table"),
                                     F.read_table(args.budgeted, "budgeted table"),
                                     reference=ref, title=args.title,
                                     anytime_source=f"anytime table {args.anytime}",
                                     budgeted_source=f"budgeted table {args.budgeted}")
    else:
        table = F.read_table(args.table, f"{fid} table")
        source = f"{fid} table {args.table}"
        if fid == "easy-hard":
            images, ids, names = F.load_test_images(args.data)
            fig = F.easy_hard_figure(table, images, ids, labels=args.labels,
                                     max_classes=args.max_classes, per_kind=args.per_kind,
                                     class_names=names, title=args.title, source=source)
        elif fid == "staircase":
            fig = F.staircase_figure(table, title=args.title, source=source)
        else:
            draw = {"anytime": F.anytime_figure, "budgeted": F.budgeted_figure,
                    "ablation": F.ablation_figure, "reduction-lazy": F.reduction_lazy_figure}[fid]
            fig = draw(table, reference=ref, title=args.title, source=source)
    pdf, png = F.save(fig, _stem(args.out))
    print(f"wrote {pdf} and {png}")
    return 0
