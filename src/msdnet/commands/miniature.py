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
    p.add_argument("--table", action="store_true",
                   help="write nothing; print the markdown table of docs/miniature.md (each network's "
                        "exits and the MMACs of its first and last exit, paper beside miniature)")
    p.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 if a written config differs from what the rule gives")


def cost_table(root: str = "config/models") -> str:
    """Markdown: per network, the paper's and the miniature's first/last exit MMACs and ratio."""
    from ..core.config import load_yaml
    from ..models.cost import count_costs
    from ..models import build
    from ..models.miniature import miniature, source_path

    rows = ["| network | paper config | exits | paper first / last exit (MMACs) | ratio "
            "| miniature | first / last exit (MMACs) | ratio |",
            "|---|---|---:|---:|---:|---|---:|---:|"]
    for name in SOURCES:
        paper = load_yaml(source_path(name, root))
        costs = {}
        for kind, cfg in (("paper", paper), ("mini", miniature(paper, name))):
            macs = [c.macs for c in count_costs(build(cfg, name))]
            costs[kind] = (len(macs), macs[0] / 1e6, macs[-1] / 1e6)
        (n, pf, pl), (_, mf, ml) = costs["paper"], costs["mini"]
        rows.append(f"| {name} | `{source_path(name, 'config/models').name}` | {n} | {pf:.1f} / {pl:.1f} "
                    f"| {pl / pf:.2f} | `mini/{name}.yaml` | {mf:.2f} / {ml:.2f} | {ml / mf:.2f} |")
    return "\n".join(rows) + "\n"


def run(args: argparse.Namespace) -> int:
    if args.table:
        print(cost_table(args.root), end="")
        return 0
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
