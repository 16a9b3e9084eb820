"""msdnet model-table: the table of every network (docs/baselines.md), with its MACs and parameters."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from ..core.config import load_yaml
from ..core.errors import MsdnetError
from ..core.io import write_text_atomic

HELP = "table of model configs: arch, exits, MACs at the first and last exit, parameters (markdown)"
START, END = "<!-- model-table:start -->", "<!-- model-table:end -->"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("configs", nargs="+", help="model config YAMLs")
    p.add_argument("--update", "--update-readme", dest="update_readme", metavar="FILE",
                   help="replace the table between the model-table markers of FILE (docs/baselines.md)")


def _fmt(n: float) -> str:
    for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if n >= div:
            return f"{n / div:.2f}{unit}"
    return str(int(n))


def model_table(paths: list[str]) -> str:
    from ..models import build              # torch: imported when the command runs
    from ..models.cost import count_costs

    rows = ["| config | arch | exits | MACs, first exit | MACs, last exit | params |",
            "|---|---|---|---|---|---|"]
    for path in sorted(paths):
        cfg = load_yaml(path)
        costs = count_costs(build(cfg, path))
        first = _fmt(costs[0].macs) if len(costs) > 1 else ""
        rows.append(f"| `{Path(path).name}` | {cfg['arch']} | {len(costs)} | {first} | "
                    f"{_fmt(costs[-1].macs)} | {costs[-1].params:,} |")
    return "\n".join(rows) + "\n"


def update_readme(readme: str | Path, table: str) -> None:
    text = Path(readme).read_text()
    if START not in text or END not in text:
        raise MsdnetError(f"{readme}: no {START} ... {END} markers to put the table between")
    new = re.sub(re.escape(START) + r".*?" + re.escape(END), lambda _: f"{START}\n{table}{END}", text,
                 flags=re.S)
    write_text_atomic(readme, new)


def run(args: argparse.Namespace) -> int:
    table = model_table(args.configs)
    if args.update_readme:
        update_readme(args.update_readme, table)
    else:
        print(table, end="")
    return 0
