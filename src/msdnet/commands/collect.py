"""msdnet collect: the tidy table behind one figure, from a preset's predictions files."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..analysis.common import write_csv
from ..errors import ConfigError
from ..workflow import TABLES, Preset, collect

HELP = "build the long-format table behind a figure from a preset's predictions (CSV)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("table", choices=TABLES)
    p.add_argument("--preset", required=True, help="validated preset JSON written by `msdnet preset --write`")
    p.add_argument("--results", required=True, help="results/<preset> directory holding predictions/")
    p.add_argument("--csv", required=True, help="output CSV")


def run(args: argparse.Namespace) -> int:
    path = Path(args.preset)
    if not path.is_file():
        raise ConfigError(f"{path}: no such preset file; write it with `msdnet preset CONFIG --write {path}`")
    preset = Preset(json.loads(path.read_text()))
    df = collect(args.table, preset, args.results)
    write_csv(df, args.csv)
    print(f"{args.csv}: {len(df)} rows")
    return 0
