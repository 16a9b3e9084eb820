"""Ensembles evaluated smallest first (docs/method.md §Ensembles), written as a predictions file.

``build_ensemble(members, names)``: members are sorted by their full cost (``exit_macs[-1]``,
ascending; equal costs keep the order given). A multi-exit member contributes its LAST exit.
Step m (1-based) predicts the mean softmax probability of the first m members; the file stores
``logits[m-1] = log(mean softmax)`` as float32 (computed in log space with log-sum-exp, so it is
always finite and ``softmax(logits[m-1])`` reproduces the mean probability).
``exit_macs[m-1]`` = sum of the full MACs of the first m members; ``exit_params`` likewise when
every member has parameters (else absent). Labels and sample_ids must be identical (same order)
across members, and so must the number of classes; members that record their split, data set,
split_seed or data config must agree on them (``msdnet.inference.predictions.check_same_data``).
``meta`` records:
    kind            "ensemble"
    model           the name given (default "ensemble")
    members         [{"file", "macs", "params", "meta"}, ...] in ensemble order
    split, dataset, split_seed, data
                    copied when every member records the same value
The result follows the predictions contract with E = number of members, so ``msdnet anytime``
and ``msdnet budgeted`` read it like any multi-exit model.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ...core.errors import DataError
from ...inference.predictions import Predictions, check_same_data
from .common import log_softmax


def build_ensemble(members: Sequence[Predictions], names: Sequence[str] | None = None,
                   model: str = "ensemble") -> Predictions:
    """An ensemble's predictions from its members' predictions (see the module docstring)."""
    if not members:
        raise DataError("an ensemble needs at least one member predictions file")
    names = list(names) if names is not None else [f"member {i + 1}" for i in range(len(members))]
    if len(names) != len(members):
        raise ValueError("names and members differ in length")
    ref, ref_name = members[0], names[0]
    splits = {}
    for pr, name in zip(members, names):
        split = pr.meta.get("split") if isinstance(pr.meta, dict) else None
        if split is not None:
            splits.setdefault(split, name)
    if len(splits) > 1:
        (s1, n1), (s2, n2) = list(splits.items())[:2]
        raise DataError(f"{n1} holds the '{s1}' split but {n2} the '{s2}' split; ensemble members must "
                        "be predictions of one split")
    for i in range(len(members)):
        for j in range(i + 1, len(members)):
            check_same_data(members[i], members[j], names[i], names[j])
    for pr, name in zip(members[1:], names[1:]):
        if pr.num_classes != ref.num_classes:
            raise DataError(f"{name} has {pr.num_classes} classes but {ref_name} has "
                            f"{ref.num_classes}; ensemble members must share the label set")
        if len(pr) != len(ref) or not np.array_equal(pr.sample_ids, ref.sample_ids):
            raise DataError(f"{name} and {ref_name} hold different images (sample_ids differ); "
                            "predict every member on the same split")
        if not np.array_equal(pr.labels, ref.labels):
            raise DataError(f"{name} and {ref_name} have different labels for the same images; "
                            "predict every member on the same data set")
    cost = [float(pr.exit_macs[-1]) for pr in members]
    order = sorted(range(len(members)), key=lambda i: cost[i])  # stable on ties
    m_count = len(members)
    n, c = len(ref), ref.num_classes
    logits = np.empty((m_count, n, c), dtype=np.float32)
    acc = None
    for m, i in enumerate(order):
        lp = log_softmax(members[i].logits[-1])
        acc = lp if acc is None else np.logaddexp(acc, lp)
        step = acc - np.log(m + 1.0)
        lim = np.finfo(np.float32)
        logits[m] = np.clip(step, lim.min, lim.max).astype(np.float32)
    exit_macs = np.cumsum([cost[i] for i in order]).astype(np.float64)
    has_params = all(members[i].exit_params is not None for i in order)
    exit_params = (np.cumsum([int(members[i].exit_params[-1]) for i in order]).astype(np.int64)
                   if has_params else None)
    meta: dict = {
        "kind": "ensemble",
        "model": model,
        "members": [{"file": names[i], "macs": cost[i],
                     "params": int(members[i].exit_params[-1]) if members[i].exit_params is not None
                     else None,
                     "meta": members[i].meta} for i in order],
    }
    for key in ("split", "dataset", "split_seed", "data"):
        values = [pr.meta.get(key) if isinstance(pr.meta, dict) else None for pr in members]
        if values[0] is not None and all(v == values[0] for v in values):
            meta[key] = values[0]
    return Predictions(logits=logits, labels=np.asarray(ref.labels, dtype=np.int64).copy(),
                       exit_macs=exit_macs, sample_ids=np.asarray(ref.sample_ids, dtype=np.int64).copy(),
                       meta=meta, exit_params=exit_params).check(f"ensemble {model}")
