"""Held-out splits fixed by a seeded permutation and saved beside the data.

A split file ``root/<name>/splits/holdout-seed{seed}-val{n_val}.json`` records the data set
name, the seed, the number of images the indices point into (``num_train_total``) and the
sorted index lists. Once written it is the source of truth: later loads read it back (after
checking that it still fits the data) instead of drawing the permutation again.
Digits and synthetic carve their test split from the same permutation, so their file also
records the test indices and its name also carries the test and total counts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..core.errors import DataError
from ..core.io import write_json_atomic

FORMAT = 1


@dataclass(frozen=True)
class SplitIndices:
    """Sorted int64 index tensors into the source set, plus the file that fixes them."""

    train: torch.Tensor
    val: torch.Tensor
    test: torch.Tensor | None
    file: str | None


def resolve_count(size: int | float | None, pool: int, default: int | float, key: str) -> int:
    """Turn a config size (count, share or None = ``default``) into a number of images of ``pool``.

    A positive share always gives at least one image; at least one image must stay in the pool.
    """
    size = default if size is None else size
    if isinstance(size, int):
        n = size
    else:
        n = max(1, round(size * pool)) if size > 0 else 0
    if n > pool - 1:
        raise DataError(
            f"{key}={size} asks for {n} of only {pool} images (at least one must remain); "
            f"lower data.{key}"
        )
    return n


def split_path(root: str | Path, name: str, seed: int, n_val: int,
               n_test: int | None = None, n_total: int | None = None) -> Path:
    """Where the split file of data set ``name`` lives (test/total counts: digits and synthetic)."""
    stem = f"holdout-seed{seed}-val{n_val}"
    if n_test is not None:
        stem += f"-test{n_test}-of{n_total}"
    return Path(root) / name / "splits" / f"{stem}.json"


def save_split(path: Path, name: str, seed: int, n_total: int, val: np.ndarray,
               test: np.ndarray | None) -> None:
    """Write a split file (``format`` 1) atomically; an unwritable root is one DataError line."""
    record = {"format": FORMAT, "dataset": name, "seed": seed, "num_train_total": n_total,
              "val": val.tolist()}
    if test is not None:
        record["test"] = test.tolist()
    try:
        write_json_atomic(path, record)
    except OSError as exc:
        raise DataError(f"{path}: could not save the split file ({exc.strerror or exc}); "
                        f"make data.root writable") from None


def train_mask(n_total: int, val: np.ndarray, test: np.ndarray) -> np.ndarray:
    """True for the indices in neither ``val`` nor ``test``."""
    mask = np.ones(n_total, dtype=bool)
    mask[val] = False
    mask[test] = False
    return mask


def _tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.int64))


def _draw(n_total: int, n_test: int, n_val: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n_total)
    return np.sort(perm[n_test:n_test + n_val]), np.sort(perm[:n_test])


def _check_list(obj: dict, key: str, n: int, n_total: int) -> np.ndarray:
    values = obj.get(key)
    if not isinstance(values, list) or len(values) != n or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in values
    ):
        raise ValueError(f"'{key}' is not a list of {n} integers")
    arr = np.asarray(values, dtype=np.int64)
    if n and (np.any(np.diff(arr) <= 0) or arr[0] < 0 or arr[-1] >= n_total):
        raise ValueError(f"'{key}' is not a sorted list of distinct indices below {n_total}")
    return arr


def _read(path: Path, name: str, seed: int, n_total: int, n_val: int,
          n_test: int | None) -> tuple[np.ndarray, np.ndarray]:
    fix = f"delete {path} to regenerate it"
    try:
        obj = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: unreadable split file ({type(exc).__name__}); {fix}") from None
    try:
        if not isinstance(obj, dict):
            raise ValueError("not a JSON object")
        expected = {"format": FORMAT, "dataset": name, "seed": seed, "num_train_total": n_total}
        for key, want in expected.items():
            if obj.get(key) != want:
                raise ValueError(f"'{key}' is {obj.get(key)!r}, expected {want!r}")
        val = _check_list(obj, "val", n_val, n_total)
        test = _check_list(obj, "test", n_test, n_total) if n_test is not None else np.zeros(0, np.int64)
        if np.intersect1d(val, test).size:
            raise ValueError("'val' and 'test' overlap")
    except ValueError as exc:
        raise DataError(f"{path}: split file does not match the data ({exc}); {fix}") from None
    return val, test


def fixed_split(root: str | Path, name: str, seed: int, n_total: int, n_val: int,
                n_test: int | None = None) -> SplitIndices:
    """Split ``range(n_total)`` into train/val (and test when ``n_test`` is given).

    One seeded permutation: its first ``n_test`` entries are the test split, the next
    ``n_val`` the held-out validation split, the rest train. The result is saved atomically
    to :func:`split_path` (or read back from it when it exists). Nothing is saved when there
    is nothing to fix (no validation and no test split).
    """
    if n_val == 0 and n_test is None:
        everything = torch.arange(n_total, dtype=torch.int64)
        return SplitIndices(everything, torch.zeros(0, dtype=torch.int64), None, None)
    path = split_path(root, name, seed, n_val, n_test, n_total if n_test is not None else None)
    if path.exists():
        val, test = _read(path, name, seed, n_total, n_val, n_test)
    else:
        val, test = _draw(n_total, n_test or 0, n_val, seed)
        save_split(path, name, seed, n_total, val, test if n_test is not None else None)
    mask = train_mask(n_total, val, test)
    return SplitIndices(
        train=_tensor(np.flatnonzero(mask)),
        val=_tensor(val),
        test=_tensor(test) if n_test is not None else None,
        file=str(path),
    )


def authors_split(path: str | Path, n_total: int, n_val: int) -> SplitIndices:
    """The held-out split of the authors' PyTorch code (kalviny/MSDNet-PyTorch, ``dataloader.py``
    with ``--use-valid``), read from their validation-indices file.

    Their file (``index.pth``, published with the ImageNet models) is
    ``torch.save(torch.randperm(N))`` over the N images of the training set (CIFAR's training
    batches in order; ImageNet's ``train/`` ImageFolder, classes and files sorted, as
    torchvision lists them); the last ``n_val`` entries (5,000 for CIFAR, 50,000 for ImageNet)
    were held out, the others trained on. Read with ``torch.load(weights_only=True)``; a file that
    is not a permutation of ``0..n_total-1`` is a one-line :class:`DataError`.
    """
    path = Path(path)
    fix = ("give data.holdout_indices the authors' validation-indices file (index.pth) of this "
           "training set")
    if not path.is_file():
        raise DataError(f"{path} not found; {fix}")
    try:
        perm = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - unpickling fails in many ways; refused either way
        raise DataError(f"{path}: not a tensor file readable with weights_only=True "
                        f"({type(exc).__name__}); {fix}") from None
    if not isinstance(perm, torch.Tensor) or perm.dim() != 1 or perm.dtype.is_floating_point \
            or perm.dtype == torch.bool:
        raise DataError(f"{path}: expected a 1-D integer tensor (a permutation), got "
                        f"{type(perm).__name__}{list(perm.shape) if isinstance(perm, torch.Tensor) else ''}; {fix}")
    perm = perm.to(torch.int64)
    if len(perm) != n_total:
        raise DataError(f"{path}: {len(perm)} indices, but the training set has {n_total} images; {fix}")
    if not torch.equal(torch.sort(perm).values, torch.arange(n_total)):
        raise DataError(f"{path}: not a permutation of 0..{n_total - 1}; {fix}")
    if not 0 < n_val < n_total:
        raise DataError(f"{path}: val_size {n_val} must be between 1 and {n_total - 1}")
    return SplitIndices(train=torch.sort(perm[:-n_val]).values, val=torch.sort(perm[-n_val:]).values,
                        test=None, file=str(path))
