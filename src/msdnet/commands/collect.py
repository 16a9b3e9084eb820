"""msdnet collect: the tidy table behind a figure, from predictions files."""

from __future__ import annotations

import argparse

from ..core.errors import ConfigError
from ..evaluation.analysis.common import write_csv
from ..figures.registry import TABLES, resolve

HELP = "build the long-format table behind a figure from predictions files (CSV)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("table", choices=sorted(TABLES), help="which table (results/<preset>/tables/TABLE.csv)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--key", metavar="KEY.json",
                     help="the table's key file, as the workflow writes it "
                          "(results/<preset>/tables/.keys/TABLE.HASH.json): its spec")
    src.add_argument("--preset", metavar="CONFIG.yaml",
                     help="plan the table from a preset file, as the workflow would")
    p.add_argument("--out", "--csv", dest="out", required=True, metavar="OUT.csv",
                   help="the table to write (--csv: deprecated spelling)")


def spec_from_args(args: argparse.Namespace) -> dict:
    if args.preset:
        from ..core.config import load_yaml
        from ..planning.workflow import plan

        return plan(load_yaml(args.preset), args.preset).table_spec(args.table)
    from ..planning.runs import read_key

    spec = read_key(args.key, "table", args.table)
    if not isinstance(spec.get("section"), dict) or not isinstance(spec.get("sources"), dict):
        raise ConfigError(f"--key {args.key}: lacks the table's section or sources")
    return spec


def run(args: argparse.Namespace) -> int:
    from ..evaluation.tables import Sources

    spec = spec_from_args(args)
    _, table = TABLES[args.table]
    df = resolve(table.build)(spec["section"], Sources(spec["sources"]))
    write_csv(df, args.out)
    print(f"{args.out}: {len(df)} rows")
    return 0
