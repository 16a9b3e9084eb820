"""msdnet miniature: write the embedded default's model configs from the paper's by one rule."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..models.miniature import RULE, SOURCES, miniature_yaml, target_path

HELP = ("write config/models/mini/*.yaml: the paper's CIFAR-100 configs made small by the "
        "miniature rule (widths / 2, digits input and classes, small heads)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = "rule: " + ", ".join(f"{k} {v}" for k, v in RULE.items())
    p.add_argument("--root", default="config/models", help="the model config folder (default: %(default)s)")
    p.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 if a written config differs from what the rule gives")


def run(args: argparse.Namespace) -> int:
    stale = []
    for name in SOURCES:
        text, path = miniature_yaml(name, args.root), target_path(name, args.root)
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        if current == text:
            continue
        if args.check:
            stale.append(str(path))
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    if stale:
        print(f"msdnet miniature: {len(stale)} config(s) differ from the rule: {', '.join(stale)}; "
              "run `msdnet miniature` and commit them")
        return 1
    return 0
