"""The predictions file: one ``.npz`` per (model run, split), read by every analysis.

Keys:
    logits      float32 [E, N, C]  per-exit logits (E exits, N images, C classes)
    labels      int64   [N]
    exit_macs   float64 [E]        cumulative MACs up to and including exit k (batch size 1)
    exit_params int64   [E]        cumulative parameters up to exit k
    sample_ids  int64   [N]        index of each image in its data set split
    meta        str                JSON: checkpoint_sha256, config_hash, split, dataset,
                                   code_version, arch, model (config name) ...
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DataError
from .io import atomic_path

REQUIRED = ("logits", "labels", "exit_macs", "sample_ids", "meta")


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
            preds = Predictions(
                logits=z["logits"], labels=z["labels"].astype(np.int64),
                exit_macs=z["exit_macs"].astype(np.float64),
                sample_ids=z["sample_ids"].astype(np.int64), meta=meta,
                exit_params=z["exit_params"].astype(np.int64) if "exit_params" in z.files else None,
            )
    except DataError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, json.JSONDecodeError, EOFError) as exc:
        raise DataError(f"{path}: corrupt predictions file ({type(exc).__name__}); "
                        "delete it and re-run `msdnet predict`") from None
    return preds.check(str(path))
