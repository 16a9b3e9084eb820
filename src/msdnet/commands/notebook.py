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
    p.add_argument("--kernel", default="python3")


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
            executed = tmp_out.with_suffix(".ipynb")
            try:
                papermill.execute_notebook(str(src_ipynb), str(executed), parameters=params,
                                           kernel_name=kernel, progress_bar=False,
                                           cwd=str(run_dir))
            except PapermillExecutionError as exc:
                if executed.exists():
                    executed.replace(failed)
                first = str(exc.evalue).splitlines()[0] if exc.evalue else ""
                raise MsdnetError(f"{source}: cell {exc.exec_count} raised {exc.ename}: {first} "
                                  f"(run in {run_dir}; the failed notebook is {failed})") from None
            except BaseException:
                executed.unlink(missing_ok=True)
                raise
            done = nbformat.read(executed, as_version=4)
            for cell in done.cells:          # papermill tags every cell; keep real tags only
                if not cell.metadata.get("tags", True):
                    del cell.metadata["tags"]
            nbformat.write(done, tmp_out)
            executed.unlink()
        failed.unlink(missing_ok=True)
        if pair:                         # after the .ipynb: jupytext wants the script no older
            write_text_atomic(paired_script(out), jupytext.writes(done, fmt="py:percent"))
    return params


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


# -- helpers for the notebooks (notebooks/*.py import them) ---------------------------------------
# A notebook runs in results/<preset>/notebooks/ (the workflow's msdnet notebook, make lab): its
# path parameters are relative to that folder; data roots recorded in data summaries and
# predictions (written by jobs that run in the repository root) resolve from ``repo``.

def _looks_like_results(path: Path) -> bool:
    return any((path / sub).is_dir() for sub in ("tables", "predictions", "data"))


def locate(results_dir: str | os.PathLike, repo_dir: str | os.PathLike, figures_dir: str | os.PathLike | None = None,
           preset: str | None = None) -> dict[str, Path]:
    """``{"results", "repo", "figures"}`` of a notebook, from its parameters, relative to the cwd.

    ``figures_dir=None``: ``<repo>/figures/<name of the results folder>``. When ``results_dir``
    holds no results and the notebook runs from the repository's ``notebooks/`` folder (its
    source opened in Jupyter), ``../results/<preset>`` and ``..`` are used instead, with a note.
    """
    results, repo = Path(results_dir), Path(repo_dir)
    if not _looks_like_results(results) and preset:
        for root in (Path(".."), Path(".")):
            candidate = root / "results" / preset
            if _looks_like_results(candidate) and (root / "notebooks").is_dir():
                print(f"note: no results under {results} (from {Path.cwd()}); using {candidate}")
                results, repo = candidate, root
                break
    name = Path(os.path.abspath(results)).name
    figures = Path(figures_dir) if figures_dir is not None else repo / "figures" / name
    return {"results": results, "repo": repo, "figures": figures}


def rebase_data(raw: Mapping[str, Any], repo: str | os.PathLike) -> dict[str, Any]:
    """A data config with its relative ``root`` / ``imagenet_dir`` / ``holdout_indices`` resolved
    from ``repo``."""
    out = dict(raw)
    for key in ("root", "imagenet_dir", "holdout_indices"):
        if isinstance(out.get(key), str) and out[key] and not os.path.isabs(out[key]):
            out[key] = str(Path(repo) / out[key])
    return out


def read_data_config(path: str | os.PathLike) -> dict[str, Any]:
    """The data config of a data summary (``msdnet data --out``: its ``config``), a recipe (its
    ``data:`` section) or a data YAML."""
    import json

    path = Path(path)
    try:
        if path.suffix == ".json":
            raw = json.loads(path.read_text(encoding="utf-8"))["config"]
        else:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, yaml.YAMLError) as exc:
        raise MsdnetError(f"{path}: not a data summary or data config ({type(exc).__name__})") from None
    if isinstance(raw, dict) and isinstance(raw.get("data"), dict):
        raw = raw["data"]
    if not isinstance(raw, dict):
        raise MsdnetError(f"{path}: not a data summary or data config")
    return raw


def _same_data(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    from ..inference.predictions import LOCATION_KEYS

    keys = (set(a) & set(b)) - set(LOCATION_KEYS)
    return bool(keys) and all(a[k] == b[k] for k in keys)


def find_data_summary(results: str | os.PathLike, data: Mapping[str, Any] | None = None) -> Path | None:
    """The data summary under ``<results>/data/`` for the data config ``data`` (location keys
    aside); without ``data``, the only one there (or the newest, with a note). None if none."""
    found = sorted(Path(results, "data").glob("*.json"))
    if data is not None:
        for path in found:
            try:
                if _same_data(read_data_config(path), data):
                    return path
            except MsdnetError:
                continue
        return None
    if len(found) > 1:
        found.sort(key=lambda p: p.stat().st_mtime)
        print(f"note: {len(found)} data summaries in {Path(results, 'data')}; using the newest, {found[-1].name}")
    return found[-1] if found else None


def find_predictions(results: str | os.PathLike, name: str, seed: int) -> Path | None:
    """``<results>/predictions/<name>/<key>/seed<seed>/`` holding val.npz and test.npz (the newest
    key when stale ones are left, with a note); None when there is none."""
    found = [d for d in Path(results, "predictions", name).glob(f"*/seed{seed}")
             if (d / "val.npz").is_file() and (d / "test.npz").is_file()]
    if len(found) > 1:
        found.sort(key=lambda d: (d / "test.npz").stat().st_mtime)
        print(f"note: {len(found)} prediction runs of {name} (seed {seed}); using the newest, {found[-1]}")
    return found[-1] if found else None


def load_test_split(data: Mapping[str, Any], repo: str | os.PathLike, source: str = "data config"):
    """``(images, ids, class_names)`` of the test split of a data config (relative roots from
    ``repo``): uint8 ``[N, C, H, W]`` images (in memory, or read on demand from an image folder),
    their ``sample_ids`` and the class names (None when the data set has none)."""
    import numpy as np

    from ..core.config import from_dict
    from ..data import DataConfig, load_data

    bundle = load_data(from_dict(DataConfig, rebase_data(data, repo), source))
    test = bundle.test
    names = list(bundle.class_names) if bundle.class_names else None
    if hasattr(test, "images") and hasattr(test, "ids"):
        return np.asarray(test.images), np.asarray(test.ids), names
    samples = getattr(test, "samples", None)
    if samples is None:
        raise MsdnetError(f"{source}: its test split holds no images a notebook can show")
    from ..figures.easy_hard import FolderImages

    return FolderImages(samples), np.arange(len(samples)), names or list(getattr(test, "classes", [])) or None


# -- what the workflow's notebook rule passes (workflow/rules/notebooks.smk) ---------------------

def explorer_source(preset) -> tuple[str | None, int | None]:
    """(name, seed) the budget explorer shows for a ``msdnet.planning.workflow.Preset``: the middle model of
    the budgeted figure's MSDNet curve (msdnet for mini and tiny, msdnet-b6 for CIFAR), else
    msdnet, else the first planned MSDNet predictions, else any; (None, None) without any."""
    needed = preset.predictions_needed()
    names = [n for n, _ in needed]
    candidates = []
    budgeted = preset.figures.get("budgeted")
    dynamic = budgeted.get("dynamic") if isinstance(budgeted, dict) else None
    for label, models in (dynamic or {}).items():
        models = [models] if isinstance(models, str) else list(models or [])
        if str(label).startswith("MSDNet") and models:
            candidates.append(models[len(models) // 2])
    candidates += ["msdnet"] + [n for n in names if n.startswith("msdnet")] + names
    for name in candidates:
        seeds = sorted(s for n, s in needed if n == name)
        if seeds:
            return name, seeds[0]
    return None, None


def workflow_plan(preset, reference_csv: str) -> dict[str, Any]:
    """The notebook rule's inputs and arguments for a preset (paths relative to the repository
    root, where Snakemake runs; msdnet notebook makes them relative to the notebooks' folder)."""
    import json
    import shlex

    def quoted(args):
        return " ".join(shlex.quote(str(a)) for a in args)

    results, name = str(preset.results), json.dumps(preset.name)
    ref_dataset = preset.cfg.get("reference_dataset")
    overview = ["--path", "results_dir", results, "--path", "figures_dir", str(preset.figures_dir),
                "--path", "repo_dir", ".", "-p", "preset", name]
    if ref_dataset:
        overview += ["--path", "reference_csv", reference_csv, "-p", "dataset", json.dumps(ref_dataset)]
    explorer = ["--path", "results_dir", results, "--path", "repo_dir", ".", "-p", "preset", name]
    model, seed = explorer_source(preset)
    inputs, key = [], "none"
    if model is not None:
        pred_dir = preset.predictions_dir(model, seed)
        member = model if model in preset.cfg["models"] else preset.cfg["ensembles"][model][0]
        summary = str(preset.data_summary(member))
        explorer += ["-p", "model", json.dumps(model), "-p", "seed", str(seed),
                     "--path", "predictions_dir", str(pred_dir), "--path", "data_summary", summary]
        inputs = [str(pred_dir / "val.npz"), str(pred_dir / "test.npz"), summary]
        key = f"{model}/{preset.key_of(model)}/seed{seed}"
    return {"overview_args": quoted(overview), "explorer_args": quoted(explorer),
            "reference": [reference_csv] if ref_dataset else [], "explorer_inputs": inputs,
            "explorer_key": key}
