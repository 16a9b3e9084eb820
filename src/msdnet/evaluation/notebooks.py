"""Helpers for the notebooks (``notebooks/*.py`` import them): where a notebook's results,
figures and repository are, which data summary and predictions it reads, and its test images.

A notebook runs in results/<preset>/notebooks/ (the workflow's msdnet notebook, make lab): its
path parameters are relative to that folder; data roots recorded in data summaries and
predictions (written by jobs that run in the repository root) resolve from ``repo``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import yaml

from ..core.errors import MsdnetError


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
                print(f"note: no results under {results} (from this notebook's folder); using {candidate}")
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
    from .images import FolderImages

    return FolderImages(samples), np.arange(len(samples)), names or list(getattr(test, "classes", [])) or None


def in_mmacs(df):
    """A table as the notebooks show it: MACs columns in MMACs (``first_exit_macs`` ->
    ``first_exit_MMACs``), accuracies as ``top-1 %`` (:func:`msdnet.evaluation.analysis.common.
    display_table`), and a table whose columns are budgets in MACs (``budget (MACs)``) with its
    budgets in MMACs. Display only: the tables on disk keep MACs. None stays None."""
    if df is None:
        return None
    from .analysis.common import display_table

    if df.columns.name == "budget (MACs)":
        out = df.copy()
        out.columns = pd_index([c / 1e6 for c in df.columns], "budget (MMACs)")
        return out
    if all(isinstance(c, str) for c in df.columns):
        return display_table(df)
    return df


def pd_index(values, name):
    import pandas as pd

    return pd.Index([round(float(v), 4) for v in values], name=name)
