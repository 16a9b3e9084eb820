"""The predictions file: one ``.npz`` per (model run, split), read by every analysis.

Keys:
    logits      float32 [E, N, C]  per-exit logits (E exits, N images, C classes)
    labels      int64   [N]
    exit_macs   float64 [E]        cumulative MACs up to and including exit k (batch size 1)
    exit_params int64   [E]        cumulative parameters up to exit k
    sample_ids  int64   [N]        index of each image in its data set split
    meta        str                JSON: checkpoint_sha256, config_hash, split, dataset,
                                   split_seed, data (the data config), code_version (package
                                   version only: a commit that changes no number changes no
                                   file), cpu_kernels (msdnet.core.kernels.record), arch,
                                   model (config name) ...

:func:`check_pair` is the one check every analysis that takes a validation and a test file runs
(budgeted, infer, easy-hard, the workflow): each file holds the split it is given as, both come
from the same run (or ensemble) and the same data split, and they hold different images.
Files without some meta keys (written by older versions) are checked on the keys they have.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import DataError
from ..core.io import atomic_path

REQUIRED = ("logits", "labels", "exit_macs", "sample_ids", "meta")
# Data-config keys that only say where the data lives: they may differ between two files of one
# run (and ``msdnet predict --set-data`` may change them); every other key decides the images.
LOCATION_KEYS = ("root", "imagenet_dir")


@dataclass
class Predictions:
    logits: np.ndarray
    labels: np.ndarray
    exit_macs: np.ndarray
    sample_ids: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)
    exit_params: np.ndarray | None = None

    @property
    def num_exits(self) -> int:
        return int(self.logits.shape[0])

    @property
    def num_classes(self) -> int:
        return int(self.logits.shape[2])

    def __len__(self) -> int:
        return int(self.logits.shape[1])

    def check(self, source: str = "<predictions>") -> "Predictions":
        """Raise DataError unless shapes and dtypes follow the contract."""
        for key, kinds, want in (("logits", (np.floating,), "floating-point"),
                                 ("labels", (np.integer,), "integer"),
                                 ("sample_ids", (np.integer,), "integer"),
                                 ("exit_macs", (np.integer, np.floating), "numeric")):
            dtype = np.asarray(getattr(self, key)).dtype
            if not any(np.issubdtype(dtype, k) for k in kinds) or dtype == np.bool_:
                raise DataError(f"{source}: '{key}' must be {want}, got dtype {dtype}; the file was not "
                                "written by msdnet predict: re-create it")
        if self.exit_params is not None and not np.issubdtype(np.asarray(self.exit_params).dtype, np.integer):
            raise DataError(f"{source}: 'exit_params' must be integer, got dtype "
                            f"{np.asarray(self.exit_params).dtype}; re-create the file with msdnet predict")
        if not isinstance(self.meta, dict):
            raise DataError(f"{source}: 'meta' must be a JSON object, got {type(self.meta).__name__}; "
                            "re-create the file with msdnet predict")
        if self.logits.ndim != 3:
            raise DataError(f"{source}: 'logits' must be [exits, images, classes], got shape {self.logits.shape}")
        e, n, c = self.logits.shape
        if e < 1 or c < 1:
            raise DataError(f"{source}: 'logits' has no exits or no classes (shape {self.logits.shape})")
        if self.labels.shape != (n,):
            raise DataError(f"{source}: 'labels' has shape {self.labels.shape}, expected ({n},)")
        if self.sample_ids.shape != (n,):
            raise DataError(f"{source}: 'sample_ids' has shape {self.sample_ids.shape}, expected ({n},)")
        if self.exit_macs.shape != (e,):
            raise DataError(f"{source}: 'exit_macs' has shape {self.exit_macs.shape}, expected ({e},)")
        if self.exit_params is not None and self.exit_params.shape != (e,):
            raise DataError(f"{source}: 'exit_params' has shape {self.exit_params.shape}, expected ({e},)")
        if n and (self.labels.min() < 0 or self.labels.max() >= c):
            raise DataError(f"{source}: labels outside [0, {c}) ; the file does not match its logits")
        if not np.all(np.isfinite(self.logits)):
            raise DataError(f"{source}: 'logits' holds NaN or inf; re-run msdnet predict")
        return self


def save(path: str | Path, preds: Predictions) -> None:
    """Write atomically (a temporary name, then rename)."""
    preds.check(str(path))
    arrays = {
        "logits": np.asarray(preds.logits, dtype=np.float32),
        "labels": np.asarray(preds.labels, dtype=np.int64),
        "exit_macs": np.asarray(preds.exit_macs, dtype=np.float64),
        "sample_ids": np.asarray(preds.sample_ids, dtype=np.int64),
        "meta": np.asarray(json.dumps(preds.meta, sort_keys=True)),
    }
    if preds.exit_params is not None:
        arrays["exit_params"] = np.asarray(preds.exit_params, dtype=np.int64)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


def load(path: str | Path) -> Predictions:
    """Read and check a predictions file; a missing or corrupt file is one DataError line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such predictions file; run `msdnet predict` first")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in REQUIRED if k not in z.files]
            if missing:
                raise DataError(f"{path}: not a predictions file (missing {', '.join(missing)}); "
                                "re-create it with `msdnet predict`")
            meta = json.loads(str(z["meta"]))
            arrays = {k: z[k] for k in ("logits", "labels", "exit_macs", "sample_ids", "exit_params")
                      if k in z.files}
    except DataError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, json.JSONDecodeError, EOFError) as exc:
        if path.name in ("val.npz", "test.npz") and path.parent.name.startswith("seed"):
            raise DataError(f"{path}: corrupt predictions file ({type(exc).__name__}); "
                            "delete it and re-run `msdnet predict`") from None
        raise DataError(f"{path}: not a predictions file ({type(exc).__name__}: not a NumPy .npz "
                        f"archive); expected a val.npz or test.npz that `msdnet predict` writes") from None
    raw = Predictions(logits=arrays["logits"], labels=arrays["labels"], exit_macs=arrays["exit_macs"],
                      sample_ids=arrays["sample_ids"], meta=meta, exit_params=arrays.get("exit_params"))
    raw.check(str(path))                            # dtypes first: a cast would hide them
    if raw.logits.shape[1] == 0:
        raise DataError(f"{path}: holds predictions for 0 images, so no accuracy or cost can be "
                        f"measured on it; predict a split that has images (msdnet predict)")
    preds = Predictions(
        logits=raw.logits, labels=raw.labels.astype(np.int64),
        exit_macs=raw.exit_macs.astype(np.float64), sample_ids=raw.sample_ids.astype(np.int64),
        meta=meta, exit_params=None if raw.exit_params is None else raw.exit_params.astype(np.int64))
    return preds


def _meta(preds: Predictions) -> dict[str, Any]:
    return preds.meta if isinstance(preds.meta, dict) else {}


def check_split(preds: Predictions, split: str, path: str | Path) -> None:
    """Refuse a file whose recorded split is not ``split`` (files that record none pass)."""
    recorded = _meta(preds).get("split")
    if recorded is not None and recorded != split:
        raise DataError(f"{path} holds the '{recorded}' split but is given as the {split} file; give "
                        f"the {split}.npz that msdnet predict wrote for this run")


def _identity(meta: dict[str, Any]) -> dict[str, Any]:
    """What says which trained model(s) a file comes from: for an ensemble its members' runs."""
    if meta.get("kind") == "ensemble":
        members = [m.get("meta") or {} for m in meta.get("members") or []]
        return {"members": sorted(
            (str(m.get("config_hash")), str(m.get("checkpoint_sha256"))) for m in members)}
    return {k: meta[k] for k in ("config_hash", "checkpoint_sha256") if k in meta}


def _data_keys(meta: dict[str, Any]) -> dict[str, Any]:
    """The recorded data split: dataset, split_seed and the data config without location keys."""
    out = {k: meta[k] for k in ("dataset", "split_seed") if k in meta}
    if isinstance(meta.get("data"), dict):
        out.update({f"data.{k}": v for k, v in meta["data"].items() if k not in LOCATION_KEYS})
    return out


def _first_difference(a: dict[str, Any], b: dict[str, Any]) -> str | None:
    for key in a:
        if key in b and a[key] != b[key]:
            return key
    return None


def check_same_data(a: Predictions, b: Predictions, a_path: str | Path, b_path: str | Path) -> None:
    """Refuse two files recorded on different data sets or data splits (keys both record)."""
    da, db = _data_keys(_meta(a)), _data_keys(_meta(b))
    key = _first_difference(da, db)
    if key is not None:
        raise DataError(f"{a_path} and {b_path} were recorded on different data ({key}: {da[key]!r} vs "
                        f"{db[key]!r}); record both with msdnet predict from runs on the same data split")


def check_pair(val: Predictions, test: Predictions, val_path: str | Path = "validation predictions",
               test_path: str | Path = "test predictions") -> None:
    """Refuse a validation and a test file that cannot be used together (one DataError line):

    - a file that records another split than the one it is given as;
    - files from different runs (config_hash or checkpoint_sha256 differ) or, for ensembles,
      from different member runs;
    - files recorded on different data (dataset, split_seed or another data-config key);
    - files that hold the same images (the same set of sample_ids, in files that name their data
      set: their ids are indices into it).
    """
    check_split(val, "val", val_path)
    check_split(test, "test", test_path)
    vm, tm = _meta(val), _meta(test)
    if (vm.get("kind") == "ensemble") != (tm.get("kind") == "ensemble") and vm and tm:
        raise DataError(f"{val_path} and {test_path}: one is an ensemble and the other is not; give the "
                        "validation and test files of the same model")
    vi, ti = _identity(vm), _identity(tm)
    key = _first_difference(vi, ti)
    if key is not None:
        what = "ensembles of different runs" if key == "members" else f"different runs ({key} differs)"
        raise DataError(f"{val_path} and {test_path} come from {what}; record both splits from the same "
                        "checkpoint with msdnet predict")
    check_same_data(val, test, val_path, test_path)
    if ("dataset" in vm and "dataset" in tm and len(val) == len(test)
            and np.array_equal(np.sort(val.sample_ids), np.sort(test.sample_ids))):
        raise DataError(f"{val_path} and {test_path} hold the same images (identical sample_ids); "
                        "thresholds must come from a held-out split: give the val and test files of "
                        "one msdnet predict run")


COSTS = ("lazy", "full")


def with_costs(preds: Predictions, costs: str) -> Predictions:
    """``preds`` with the exit costs of one convention: ``full`` (each exit's cumulative MACs as
    recorded) or ``lazy`` (features an earlier exit already computed are not paid again, what a
    budgeted batch run of an early-exit network spends; recorded as meta ``exit_macs_lazy`` by
    ``msdnet predict``; files without it, e.g. ensembles, keep their full costs)."""
    if costs not in COSTS:
        raise ValueError(f"costs must be one of {COSTS}, got {costs!r}")
    if costs == "lazy" and "exit_macs_lazy" in preds.meta:
        lazy = np.asarray(preds.meta["exit_macs_lazy"], dtype=np.float64)
        if lazy.shape == preds.exit_macs.shape:
            preds.exit_macs = lazy
    return preds
