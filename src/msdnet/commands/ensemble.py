"""``msdnet ensemble``: an ensemble's predictions file (evaluated smallest first) from members'."""

from __future__ import annotations

import argparse

from ..evaluation.analysis.ensemble import build_ensemble
from ..inference.predictions import load, save

HELP = "build an ensemble's predictions (mean softmax of the first m members, cumulative MACs)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("members", nargs="+", metavar="MEMBER.npz",
                        help="members' predictions files of one split (sorted by MACs automatically)")
    parser.add_argument("--out", required=True, metavar="OUT.npz", help="the ensemble's predictions file")
    parser.add_argument("--name", default="ensemble", help="model name stored in meta (default: ensemble)")


def run(args: argparse.Namespace) -> int:
    members = [load(p) for p in args.members]
    ens = build_ensemble(members, names=list(args.members), model=args.name)
    save(args.out, ens)
    order = ", ".join(m["file"] for m in ens.meta["members"])
    print(f"wrote {args.out}: {ens.num_exits} steps ({order}), {ens.exit_macs[-1] / 1e6:.4g} MMACs in all")
    return 0
