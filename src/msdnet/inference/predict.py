"""Record per-exit logits of a trained checkpoint on the validation and test splits.

One ``.npz`` per split (``msdnet.inference.predictions``), stamped with where it came from: checkpoint
sha256, config hash, split, data set, split_seed, the data config and code version. Validation
and test are never augmented. The checkpoint is a run's ``checkpoint.pt`` or its final artifact
(``msdnet train --final``). Only the data's location (``LOCATION_KEYS``) may be overridden: every
other data key decides which images are in which split.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch
import yaml

from ..core.config import compact_dict, from_dict
from ..models.cost import count_costs
from ..data import DataConfig, iterate_batches, load_data
from ..core.errors import ConfigError, MsdnetError
from .. import __version__
from ..core import kernels
from ..core.io import sha256_file, terminal_progress
from ..models import MultiExitModel, build
from .predictions import LOCATION_KEYS, Predictions, save
from ..training.checkpoint import check_model_fits_data, load_checkpoint, load_weights

__all__ = ["collect_logits", "predict_checkpoint", "parse_data_overrides", "checkpoint_data_config",
           "model_from_checkpoint"]


def parse_data_overrides(items: Iterable[str], flag: str = "--set-data") -> dict[str, Any]:
    """``KEY=VALUE`` strings (VALUE parsed as YAML) to a mapping; only location keys may change."""
    out: dict[str, Any] = {}
    sp = "" if flag.endswith(".") else " "          # "--set data.root" or "--set-data root"
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"{flag}{sp}{item!r}: expected KEY=VALUE, e.g. {flag}{sp}root=data")
        if key not in LOCATION_KEYS:
            raise ConfigError(f"{flag}{sp}{key}: only the data's location ({', '.join(LOCATION_KEYS)}) may "
                              f"change for a trained checkpoint; '{key}' decides which images are in "
                              "each split, so the predictions would not be of the run's held-out split; "
                              "train a run with that data config instead")
        try:
            out[key] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise ConfigError(f"{flag}{sp}{item!r}: the value is not valid YAML; quote it") from None
    return out


def checkpoint_data_config(ckpt: dict[str, Any], checkpoint: str | Path,
                           overrides: dict[str, Any] | None = None) -> DataConfig:
    """The checkpoint's data config with location overrides (see :func:`parse_data_overrides`)."""
    bad = sorted(set(overrides or {}) - set(LOCATION_KEYS))
    if bad:
        raise ConfigError(f"data override '{bad[0]}': only {', '.join(LOCATION_KEYS)} may change for a "
                          f"trained checkpoint ({checkpoint})")
    data = ckpt["config"].get("data")
    if not isinstance(data, dict):
        raise MsdnetError(f"{checkpoint}: its config has no data section; re-create it with `msdnet train` "
                          "(an imported model: `msdnet import-authors ... --recipe RECIPE.yaml`)")
    return from_dict(DataConfig, {**data, **(overrides or {})}, f"{checkpoint} [data]")


def model_from_checkpoint(ckpt: dict[str, Any], checkpoint: str | Path) -> MultiExitModel:
    """Build the checkpoint's model and load its weights (a mismatch is one line naming the file)."""
    model = build(ckpt["config"]["model"], str(checkpoint))
    load_weights(model, ckpt["model"], checkpoint)
    return model


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
                       device: str = "auto", allow_unfinished: bool = False,
                       progress: bool = False) -> dict[str, Path]:
    """Write ``out_dir/<split>.npz`` for each split; returns the paths.

    ``progress``: a bar per split on stderr when it is a terminal (never in a log)."""
    checkpoint = Path(checkpoint)
    ckpt = load_checkpoint(checkpoint)
    if not ckpt.get("finished") and not allow_unfinished:
        raise MsdnetError(f"{checkpoint}: training stopped after epoch {ckpt.get('epoch')} of "
                          f"{ckpt['config']['train']['epochs']}; re-run `msdnet train` to finish it")
    from ..training.gpu_slots import claimed_device    # several cards: the least-loaded one

    with claimed_device(device) as dev:
        return _predict(checkpoint, ckpt, out_dir, dev, splits, data_overrides, batch_size, progress)


def _predict(checkpoint: Path, ckpt: dict[str, Any], out_dir: str | Path, dev, splits: tuple[str, ...],
             data_overrides: dict[str, Any] | None, batch_size: int,
             progress: bool = False) -> dict[str, Path]:
    config = ckpt["config"]
    model = model_from_checkpoint(ckpt, checkpoint)
    model.to(dev)
    data_cfg = checkpoint_data_config(ckpt, checkpoint, data_overrides)
    bundle = load_data(data_cfg)
    check_model_fits_data(model, config["model"], bundle, str(checkpoint), f"{checkpoint} [data]")
    costs = count_costs(model)
    lazy_costs = count_costs(model, lazy=True)
    digest = sha256_file(checkpoint)
    paths: dict[str, tuple[Path, Predictions]] = {}
    for split in splits:
        if split == "val" and bundle.val is None:
            raise MsdnetError(f"{checkpoint}: the run was trained without a held-out split "
                              "(data.val_size: 0), so there is no val split to record")
        batches = iterate_batches(bundle, split, batch_size, device=dev)
        if progress:
            batches = terminal_progress(batches, -(-len(getattr(bundle, split)) // batch_size), f"predict {split}")
        logits, labels, ids = collect_logits(model, batches)
        meta = {
            "checkpoint": str(checkpoint), "checkpoint_sha256": digest, "config_hash": ckpt["config_hash"],
            "split": split, "dataset": data_cfg.name, "split_seed": data_cfg.split_seed,
            "data": compact_dict(data_cfg), "code_version": __version__, "cpu_kernels": kernels.record(),
            "arch": config["model"]["arch"], "epochs": ckpt["epoch"], "seed": config["train"]["seed"],
            "exit_macs_lazy": [c.macs for c in lazy_costs],
        }
        preds = Predictions(logits=logits, labels=labels, exit_macs=np.array([c.macs for c in costs], float),
                            sample_ids=ids, meta=meta, exit_params=np.array([c.params for c in costs]))
        preds.check(f"{checkpoint} [{split}]")
        paths[split] = (Path(out_dir) / f"{split}.npz", preds)
    for path, preds in paths.values():                 # every split computed before any is written
        save(path, preds)
    return {split: path for split, (path, _) in paths.items()}
