"""msdnet predict: record per-exit logits of a checkpoint on the val and test splits."""

from __future__ import annotations

import argparse

HELP = "record per-exit logits of a trained checkpoint as OUT_DIR/{val,test}.npz"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="checkpoint.pt or the --final file written by msdnet train")
    p.add_argument("--out-dir", required=True, help="directory for <split>.npz")
    p.add_argument("--splits", nargs="+", default=["val", "test"], choices=["val", "test"])
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--device", default="auto")
    p.add_argument("--set-data", action="append", default=[], metavar="KEY=VALUE",
                   help="where the checkpoint's data lives: root=DIR or imagenet_dir=DIR (repeatable); "
                        "keys that decide the splits cannot change")
    p.add_argument("--allow-unfinished", action="store_true", help="record a run that has not finished training")


def run(args: argparse.Namespace) -> int:
    from ..inference.predict import parse_data_overrides, predict_checkpoint   # torch

    overrides = parse_data_overrides(args.set_data)
    paths = predict_checkpoint(args.checkpoint, args.out_dir, splits=tuple(args.splits),
                               data_overrides=overrides, batch_size=args.batch_size, device=args.device,
                               allow_unfinished=args.allow_unfinished)
    for split, path in paths.items():
        print(f"{split}: {path}")
    return 0
