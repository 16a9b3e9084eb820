"""The ``msdnet`` command: MSDNet models, MAC counting, training, predictions and analysis.

Each subcommand lives in ``msdnet/commands/<name>.py`` and exposes
``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``; this file only
discovers and dispatches them. Bad input (an ``MsdnetError``) prints one line and exits 2.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from . import __version__, commands
from .errors import MsdnetError


def _command_modules() -> dict[str, object]:
    mods = {}
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        mods[info.name.replace("_", "-")] = importlib.import_module(f"{commands.__name__}.{info.name}")
    return mods


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="msdnet", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"msdnet {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, mod in _command_modules().items():
        p = sub.add_parser(name, help=mod.HELP.replace("%", "%%"), description=mod.HELP.replace("%", "%%"))
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except MsdnetError as exc:
        print(f"msdnet {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:               # e.g. `msdnet budgeted ... | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print(f"msdnet {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
