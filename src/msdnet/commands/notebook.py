"""msdnet notebook: execute a jupytext notebook with papermill into an .ipynb (and its paired .py).

The notebook runs in the folder of its output (``--cwd`` to choose another), so the executed
notebook keeps working when it is opened there later (``make lab``): path parameters given with
``--path NAME PATH`` (PATH relative to where ``msdnet notebook`` runs) reach the notebook relative
to that folder, e.g. ``--path results_dir results/mini`` becomes ``results_dir = ".."`` for
``--out results/mini/notebooks/overview.ipynb``. ``-p NAME VALUE`` parameters are passed as they
are (VALUE parsed as YAML).

The executed notebook is paired with a jupytext percent script beside it (``overview.ipynb`` +
``overview.py``, metadata ``jupytext: formats: ipynb,py:percent``): saving either one in
JupyterLab (with jupytext, a dependency) updates the other; ``jupytext --sync FILE`` does the same
from a shell. The source of truth stays ``notebooks/*.py`` in the repository.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping

import yaml

from ..core.errors import MsdnetError
from ..core.io import atomic_path, write_text_atomic

HELP = ("execute a jupytext (.py) notebook with papermill in its output's folder, saving the "
        "executed .ipynb and its paired .py")

PAIRED_FORMATS = "ipynb,py:percent"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("notebook", help="jupytext percent-format notebook (notebooks/*.py)")
    p.add_argument("--out", required=True, help="executed notebook (.ipynb); the notebook runs in its folder")
    p.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="papermill parameter (VALUE parsed as YAML, passed as is); repeatable")
    p.add_argument("-P", "--path", nargs=2, action="append", default=[], metavar=("NAME", "PATH"),
                   help="path parameter: PATH relative to the current directory (or absolute), passed "
                        "to the notebook relative to the folder it runs in; repeatable")
    p.add_argument("--cwd", help="folder the notebook runs in (default: the folder of --out)")
    p.add_argument("--no-pair", action="store_true",
                   help="do not write the paired jupytext .py beside the executed .ipynb")
    p.add_argument("--kernel", default="python3",
                   help="the Jupyter kernel that executes it (default: %(default)s)")


def relative_to(path: str | os.PathLike, cwd: str | os.PathLike) -> str:
    """``path`` (relative to the current directory, or absolute) as seen from ``cwd``.

    Relative paths stay relative (so an executed notebook keeps working when its folder moves
    together with the files it reads); absolute paths stay absolute.
    """
    if os.path.isabs(path):
        return str(path)
    return Path(os.path.relpath(os.path.abspath(path), os.path.abspath(cwd))).as_posix()


def paired_script(out: str | os.PathLike) -> Path:
    """The jupytext percent script paired with an executed notebook: ``X.ipynb`` -> ``X.py``."""
    return Path(out).with_suffix(".py")


def execute(notebook: str | Path, out: str | Path, parameters: Mapping[str, Any] | None = None,
            kernel: str = "python3", paths: Mapping[str, str | os.PathLike] | None = None,
            cwd: str | os.PathLike | None = None, pair: bool = True) -> dict[str, Any]:
    """Execute ``notebook`` (a jupytext script) into ``out`` with ``cwd`` (default: ``out``'s
    folder) as its working directory; returns the parameters it was given.

    ``paths`` are path parameters relative to the current directory (or absolute); the notebook
    gets them relative to ``cwd`` (:func:`relative_to`). A cell that raises is one
    ``MsdnetError`` line; ``out`` is left as it was and the failed notebook is kept as
    ``X.failed.ipynb`` beside it. With ``pair``, the executed notebook is
    paired with ``X.py`` beside it (written after the ``.ipynb``, so jupytext sees them in step).
    """
    import jupytext
    import nbformat
    import papermill
    from papermill.exceptions import PapermillExecutionError

    source, out = Path(notebook), Path(out)
    if not source.is_file():
        raise MsdnetError(f"{source}: no such notebook")
    if out.suffix != ".ipynb":
        raise MsdnetError(f"--out {out}: the executed notebook must be an .ipynb file")
    run_dir = Path(cwd) if cwd is not None else out.parent
    run_dir.mkdir(parents=True, exist_ok=True)
    params = dict(parameters or {})
    params.update({name: relative_to(p, run_dir) for name, p in (paths or {}).items()})
    try:
        nb = jupytext.read(source)
    except Exception as exc:  # noqa: BLE001 - jupytext raises many kinds on a malformed script
        raise MsdnetError(f"{source}: not a jupytext notebook ({type(exc).__name__}: {exc})") from None
    nb.metadata.setdefault("jupytext", {})
    nb.metadata["jupytext"].pop("text_representation", None)
    if pair:
        nb.metadata["jupytext"]["formats"] = PAIRED_FORMATS
        # the paired script keeps the cells' tags (parameters) but not papermill's timings and
        # the notebook header without papermill's record (both stay in the .ipynb)
        nb.metadata["jupytext"]["cell_metadata_filter"] = "tags,-all"
        nb.metadata["jupytext"]["notebook_metadata_filter"] = "-papermill"
    else:
        nb.metadata["jupytext"].pop("formats", None)
    with tempfile.TemporaryDirectory() as tmp:
        src_ipynb = Path(tmp) / (source.stem + ".ipynb")
        nbformat.write(nb, src_ipynb)
        failed = out.with_suffix(".failed.ipynb")
        with atomic_path(out) as tmp_out:
            # papermill's output in the temporary folder, never beside the outputs: nothing is
            # left there when writing fails (a full disk) but atomic_path's *.tmp, removed too
            executed = Path(tmp) / f"executed-{source.stem}.ipynb"
            try:
                papermill.execute_notebook(str(src_ipynb), str(executed), parameters=params,
                                           kernel_name=kernel, progress_bar=False,
                                           cwd=str(run_dir))
            except PapermillExecutionError as exc:
                if executed.exists():
                    shutil.move(executed, failed)
                first = str(exc.evalue).splitlines()[0] if exc.evalue else ""
                raise MsdnetError(f"{source}: cell {exc.exec_count} raised {exc.ename}: {first} "
                                  f"(run in {run_dir}; the failed notebook is {failed})") from None
            except BaseException:
                executed.unlink(missing_ok=True)
                raise
            done = without_run_records(nbformat.read(executed, as_version=4))
            nbformat.write(done, tmp_out)
        failed.unlink(missing_ok=True)
        if pair:                         # after the .ipynb: jupytext wants the script no older
            write_text_atomic(paired_script(out), jupytext.writes(done, fmt="py:percent"))
    return params


def without_run_records(nb):
    """``nb`` without what differs between two executions of the same notebook on the same inputs:
    papermill's and nbclient's timings, status and temporary paths (its parameters stay), the
    random cell ids, and the empty tags papermill adds. The executed notebook is then a function of its inputs (DVC)."""
    record = nb.metadata.get("papermill")
    if record is not None:
        nb.metadata["papermill"] = {k: record[k] for k in ("parameters", "version") if k in record}
    for i, cell in enumerate(nb.cells):
        if "id" in cell:                  # nbformat 4.5 draws random cell ids: number them
            cell["id"] = f"cell-{i}"
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if not cell.metadata.get("tags", True):
            del cell.metadata["tags"]
    return with_stable_widget_ids(nb)


WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def with_stable_widget_ids(nb):
    """The widgets' model ids (random per execution: the budget explorer's slider) renumbered in
    order of appearance, in the saved widget state and in the outputs that show them, so that two
    executions write the same bytes and the widgets still find their state when opened."""
    import json
    import re

    import nbformat

    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    text = nbformat.writes(nb)
    ids = set(state) | set(re.findall(r'"model_id": "([0-9a-f]{32})"', text))
    if not ids:
        return nb
    # the outputs' widgets in order of appearance, then the models they reference, breadth
    # first (a widget's own state is written with sorted keys): an order that does not depend
    # on the random ids themselves (the state dict is written sorted by them)
    cells_text = json.dumps(nb.cells)                      # the outputs, without the state
    order, queue = [], sorted((m for m in ids if m in cells_text), key=cells_text.find)
    while queue:
        mid = queue.pop(0)
        if mid in order:
            continue
        order.append(mid)
        own = json.dumps(state.get(mid, {}), sort_keys=True)
        queue += sorted((m for m in set(re.findall(r"IPY_MODEL_([0-9a-f]{32})", own)) if m not in order),
                        key=own.find)
    rest = sorted((m for m in ids if m not in order),
                  key=lambda m: json.dumps(state.get(m, {}), sort_keys=True).replace(m, ""))
    order += rest
    for i, mid in enumerate(order):
        text = text.replace(mid, f"@@widget{i}@@")
    for i in range(len(order)):
        text = text.replace(f"@@widget{i}@@", f"{i + 1:032x}")
    return nbformat.reads(json.dumps(json.loads(text)), as_version=4)


def run(args: argparse.Namespace) -> int:
    params = {name: yaml.safe_load(value) for name, value in args.parameter}
    paths = dict(args.path)
    overlap = sorted(set(params) & set(paths))
    if overlap:
        raise MsdnetError(f"parameter {overlap[0]!r} given both with -p and --path; give it once")
    execute(args.notebook, args.out, params, args.kernel, paths=paths, cwd=args.cwd, pair=not args.no_pair)
    pair = "" if args.no_pair else f" (paired with {paired_script(args.out)})"
    print(f"{args.out}: executed in {args.cwd or Path(args.out).parent}{pair}")
    return 0
