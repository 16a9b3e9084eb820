"""``msdnet figure ID``: draw one of the paper's figures from its table(s); writes STEM.pdf and
STEM.png. Which tables each figure takes is declared in ``msdnet.figures.registry``:

    msdnet figure anytime        --table anytime.csv        [--reference CSV --dataset NAME] --out STEM
    msdnet figure budgeted       --table budgeted.csv       [--reference CSV --dataset NAME] --out STEM
    msdnet figure ablation       --table ablation.csv       [--reference CSV --dataset NAME] --out STEM
    msdnet figure reduction-lazy --table reduction_lazy.csv [--reference CSV --dataset NAME] --out STEM
    msdnet figure densenet-star  --table ANYTIME.csv --table BUDGETED.csv [--reference ...] --out STEM
    msdnet figure staircase      --table staircase.csv --out STEM
    msdnet figure easy-hard      --table easy_hard.csv --data DATA [--labels L ..]
                                 [--max-classes N] [--per-kind N] --out STEM

Beyond the paper (exit combiners and calibration; no paper's points):

    msdnet figure anytime-combiners  --table combiners.csv --out STEM
    msdnet figure monotonicity       --table monotonicity.csv --out STEM
    msdnet figure calibration        --table calibration.csv --table reliability.csv --out STEM
    msdnet figure budgeted-combiners --table budgeted_combiners.csv --out STEM

The paper's points (``--reference``, columns dataset, curve, macs_millions, top1_percent, figure)
are drawn only where ``dataset`` equals ``--dataset`` and ``figure`` equals ID; a data set
without points for the figure draws none and says so on the figure and on stderr. Figures
without the paper's points (staircase, easy-hard and the four above) ignore ``--reference``
with a note on stderr. ``--key`` (the figure's key file, as the workflow passes it) refuses
tables that lack a curve or a seed the figure's spec names.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..core.errors import MsdnetError
from ..figures.registry import FIGURES, label_problem, resolve

HELP = "draw a figure of the paper (PDF + PNG) from its analysis table(s)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # the registry as it is when the parser is built (a figure registered later is a choice too)
    parser.add_argument("figure", choices=FIGURES, metavar="ID",
                        help=f"which figure: {', '.join(FIGURES)}")
    parser.add_argument("--table", action="append", default=[], metavar="CSV",
                        help="the figure's table; densenet-star takes two (anytime, then budgeted), "
                             "calibration two (calibration, then reliability)")
    parser.add_argument("--data", metavar="FILE",
                        help="easy-hard: the data whose test split holds the images (a data summary "
                             "JSON from `msdnet data --out`, a data YAML or a recipe)")
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
    parser.add_argument("--key", metavar="KEY.json",
                        help="the figure's key file (its spec, as the workflow writes it): refuse "
                             "tables that lack a curve or seed it names")
    parser.add_argument("--title", metavar="TEXT", help="figure title (default: the figure's)")
    parser.add_argument("--out", required=True, metavar="STEM", help="writes STEM.pdf and STEM.png")


def _stem(out: str) -> Path:
    p = Path(out)
    return p.with_suffix("") if p.suffix.lower() in (".pdf", ".png") else p


def _check(args: argparse.Namespace) -> None:
    spec = FIGURES[args.figure]
    names = [t.name for t in spec.tables]
    if len(args.table) != len(names):
        raise MsdnetError(f"{args.figure} takes {len(names)} --table CSV ({', '.join(names)}), "
                          f"got {len(args.table)}")
    if spec.needs_images and not args.data:
        raise MsdnetError(f"{args.figure} needs --data FILE (the data whose test split holds the images)")
    if not spec.needs_images and (args.data or args.labels):
        raise MsdnetError(f"--data/--labels are for easy-hard only, not {args.figure}")
    if (args.reference is None) != (args.dataset is None):
        raise MsdnetError("--reference and --dataset go together (the paper's points of one data set)")


def _figure_spec(path: str, figure: str) -> dict:
    from ..planning.runs import read_key

    spec = read_key(path, "figure", figure)
    if not isinstance(spec.get("tables"), list):
        raise MsdnetError(f"--key {path}: lacks the figure's tables")
    return spec


def run(args: argparse.Namespace) -> int:
    _check(args)
    from ..figures.common import check_complete, load_reference, read_table
    from ..figures.style import figure_labels, save

    spec = FIGURES[args.figure]
    ref = None
    if args.reference and not spec.macs_axis:
        # a workflow may pass the same options to every figure: note it, do not fail
        print(f"msdnet figure: note: {args.figure} has no MACs axis; --reference is ignored",
              file=sys.stderr)
    elif args.reference:
        ref = load_reference(args.reference, args.dataset, figure=args.figure)
        if ref.empty:
            print(f"msdnet figure: note: {args.reference} has no published points of {args.dataset!r} "
                  f"for {args.figure}; drawing the reproduced curves only", file=sys.stderr)
    names = [t.name for t in spec.tables]
    tables = {n: read_table(p, f"{n} table") for n, p in zip(names, args.table)}
    sources = {n: f"{n} table {p}" for n, p in zip(names, args.table)}
    if args.key:
        check_complete(tables, _figure_spec(args.key, args.figure), sources)
    labels = [str(v) for df in tables.values() for col in ("model", "family") if col in df.columns
              for v in df[col].dropna() if str(v).strip()]
    for label in dict.fromkeys(labels):      # mathtext that would fail when saved, checked first
        problem = label_problem(label)
        if problem:
            raise MsdnetError(f"{args.figure}: legend label {label!r} in its table {problem}")
    options = {"labels": args.labels, "max_classes": args.max_classes, "per_kind": args.per_kind}
    if spec.needs_images:
        from ..evaluation.images import load_test_images

        options["images"], options["ids"], options["class_names"] = load_test_images(args.data)
    with figure_labels(labels):
        fig = resolve(spec.draw)(tables, reference=ref, title=args.title, options=options, sources=sources)
    pdf, png = save(fig, _stem(args.out))
    print(f"wrote {pdf} and {png}")
    return 0
