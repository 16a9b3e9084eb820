"""msdnet findings: which of the paper's findings a preset's tables reproduce (a Markdown table)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core.errors import MsdnetError

HELP = "check the paper's five findings on a preset's tables (results/<preset>/tables) as Markdown"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("tables", help="the tables folder, e.g. results/mini/tables")


def run(args: argparse.Namespace) -> int:
    from ..evaluation.analysis.findings import all_findings, markdown

    if not Path(args.tables).is_dir():
        raise MsdnetError(f"{args.tables}: no such folder; run the workflow first (make figures)")
    print(markdown(all_findings(args.tables)))
    return 0
