"""Record per-exit logits of a trained checkpoint on the validation and test splits.

One ``.npz`` per split (``msdnet.predictions``), stamped with where it came from: checkpoint
sha256, config hash, split, data set and code version. Validation and test are never augmented.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config import from_dict
from .cost import count_costs
from .data import DataConfig, iterate_batches, load_data
from .errors import MsdnetError
from .io import code_version, sha256_file
from .models import MultiExitModel, build
from .predictions import Predictions, save
from .train import load_checkpoint, resolve_device

__all__ = ["collect_logits", "predict_checkpoint"]


@torch.no_grad()
def collect_logits(model: MultiExitModel, batches) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run every exit over (x, y, ids) batches; returns logits [E, N, C], labels [N], ids [N]."""
    model.eval()
    logits: list[list[torch.Tensor]] = [[] for _ in range(model.num_exits)]
    labels, ids = [], []
    for x, y, idx in batches:
        for k, out in enumerate(model(x)):
            logits[k].append(out.float().cpu())
        labels.append(y.cpu())
        ids.append(torch.as_tensor(idx).cpu())
    stacked = np.stack([torch.cat(per_exit).numpy() for per_exit in logits])
    return stacked, torch.cat(labels).numpy(), torch.cat(ids).numpy()


def predict_checkpoint(checkpoint: str | Path, out_dir: str | Path, *, splits: tuple[str, ...] = ("val", "test"),
                       data_overrides: dict[str, Any] | None = None, batch_size: int = 256,
                       device: str = "auto", allow_unfinished: bool = False) -> dict[str, Path]:
    """Write ``out_dir/<split>.npz`` for each split; returns the paths."""
    checkpoint = Path(checkpoint)
    ckpt = load_checkpoint(checkpoint)
    if not ckpt.get("finished") and not allow_unfinished:
        raise MsdnetError(f"{checkpoint}: training stopped after epoch {ckpt.get('epoch')} of "
                          f"{ckpt['config']['train']['epochs']}; re-run `msdnet train` to finish it")
    config = ckpt["config"]
    dev = resolve_device(device)
    model = build(config["model"], str(checkpoint))
    model.load_state_dict(ckpt["model"])
    model.to(dev)
    data_cfg = from_dict(DataConfig, {**config["data"], **(data_overrides or {})}, f"{checkpoint} [data]")
    bundle = load_data(data_cfg)
    costs = count_costs(model)
    lazy_costs = count_costs(model, lazy=True)
    digest = sha256_file(checkpoint)
    paths = {}
    for split in splits:
        if split == "val" and bundle.val is None:
            raise MsdnetError(f"{checkpoint}: the run was trained without a held-out split "
                              "(data.val_size: 0), so there is no val split to record")
        logits, labels, ids = collect_logits(model, iterate_batches(bundle, split, batch_size, device=dev))
        meta = {
            "checkpoint": str(checkpoint), "checkpoint_sha256": digest, "config_hash": ckpt["config_hash"],
            "split": split, "dataset": data_cfg.name, "code_version": code_version(),
            "arch": config["model"]["arch"], "epochs": ckpt["epoch"], "seed": config["train"]["seed"],
            "exit_macs_lazy": [c.macs for c in lazy_costs],
        }
        preds = Predictions(logits=logits, labels=labels, exit_macs=np.array([c.macs for c in costs], float),
                            sample_ids=ids, meta=meta, exit_params=np.array([c.params for c in costs]))
        path = Path(out_dir) / f"{split}.npz"
        save(path, preds)
        paths[split] = path
    return paths
