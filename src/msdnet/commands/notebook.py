"""msdnet notebook: execute a jupytext notebook with papermill into an .ipynb."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import yaml

from ..errors import MsdnetError
from ..io import atomic_path

HELP = "execute a jupytext (.py) notebook with papermill, saving the executed .ipynb"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("notebook", help="jupytext percent-format notebook (notebooks/*.py)")
    p.add_argument("--out", required=True, help="executed notebook (.ipynb)")
    p.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="papermill parameter (VALUE parsed as YAML); repeatable")
    p.add_argument("--kernel", default="python3")


def execute(notebook: str | Path, out: str | Path, parameters: dict, kernel: str = "python3") -> None:
    import jupytext
    import papermill

    source = Path(notebook)
    if not source.is_file():
        raise MsdnetError(f"{source}: no such notebook")
    nb = jupytext.read(source)
    with tempfile.TemporaryDirectory() as tmp:
        src_ipynb = Path(tmp) / (source.stem + ".ipynb")
        jupytext.write(nb, src_ipynb)
        with atomic_path(out) as tmp_out:
            papermill.execute_notebook(str(src_ipynb), str(tmp_out.with_suffix(".ipynb")),
                                       parameters=parameters, kernel_name=kernel, progress_bar=False,
                                       cwd=str(Path.cwd()))
            tmp_out.with_suffix(".ipynb").replace(tmp_out)


def run(args: argparse.Namespace) -> int:
    params = {name: yaml.safe_load(value) for name, value in args.parameter}
    execute(args.notebook, args.out, params, args.kernel)
    print(f"{args.out}: executed")
    return 0
