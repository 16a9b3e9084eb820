"""Model families behind one registry: ``build(config) -> MultiExitModel``."""

from .base import ExitState, MultiExitModel, SegmentedMultiExit
from .registry import build, build_from_file, families, load_config, parse, register

# Importing a family module registers it.
from . import msdnet  # noqa: E402,F401
from . import resnet  # noqa: E402,F401
from . import wide_resnet  # noqa: E402,F401
from . import densenet  # noqa: E402,F401
from . import fractalnet  # noqa: E402,F401
from . import imagenet  # noqa: E402,F401

__all__ = [
    "ExitState", "MultiExitModel", "SegmentedMultiExit",
    "build", "build_from_file", "families", "load_config", "parse", "register",
]
