"""Reading a run's checkpoint or final artifact, without the trainer: what inference
(``msdnet predict``, ``msdnet infer``, :func:`msdnet.load_model`) needs of a trained run.

``checkpoint.pt`` and the final artifact are written by :mod:`msdnet.training.train`; both are
read with ``torch.load(weights_only=True)`` only.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from ..core.errors import ConfigError, MsdnetError
from ..models.base import MultiExitModel

__all__ = ["FINAL_FORMAT", "load_checkpoint", "load_weights", "check_model_fits_data"]

# The format tag of a final artifact (msdnet train --final, msdnet import-authors).
FINAL_FORMAT = "msdnet-final-1"


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a run's ``checkpoint.pt`` or a final artifact (``msdnet train --final``).

    Never unpickles: ``torch.load(weights_only=True)`` reads tensors and plain Python data only,
    so a file that holds any other object (a pickle that would run code when loaded) is refused
    with one line, and nothing in it runs.
    """
    path = Path(path)
    if not path.is_file():
        raise MsdnetError(f"{path}: no such checkpoint; run `msdnet train` first")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if "GLOBAL" in str(exc) or "global" in str(exc):
            raise MsdnetError(f"{path}: refused: the file holds Python objects other than tensors and "
                              "plain data, which msdnet never unpickles (they could run code); use a "
                              "checkpoint written by `msdnet train`") from None
        raise MsdnetError(f"{path}: corrupt checkpoint (UnpicklingError); delete it and re-run "
                          "`msdnet train`") from None
    except Exception as exc:  # torch raises many types for a truncated or foreign file
        raise MsdnetError(f"{path}: corrupt checkpoint ({type(exc).__name__}); delete it and re-run "
                          "`msdnet train`") from None
    if isinstance(ckpt, dict) and "state_dict" in ckpt and "model" not in ckpt:
        raise MsdnetError(f"{path}: a checkpoint of the authors' code, not of msdnet; import it first: "
                          f"`msdnet import-authors {path} --config MODEL.yaml --out OUT.pt`")
    if (not isinstance(ckpt, dict) or not isinstance(ckpt.get("model"), dict)
            or not isinstance(ckpt.get("config"), dict) or "model" not in ckpt["config"]):
        raise MsdnetError(f"{path}: not an msdnet checkpoint; delete it and re-run `msdnet train`")
    return ckpt


def load_weights(model: torch.nn.Module, state: Any, path: str | Path) -> None:
    """``model.load_state_dict(state)``; weights that do not fit the model config are one line."""
    try:
        model.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        first = str(exc).strip().splitlines()
        detail = " ".join(line.strip() for line in first[:2])[:200] if first else type(exc).__name__
        raise MsdnetError(f"{path}: its weights do not match its model config ({detail}); the file was "
                          "altered or mixed up; re-create it with `msdnet train`") from None


def check_model_fits_data(model: MultiExitModel, model_config: dict[str, Any], bundle: Any,
                          model_source: str, recipe_source: str) -> None:
    """Refuse a model built for another image size or with fewer classes than the data has."""
    want = tuple(int(v) for v in bundle.input_size)
    have = tuple(int(v) for v in model.input_size)
    if have != want:
        what = "channels" if have[:1] != want[:1] else "image size"
        raise ConfigError(f"{model_source}: input_size {list(have)} does not match the data "
                          f"({bundle.name} in {recipe_source} gives {list(want)}, another {what}); set "
                          f"input_size: {list(want)} in the model config or change the recipe's data")
    n_classes = model_config.get("num_classes")
    if isinstance(n_classes, int) and n_classes < bundle.num_classes:
        raise ConfigError(f"{model_source}: num_classes {n_classes} is smaller than the "
                          f"{bundle.num_classes} classes of {bundle.name} ({recipe_source}); set "
                          f"num_classes: {bundle.num_classes}")
