"""msdnet key: record what a table, figure or notebook was built from (the workflow's job key)."""

from __future__ import annotations

import argparse
import json

from ..core.errors import ConfigError
from ..planning.runs import write_key

HELP = "write a job's key file (.keys/NAME.HASH.json) and remove its older keys"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help="DIR/.keys/NAME.HASH.json, HASH being the spec's hash")
    p.add_argument("--spec", required=True, metavar="JSON", help="the spec the output was built from")


def run(args: argparse.Namespace) -> int:
    try:
        spec = json.loads(args.spec)
    except json.JSONDecodeError:
        raise ConfigError("--spec: not valid JSON") from None
    print(write_key(args.path, spec))
    return 0
