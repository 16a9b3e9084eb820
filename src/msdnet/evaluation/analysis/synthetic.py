"""Seeded synthetic predictions for tests and benchmarks (no model needed).

``make_predictions(rng, n_exits, n_images, n_classes)``: later exits are more accurate and more
confident; exit_macs strictly increasing; sample_ids 0..N-1.
"""

from __future__ import annotations

import numpy as np

from ...inference.predictions import Predictions


def make_predictions(rng: np.random.Generator, n_exits: int = 4, n_images: int = 100,
                     n_classes: int = 10, base_macs: float = 1e6, labels: np.ndarray | None = None,
                     with_params: bool = True, meta: dict | None = None) -> Predictions:
    if labels is None:
        labels = rng.integers(0, n_classes, size=n_images)
    labels = np.asarray(labels, dtype=np.int64)
    n_images = labels.shape[0]
    logits = rng.normal(0.0, 1.0, size=(n_exits, n_images, n_classes))
    strength = np.linspace(1.0, 6.0, n_exits)[:, None] * rng.uniform(0.0, 1.5, size=(1, n_images))
    logits[:, np.arange(n_images), labels] += strength
    macs = base_macs * np.cumsum(rng.uniform(0.5, 1.5, size=n_exits))
    params = np.cumsum(rng.integers(1000, 5000, size=n_exits)) if with_params else None
    return Predictions(logits=logits.astype(np.float32), labels=labels, exit_macs=macs,
                       sample_ids=np.arange(n_images, dtype=np.int64), meta=dict(meta or {}),
                       exit_params=params)


def from_confidences(conf, correct, exit_macs, n_classes: int = 10, labels=None,
                     exit_params=None, meta: dict | None = None) -> Predictions:
    """Predictions whose exit-k softmax has max probability ``conf[k, i]`` on the label when
    ``correct[k, i]`` and on another class otherwise; the other classes share the rest equally.

    Needs 1/n_classes < conf <= 1. Logits are float64 log-probabilities (floored at 1e-300), so
    the max softmax probability reproduces ``conf`` to ~1e-15.
    """
    conf = np.asarray(conf, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    e, n = conf.shape
    if np.any(conf <= 1.0 / n_classes) or np.any(conf > 1.0):
        raise ValueError("confidences must lie in (1/n_classes, 1]")
    labels = np.zeros(n, dtype=np.int64) if labels is None else np.asarray(labels, dtype=np.int64)
    pred = np.where(correct, labels[None, :], (labels[None, :] + 1) % n_classes)
    probs = np.repeat(((1.0 - conf) / (n_classes - 1))[:, :, None], n_classes, axis=2)
    np.put_along_axis(probs, pred[:, :, None], conf[:, :, None], axis=2)
    logits = np.log(np.maximum(probs, 1e-300))
    return Predictions(logits=logits, labels=labels, exit_macs=np.asarray(exit_macs, dtype=np.float64),
                       sample_ids=np.arange(n, dtype=np.int64), meta=dict(meta or {}),
                       exit_params=None if exit_params is None else np.asarray(exit_params))
