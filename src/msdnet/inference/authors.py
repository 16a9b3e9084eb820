"""The authors' published MSDNets (kalviny/MSDNet-PyTorch) in this project's checkpoint format.

Their training script (``main.py``) saves ``{"epoch", "arch", "state_dict", "best_prec1",
"optimizer"}`` with ``torch.save``; ``state_dict`` is the state of their ``MSDNet`` module
(``models/msdnet.py``), wrapped in ``DataParallel``, so every key starts with ``module.``. Their
module tree and ours (:mod:`msdnet.models.msdnet`) hold the same tensors, layer by layer and in
the same order; only the names differ (b: block, i: index in the block, s: scale, t: s minus the
first scale a layer outputs, j: index in a conv-BN-ReLU):

==========================================================  =======================================
theirs                                                      ours
==========================================================  =======================================
``blocks.0.0.layers.{s}.net.{j}`` (first layer)              ``first.convs.{s}.{j}``
``blocks.0.0.layers.0.{j}`` (ImageNet stem, finest scale)    ``first.convs.0.{j}``
``blocks.{b}.{i}.layers.{t}.conv_down.net.{j}``              ``segments.{b}.{i'}.branches.{s}.down.{j}``
``blocks.{b}.{i}.layers.{t}.conv_normal.net.{j}``            ``segments.{b}.{i'}.branches.{s}.normal.{j}``
``blocks.{b}.{i}.m.{t}.net.{j}`` (transition)                ``segments.{b}.{i'}.convs.{s}.{j}``
``classifier.{k}.m.{0,1}.net.{j}``                           ``heads.{k}.features.{0,1}.{j}``
``classifier.{k}.linear.{weight,bias}``                      ``heads.{k}.linear.{weight,bias}``
==========================================================  =======================================

with ``i' = i - 1`` in block 0 (their first block starts with the first layer, ours keeps it
apart) and ``i' = i`` elsewhere. :func:`authors_key_map` derives the table from the network a
model config builds, so every tensor's name and shape is checked against that network.
Checkpoints saved by PyTorch 0.4.0 have no BatchNorm ``num_batches_tracked``; it is set to 0
(it only matters for BatchNorm with ``momentum=None``, which neither code uses).

Files are read with ``torch.load(weights_only=True)``: their checkpoints hold tensors and plain
data only; anything else is refused in one line and nothing in it runs.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any, Mapping

import torch

from .. import __version__
from ..core.errors import ConfigError, MsdnetError
from ..core.io import sha256_file, stable_hash, write_bytes_atomic

__all__ = ["AUTHORS_REPO", "authors_key_map", "convert_state_dict", "read_authors_checkpoint",
           "imported_artifact", "import_authors"]

AUTHORS_REPO = "kalviny/MSDNet-PyTorch"
PREFIX = "module."          # what DataParallel puts before every key
IGNORED = ("epoch", "arch", "best_prec1", "optimizer")


def _shape(t: Any) -> list[int] | None:
    return list(t.shape) if isinstance(t, torch.Tensor) else None


def authors_key_map(model) -> dict[str, str]:
    """Our ``state_dict`` key -> the authors' key (without ``module.``), in our key order.

    ``model`` is an :class:`msdnet.models.msdnet.MSDNet` with one classifier per block (the only
    layout the authors' code builds); it may live on the meta device.
    """
    from ..models.msdnet import MSDNet, MSDNLayer, Transition

    if not isinstance(model, MSDNet):
        raise ConfigError(f"the authors' checkpoints are MSDNets; the config builds a {type(model).__name__}")
    cfg = model.cfg
    if cfg.exits != list(range(1, cfg.n_blocks + 1)) or not cfg.multi_scale:
        raise ConfigError("the authors' MSDNet has a classifier after every block and all scales; "
                          "the config sets exit_blocks, intermediate_classifiers or multi_scale")
    prefixes: dict[str, str] = {}
    for s in range(len(model.first.convs)):
        plain = cfg.stem == "imagenet" and s == 0          # their ImageNet stem is a bare Sequential
        prefixes[f"first.convs.{s}."] = f"blocks.0.0.layers.{s}." + ("" if plain else "net.")
    for b, segment in enumerate(model.segments):
        for i, layer in enumerate(segment):
            theirs = f"blocks.{b}.{i + 1 if b == 0 else i}."
            first = min(layer.out_scales)
            for s in layer.out_scales:
                if isinstance(layer, MSDNLayer):
                    for ours_name, their_name in (("down", "conv_down"), ("normal", "conv_normal")):
                        prefixes[f"segments.{b}.{i}.branches.{s}.{ours_name}."] = \
                            f"{theirs}layers.{s - first}.{their_name}.net."
                elif isinstance(layer, Transition):
                    prefixes[f"segments.{b}.{i}.convs.{s}."] = f"{theirs}m.{s - first}.net."
    for k in range(len(model.heads)):
        for c in (0, 1):
            prefixes[f"heads.{k}.features.{c}."] = f"classifier.{k}.m.{c}.net."
        prefixes[f"heads.{k}.linear."] = f"classifier.{k}.linear."
    out: dict[str, str] = {}
    for key in model.state_dict():
        for ours, theirs in prefixes.items():
            if key.startswith(ours):
                out[key] = theirs + key[len(ours):]
                break
        else:                                               # a module this table does not know
            raise ConfigError(f"no authors' name for our key {key}; the model has a layer their "
                              "MSDNet does not")
    return out


def convert_state_dict(state: Mapping[str, Any], model, source: str = "<checkpoint>",
                       config: str = "<config>") -> dict[str, torch.Tensor]:
    """The authors' ``state_dict`` (``module.`` prefix or not) as ours for ``model``.

    Every key and shape is checked against ``model`` (which may live on the meta device: only
    its key names and shapes are read); the first unknown key, missing key or shape that
    differs is a one-line :class:`MsdnetError` naming the key (and both shapes).
    """
    if not isinstance(state, Mapping) or not state:
        raise MsdnetError(f"{source}: 'state_dict' is not a non-empty mapping of names to tensors")
    keys = list(state)
    if all(isinstance(k, str) and k.startswith(PREFIX) for k in keys):
        state = {k[len(PREFIX):]: v for k, v in state.items()}
    names = authors_key_map(model)
    ours_of = {theirs: ours for ours, theirs in names.items()}
    reference = model.state_dict()
    unknown = [k for k in state if k not in ours_of]
    if unknown:
        raise MsdnetError(f"{source}: key '{unknown[0]}' is not in the authors' MSDNet that {config} "
                          f"builds ({len(unknown)} unknown keys, {len(names)} expected); check --config")
    out: dict[str, torch.Tensor] = {}
    for ours, theirs in names.items():
        want = list(reference[ours].shape)
        if theirs not in state:
            if theirs.endswith("num_batches_tracked"):          # saved by PyTorch 0.4.0
                out[ours] = torch.zeros((), dtype=torch.long)
                continue
            raise MsdnetError(f"{source}: key '{theirs}' (ours: {ours}, shape {want}) is missing; the "
                              f"checkpoint is not of the MSDNet that {config} builds; check --config")
        value = state[theirs]
        if _shape(value) != want:
            raise MsdnetError(f"{source}: key '{theirs}' has shape {_shape(value)} but the MSDNet that "
                              f"{config} builds has {want} (ours: {ours}); check --config")
        value = value.detach()
        out[ours] = (value if value.device.type in ("cpu", "meta") else value.cpu()).contiguous()
    return out


def read_authors_checkpoint(path: str | Path) -> dict[str, Any]:
    """``torch.load(path, weights_only=True)``: the authors' dict with a ``state_dict``."""
    path = Path(path)
    if not path.is_file():
        raise MsdnetError(f"{path}: no such file; download the authors' checkpoint (docs/authors.md)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "global" in str(exc).lower():
            raise MsdnetError(f"{path}: refused: the file holds Python objects other than tensors and "
                              "plain data, which msdnet never unpickles (they could run code); the "
                              "authors' checkpoints hold only tensors, numbers and strings") from None
        raise MsdnetError(f"{path}: corrupt checkpoint (UnpicklingError); download it again") from None
    except Exception as exc:  # torch raises many types for a truncated or foreign file
        raise MsdnetError(f"{path}: not a readable PyTorch checkpoint ({type(exc).__name__}); "
                          "download it again") from None
    if isinstance(ckpt, Mapping) and "state_dict" not in ckpt and ckpt and all(
            isinstance(v, torch.Tensor) for v in ckpt.values()):
        ckpt = {"state_dict": ckpt}                          # a bare state_dict
    if not isinstance(ckpt, Mapping) or not isinstance(ckpt.get("state_dict"), Mapping):
        what = "a msdnet checkpoint (use it as it is)" if isinstance(ckpt, Mapping) and "model" in ckpt \
            else "not the authors' format"
        raise MsdnetError(f"{path}: no 'state_dict' mapping: {what}")
    return dict(ckpt)


def _number(value: Any) -> float | int | None:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def imported_artifact(src: str | Path, model_config: dict[str, Any], config: dict[str, Any],
                      config_source: str = "<config>") -> dict[str, Any]:
    """Our final artifact (format ``msdnet-final-1``, see :func:`msdnet.training.train.final_artifact`)
    of an authors' checkpoint, with ``imported``: where it came from (sha256 of the file).

    ``config`` is the run config to record (``model`` and, for ``msdnet predict``, ``data`` and
    ``train``).
    """
    from ..models import build
    from ..training.checkpoint import FINAL_FORMAT

    src = Path(src)
    ckpt = read_authors_checkpoint(src)
    arch = ckpt.get("arch")
    if isinstance(arch, str) and arch != "msdnet":
        raise MsdnetError(f"{src}: holds a '{arch}', not an MSDNet")
    with torch.device("meta"):                                # names and shapes only
        model = build(model_config, config_source)
    state = convert_state_dict(ckpt["state_dict"], model, str(src), config_source)
    digest = sha256_file(src)
    epoch = _number(ckpt.get("epoch"))
    epochs = int(epoch) + 1 if isinstance(epoch, int) else 0   # theirs: the 0-based last epoch
    return {
        "format": FINAL_FORMAT,
        "msdnet_version": __version__,
        "model": state,
        "config": config,
        "config_hash": stable_hash({"imported_sha256": digest, "config": config}),
        "epoch": epochs,
        "epochs": epochs,
        "num_exits": int(model.num_exits),
        "finished": True,
        "metrics": [],
        "imported": {"from": AUTHORS_REPO, "source": src.name, "source_sha256": digest,
                     "dataparallel": all(str(k).startswith(PREFIX) for k in ckpt["state_dict"]),
                     "arch": arch if isinstance(arch, str) else None, "epoch": epoch,
                     "best_prec1": _number(ckpt.get("best_prec1"))},
    }


def import_authors(src: str | Path, out: str | Path, model_config: dict[str, Any],
                   config: dict[str, Any], config_source: str = "<config>") -> dict[str, Any]:
    """Write :func:`imported_artifact` to ``out`` (atomically, byte-deterministically); returns it."""
    artifact = imported_artifact(src, model_config, config, config_source)
    buf = io.BytesIO()
    torch.save(artifact, buf)            # to a buffer: the archive's inner name does not vary
    write_bytes_atomic(out, buf.getvalue())
    return artifact
