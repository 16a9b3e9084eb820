"""Shared fixtures: a tiny MSDNet and a tiny digits recipe, small enough for seconds on 2 cores."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]

TINY_MSDNET = {
    "arch": "msdnet", "num_classes": 10, "input_size": [3, 16, 16], "n_blocks": 2, "step_mode": "even",
    "step": 1, "base": 1, "n_channels": 4, "growth_rate": 2, "gr_factor": [1, 2], "bn_factor": [1, 2],
    "bottleneck": True, "prune": "max", "reduction": 0.5, "stem": "cifar", "head_channels": 8,
}


def tiny_recipe(root: Path, epochs: int = 2) -> dict:
    return {
        "data": {"name": "digits", "root": str(root), "image_size": 16, "val_size": 0.2, "test_size": 0.2},
        "train": {"epochs": epochs, "batch_size": 64, "lr": 0.05, "seed": 0, "num_workers": 0,
                  "progress": "none"},
    }


@pytest.fixture(autouse=True)
def _threads_and_no_download(monkeypatch):
    monkeypatch.setenv("MSDNET_NO_DOWNLOAD", "1")
    torch.set_num_threads(1)
