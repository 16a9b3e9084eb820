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
from .core import kernels
from .core.errors import MsdnetError


def _command_names() -> dict[str, str]:
    """CLI name -> module name of every subcommand (without importing them)."""
    return {info.name.replace("_", "-"): info.name
            for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name)
            if not info.name.startswith("_")}


def _command_modules(only: str | None = None) -> dict[str, object]:
    names = _command_names()
    if only in names:            # import just the command being run: startup stays fast
        names = {only: names[only]}
    return {cli: importlib.import_module(f"{commands.__name__}.{mod}") for cli, mod in names.items()}


# Commands only the workflow calls: left out of `msdnet --help`'s list, named in its last lines.
PLUMBING = ("collect",)


def make_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="msdnet", description=__doc__.splitlines()[0],
        epilog=f"plumbing (the workflow calls them; each has --help): {', '.join(PLUMBING)}. "
               "Conventions: costs in MMACs, accuracies as top-1 %, --out for what a command "
               "writes, --set SECTION.KEY=VALUE to override a config value.")
    parser.add_argument("--version", action="version", version=f"msdnet {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, mod in _command_modules(only).items():
        # help= is %-formatted by argparse, description= is printed as it is; a subparser
        # added without help= is left out of the list (the plumbing)
        short = {} if name in PLUMBING else {"help": mod.HELP.replace("%", "%%")}
        p = sub.add_parser(name, description=mod.HELP, **short)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def _one_line(exc: MsdnetError) -> str:
    """The message of ``exc``; one raised in a DataLoader worker comes back wrapped by torch
    ("Caught DataError in DataLoader worker process 0. Original Traceback ..."): its own line."""
    text = str(exc)
    if "\n" in text and text.startswith("Caught "):
        last = [ln for ln in text.splitlines() if ln.strip()][-1]
        return last.split(": ", 1)[1] if last.startswith("msdnet.") and ": " in last else last
    return text


def main(argv: list[str] | None = None) -> int:
    kernels.pin()                         # before any command imports torch (msdnet.core.kernels)
    argv = sys.argv[1:] if argv is None else list(argv)
    args = make_parser(argv[0] if argv else None).parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except MsdnetError as exc:
        print(f"msdnet {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except BrokenPipeError:               # e.g. `msdnet budgeted ... | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print(f"msdnet {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
