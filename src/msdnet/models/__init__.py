"""Model families behind one registry: ``build(config) -> MultiExitModel``.

The names below are imported on first use, so ``msdnet.models.configs`` and
``msdnet.models.registry.parse`` (validating a config) import no torch; the family modules
register their builders when the first model is built.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ExitState": "base", "MultiExitModel": "base", "SegmentedMultiExit": "base",
    "build": "registry", "build_from_file": "registry", "families": "registry",
    "load_config": "registry", "parse": "registry", "register": "registry",
}

__all__ = [
    "ExitState", "MultiExitModel", "SegmentedMultiExit",
    "build", "build_from_file", "families", "load_config", "parse", "register",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
