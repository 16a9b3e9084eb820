"""The options every ``msdnet`` command spells the same way (one convention, docs/howto.md).

* ``--out`` names what a command writes (a file, a folder or a stem); ``--out-dir`` and
  ``--csv`` of ``collect`` are its deprecated spellings and still work.
* ``--set SECTION.KEY=VALUE`` overrides a config value; ``--set-data KEY=VALUE`` (predict, infer)
  is its deprecated spelling of ``--set data.KEY=VALUE`` and still works (hidden from the help).
* Tables printed to the terminal give costs in MMACs and accuracies as top-1 %
  (:func:`msdnet.evaluation.analysis.common.display_table`).
* A progress bar is drawn on a terminal only (stderr a TTY); logs stay quiet (:func:`msdnet.core.io.terminal_progress`).
"""

from __future__ import annotations

import argparse
from typing import Iterable


class SetDataAlias(argparse.Action):
    """``--set-data KEY=VALUE`` (deprecated): appends ``data.KEY=VALUE`` to ``--set``'s list."""

    def __call__(self, parser, namespace, values, option_string=None):
        items = list(getattr(namespace, self.dest, None) or [])
        items.append(f"data.{values}")
        setattr(namespace, self.dest, items)


def add_data_set(p: argparse.ArgumentParser) -> None:
    """``--set data.KEY=VALUE`` (only the data's location may change) and its old ``--set-data``."""
    p.add_argument("--set", action="append", default=[], metavar="data.KEY=VALUE",
                   help="where the checkpoint's data lives: data.root=DIR or data.imagenet_dir=DIR "
                        "(repeatable); keys that decide the splits cannot change "
                        "(--set-data KEY=VALUE: deprecated spelling)")
    p.add_argument("--set-data", action=SetDataAlias, dest="set", metavar="KEY=VALUE", help=argparse.SUPPRESS)


def data_overrides(items: Iterable[str]) -> dict:
    """``--set data.KEY=VALUE`` items to location overrides (msdnet.inference.predict)."""
    from ..core.errors import ConfigError
    from ..inference.predict import parse_data_overrides

    keys = []
    for item in items:
        section, dot, rest = item.partition(".")
        if section != "data" or not dot:
            raise ConfigError(f"--set {item!r}: only data.KEY=VALUE applies to a trained checkpoint, "
                              "e.g. --set data.root=DIR")
        keys.append(rest)
    return parse_data_overrides(keys, flag="--set data.")
