"""msdnet predict: record per-exit logits of a checkpoint on the val and test splits."""

from __future__ import annotations

import argparse

from ._options import add_data_set, data_overrides

HELP = "record per-exit logits of a trained checkpoint as OUT/{val,test}.npz"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="checkpoint.pt or the --final file written by msdnet train")
    p.add_argument("--out", "--out-dir", dest="out", required=True, metavar="DIR",
                   help="directory for <split>.npz (--out-dir: deprecated spelling)")
    p.add_argument("--splits", nargs="+", default=["val", "test"], choices=["val", "test"],
                   help="which splits to record (default: val test)")
    p.add_argument("--batch-size", type=int, default=256, metavar="N",
                   help="images per forward pass (default: %(default)s); the logits do not depend on it")
    p.add_argument("--device", default="auto",
                   help="auto (the least-loaded GPU, else cpu) | cpu | cuda | cuda:N (default: auto)")
    add_data_set(p)
    p.add_argument("--allow-unfinished", action="store_true", help="record a run that has not finished training")


def run(args: argparse.Namespace) -> int:
    from ..inference.predict import predict_checkpoint   # torch

    paths = predict_checkpoint(args.checkpoint, args.out, splits=tuple(args.splits),
                               data_overrides=data_overrides(args.set), batch_size=args.batch_size,
                               device=args.device, allow_unfinished=args.allow_unfinished, progress=True)
    for split, path in paths.items():
        print(f"{split}: {path}")
    return 0
