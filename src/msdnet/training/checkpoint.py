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
        raise MsdnetError(_unreadable(path, "UnpicklingError")) from None
    except Exception as exc:  # torch raises many types for a truncated or foreign file
        raise MsdnetError(_unreadable(path, type(exc).__name__)) from None
    if isinstance(ckpt, dict) and "state_dict" in ckpt and "model" not in ckpt:
        raise MsdnetError(f"{path}: a checkpoint of the authors' code, not of msdnet; import it first: "
                          f"`msdnet import-authors {path} --config MODEL.yaml --out OUT.pt`")
    if (not isinstance(ckpt, dict) or not isinstance(ckpt.get("model"), dict)
            or not isinstance(ckpt.get("config"), dict) or "model" not in ckpt["config"]):
        if _own_artifact(path):
            raise MsdnetError(f"{path}: not an msdnet checkpoint; delete it and re-run `msdnet train`")
        raise MsdnetError(f"{path}: a PyTorch file but not an msdnet checkpoint; expected {EXPECTED}")
    return ckpt


EXPECTED = "the model.pt or checkpoint.pt that `msdnet train` writes (results/<preset>/runs/.../seed<k>/)"


def _own_artifact(path: Path) -> bool:
    """Whether ``path`` is one msdnet train writes (its resume state ``checkpoint.pt``, the
    workflow's ``.../seed<k>/model.pt``): only such a file is safe to advise deleting."""
    return path.name == "checkpoint.pt" or (path.name == "model.pt" and path.parent.name.startswith("seed"))


def _kind(path: Path) -> str:
    """What a file that is no checkpoint looks like, from its first bytes."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return "unreadable"
    if not head:
        return "an empty file"
    if head.startswith(b"PK\x03\x04"):
        import zipfile

        try:
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
        except (zipfile.BadZipFile, OSError):
            return "a damaged zip archive"
        if names and all(n.endswith(".npy") for n in names):
            return "a NumPy archive (.npz, e.g. a predictions file)"
        return "a damaged PyTorch file"
    if b"\x00" not in head:
        try:
            head.decode("utf-8")
        except UnicodeDecodeError:
            return "an unknown binary file"
        if path.suffix.lower() in (".yaml", ".yml") or b":" in head:
            return "a text file (YAML, e.g. a model config)"
        return "a text file"
    return "an unknown binary file"


def _unreadable(path: Path, error: str) -> str:
    kind = _kind(path)
    if _own_artifact(path):
        return f"{path}: corrupt checkpoint ({kind}, {error}); delete it and re-run `msdnet train`"
    return f"{path}: not a checkpoint: {kind} ({error}); expected {EXPECTED}"


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
