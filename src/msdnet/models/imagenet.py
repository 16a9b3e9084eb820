"""ImageNet baselines from torchvision's model classes, as single-exit MultiExitModels.

arch ``torchvision``; ``name`` picks the network, built from torchvision's classes with random
init (torchvision's own, which follows each paper's code) and never downloaded:

- ResNets (He et al. 2016): ``resnet18/34/50/101/152`` as in torchvision; smaller members for the
  MSDNet paper's ensembles from the same class: ``resnet10`` = BasicBlock x [1, 1, 1, 1]
  (1 + 8 + 1 weight layers), ``resnet26`` = Bottleneck x [2, 2, 2, 2] (1 + 24 + 1).
- DenseNets (Huang et al. 2017, k = 32, 64 stem maps): ``densenet121/169/201``; ``densenet36``
  = block_config (2, 4, 6, 4). Note: torchvision's depth is 2 * sum(block_config) + 5 (stem,
  3 transitions, classifier), always odd, so no DenseNet has exactly 36 layers; (2, 4, 6, 4) has
  36 conv layers plus the classifier, keeping 121's shape (blocks growing to the third).
- ``alexnet``: torchvision's AlexNet (the single-GPU "one weird trick" variant, 64-192-384-256-256
  filters, not the two-tower original); ``googlenet``: GoogLeNet (Szegedy et al. 2015) with the
  auxiliary classifiers off (torchvision only uses them in training; the single-exit model has
  one classifier) and ``transform_input`` off.
- any other depth of the same classes: ``resnet_basic`` / ``resnet_bottleneck`` with
  ``layers: [l1, l2, l3, l4]``, or ``densenet`` with ``layers`` = block_config.

``pretrained_weights``: path to a local torchvision state dict (``.pth``) loaded strictly into
the network (DenseNet files in torchvision's old key format, ``norm.1`` etc., are renamed).
A missing file or one that does not fit is a ConfigError with one line; nothing is downloaded.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ..core.errors import ConfigError
from .base import MultiExitModel, SegmentedMultiExit
from .configs import TorchvisionConfig


def _tvm():
    """torchvision.models, imported on first use (it is slow to import, and most runs never need it)."""
    from torchvision import models

    return models


def _block(kind: str):
    from torchvision.models.resnet import BasicBlock, Bottleneck

    return {"basic": BasicBlock, "bottleneck": Bottleneck}[kind]
from .registry import register

__all__ = ["TorchvisionConfig", "torchvision_model", "NETWORKS"]

def _resnet(block: type, layers: list[int]) -> Callable[[int], nn.Module]:
    return lambda nc: _tvm().ResNet(_block(block), list(layers), num_classes=nc)


def _densenet(block_config: list[int]) -> Callable[[int], nn.Module]:
    return lambda nc: _tvm().DenseNet(growth_rate=32, block_config=tuple(block_config),
                                   num_init_features=64, num_classes=nc)


NETWORKS: dict[str, Callable[[int], nn.Module]] = {
    "resnet10": _resnet("basic", [1, 1, 1, 1]),
    "resnet18": _resnet("basic", [2, 2, 2, 2]),
    "resnet26": _resnet("bottleneck", [2, 2, 2, 2]),
    "resnet34": _resnet("basic", [3, 4, 6, 3]),
    "resnet50": _resnet("bottleneck", [3, 4, 6, 3]),
    "resnet101": _resnet("bottleneck", [3, 4, 23, 3]),
    "resnet152": _resnet("bottleneck", [3, 8, 36, 3]),
    "densenet36": _densenet([2, 4, 6, 4]),
    "densenet121": _densenet([6, 12, 24, 16]),
    "densenet169": _densenet([6, 12, 32, 32]),
    "densenet201": _densenet([6, 12, 48, 32]),
    "alexnet": lambda nc: _tvm().AlexNet(num_classes=nc),
    "googlenet": lambda nc: _tvm().GoogLeNet(num_classes=nc, aux_logits=False,
                                          transform_input=False, init_weights=True),
}


def _network(cfg: TorchvisionConfig) -> nn.Module:
    if cfg.name == "resnet_basic":
        return _resnet("basic", cfg.layers)(cfg.num_classes)
    if cfg.name == "resnet_bottleneck":
        return _resnet("bottleneck", cfg.layers)(cfg.num_classes)
    if cfg.name == "densenet":
        return _densenet(cfg.layers)(cfg.num_classes)
    return NETWORKS[cfg.name](cfg.num_classes)


_OLD_DENSENET_KEY = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.([12]\."
                               r"(?:weight|bias|running_mean|running_var|num_batches_tracked))$")


def load_weights(net: nn.Module, path: str, name: str) -> None:
    """Load a local state dict strictly; any problem is a one-line ConfigError."""
    where = f"key 'pretrained_weights' ({path})"
    if not Path(path).is_file():
        raise ConfigError(f"{where}: no such file; give a local torchvision .pth state dict "
                          f"(nothing is downloaded) or set it to null")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
        raise ConfigError(f"{where}: not a readable PyTorch file ({type(exc).__name__})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(f"{where}: expected a state dict of tensors")
    state = {_OLD_DENSENET_KEY.sub(r"\1\2", k): v for k, v in state.items()}
    own = net.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys (e.g. {missing[0]!r})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[0]!r})")
        if shapes:
            k = shapes[0]
            parts.append(f"{len(shapes)} shape mismatches (e.g. {k!r}: file "
                         f"{tuple(state[k].shape)}, model {tuple(own[k].shape)})")
        raise ConfigError(f"{where}: does not fit torchvision {name}: {'; '.join(parts)}; "
                          f"check 'name' and 'num_classes'")
    net.load_state_dict(state)


def torchvision_model(cfg: TorchvisionConfig) -> SegmentedMultiExit:
    """A torchvision network as a MultiExitModel with one exit (one segment, identity head)."""
    net = _network(cfg)
    if cfg.pretrained_weights is not None:
        load_weights(net, cfg.pretrained_weights, cfg.name)
    return SegmentedMultiExit([net], [nn.Identity()], tuple(cfg.input_size))


@register("torchvision", TorchvisionConfig)
def _build_torchvision(cfg: TorchvisionConfig) -> MultiExitModel:
    return torchvision_model(cfg)
