"""Helpers shared by the analysis modules: per-exit confidences and correctness, JSON-safe
numbers, atomic CSV writing.

The confidence measures (max_prob, entropy, margin) and the JSON-safe numbers are those of
:mod:`msdnet.inference.scores` (re-exported here), the functions real early-exit inference uses.
All arithmetic is float64, done exit by exit in row chunks so that an ImageNet-sized file
(50,000 images x 1,000 classes) never needs a float64 copy of all its logits at once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ...core.errors import DataError
from ...core.io import atomic_path
from ...inference.predictions import Predictions
from ...inference.scores import (CONFIDENCES, check_measure, confidence_rows, json_list,  # noqa: F401
                                json_number, log_softmax, parse_json_number, softmax)

_CHUNK_ELEMENTS = 1 << 22  # float64 elements per chunk (32 MiB)


def exit_scores(preds: Predictions, measure: str = "max_prob") -> tuple[np.ndarray, np.ndarray]:
    """Per-exit confidence [E, N] (float64) and correctness [E, N] (bool) of a predictions file.

    Correct means argmax of that exit's logits equals the label (first index on ties).
    """
    check_measure(measure)
    logits = preds.logits
    e, n, c = logits.shape
    conf = np.empty((e, n), dtype=np.float64)
    correct = np.empty((e, n), dtype=bool)
    rows = max(1, _CHUNK_ELEMENTS // max(c, 1))
    labels = np.asarray(preds.labels)
    for k in range(e):
        for s in range(0, n, rows):
            block = logits[k, s:s + rows]
            conf[k, s:s + rows] = confidence_rows(block, measure)
            correct[k, s:s + rows] = block.argmax(axis=1) == labels[s:s + rows]
    return conf, correct


def exit_accuracy(preds: Predictions) -> np.ndarray:
    """Top-1 accuracy (%) of every exit, [E]; NaN for an empty file."""
    if len(preds) == 0:
        return np.full(preds.num_exits, np.nan)
    pred = preds.logits.argmax(axis=2)
    return (pred == np.asarray(preds.labels)[None, :]).mean(axis=1) * 100.0


def model_name(preds: Predictions, default: str = "model") -> str:
    """The model name recorded in ``meta`` (``model``, then ``arch``), else ``default``."""
    for key in ("model", "arch"):
        value = preds.meta.get(key) if isinstance(preds.meta, dict) else None
        if value:
            return str(value)
    return default


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """DataFrame rows as JSON-safe dicts."""
    out = []
    for row in df.to_dict(orient="records"):
        out.append({k: (json_number(v) if isinstance(v, (int, float, np.number)) else v)
                    for k, v in row.items()})
    return out


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, allow_nan=False)


def write_csv(df: pd.DataFrame, path: str | Path) -> None:
    """Write a table as CSV atomically (a temporary name, then rename)."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)


# Columns of the project's tables that hold names (legend labels, model names, kinds): read as
# strings, always. pandas' defaults read "NA", "N/A", "None", "null" and "" as NaN (the curve
# vanishes) and "007", "1e3", "2.50" as numbers (the label changes).
STRING_COLUMNS = ("model", "name", "family", "kind", "curve", "dataset", "figure", "metric",
                  "hard_by")


def read_csv_strict(path: str | Path, what: str = "table") -> pd.DataFrame:
    """A table written by :func:`write_csv` (or by hand), read back exactly.

    Names (:data:`STRING_COLUMNS`) stay the strings written; every other column is numbers
    (empty cells NaN) when all its cells are numbers, else strings. A row with fewer fields than
    the header (a file cut short) is a one-line DataError naming the file and the row."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what} {path} does not exist; run the step that writes it first")
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    except pd.errors.EmptyDataError:
        raise DataError(f"{what} {path} is empty (no header, no rows)") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{what} {path} is not a readable CSV: {first}") from None
    short = raw.isna().any(axis=1).to_numpy()
    if short.any():
        i = int(np.flatnonzero(short)[0])
        n = int(raw.iloc[i].notna().sum())
        raise DataError(f"{what} {path}: row {i + 1} (line {i + 2}) has {n} of {len(raw.columns)} fields (the file is "
                        f"cut short or corrupt); rebuild it (re-run the step that writes it)")
    df = raw.copy()
    for col in raw.columns:
        if col in STRING_COLUMNS:
            continue
        cells = raw[col].str.strip()
        values = pd.to_numeric(cells.where(cells != "", "nan"), errors="coerce")
        if (values.isna() & ~cells.str.lower().isin(["", "nan"])).any():
            df[col] = raw[col].where(raw[col] != "", np.nan)      # not a numeric column
        else:
            df[col] = values
    return df


def display_table(df: pd.DataFrame) -> pd.DataFrame:
    """A table as people read it: every MACs column (``macs``, ``avg_macs``, ``budget``, ...) in
    MMACs (``macs`` -> ``MMACs``), every accuracy column (``accuracy``, ``val_accuracy``, ...) as
    ``top-1 %`` and no column that is empty throughout (e.g. ``budget`` of a p sweep). The
    numbers are the table's: only the unit of the MACs changes (divided by 1e6)."""
    out = df.dropna(axis=1, how="all").copy()
    names = {}
    for col in out.columns:
        if col in ("macs", "budget") or col.endswith("_macs"):
            out[col] = out[col].astype(float) / 1e6
            names[col] = "MMACs" if col == "macs" else f"{col.removesuffix('_macs')}_MMACs" \
                if col != "budget" else "budget_MMACs"
        elif col == "accuracy" or col.endswith("_accuracy"):
            names[col] = f"{col.removesuffix('accuracy')}top-1 %"
    return out.rename(columns=names)


def format_table(df: pd.DataFrame, *, units: bool = True) -> str:
    """A readable fixed-width rendering for the terminal (with ``units``: :func:`display_table`,
    MMACs to 3 decimals, top-1 % to 2)."""
    if df.empty:
        return "(no rows)"
    if not units:
        return df.to_string(index=False, float_format=lambda v: f"{v:.6g}")
    shown = display_table(df)
    fmt = {c: (lambda v: f"{v:.3f}" if not abs(v) < 0.1 else f"{v:.3g}") if "MMACs" in c else (lambda v: f"{v:.2f}") if "top-1 %" in c
           else (lambda v: f"{v:.6g}") for c in shown.columns if shown[c].dtype.kind == "f"}
    return shown.to_string(index=False, formatters=fmt, na_rep="-")
