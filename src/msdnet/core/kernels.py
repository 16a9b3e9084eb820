"""The CPU kernel path, pinned in one place, so that a run gives the same bits on every x86-64
CPU with AVX2.

PyTorch picks its vectorised kernels (ATen), its convolutions (oneDNN) and its matrix products
(MKL) by what the host CPU offers: an AVX-512 Xeon and an AVX2 EPYC then round differently, and
the same seed trains other weights. :func:`pin` fixes the code path before torch is loaded:

=========================  =========  ===========================================
variable                   value      what it fixes
=========================  =========  ===========================================
``ATEN_CPU_CAPABILITY``    ``avx2``   ATen's vectorised CPU kernels
``ONEDNN_MAX_CPU_ISA``     ``AVX2``   oneDNN's convolution and pooling kernels
``MKL_CBWR``               ``AVX2``   MKL's code path (conditional numerical
                                      reproducibility)
=========================  =========  ===========================================

and the thread count comes from the job (``OMP_NUM_THREADS``, the preset's ``threads``). Every
``msdnet`` process pins (``msdnet.cli``); training records :func:`record` in its checkpoint and
final artifact, predictions in their metadata.

``MSDNET_CPU_KERNELS=native`` opts out: the host's fastest path (faster on AVX-512), not
bit-identical across machines. A run's record says which it was.
"""

from __future__ import annotations

import os
import sys
from typing import Any

__all__ = ["PINNED", "OPT_OUT", "pin", "record"]

PINNED: dict[str, str] = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "MKL_CBWR": "AVX2",
}
OPT_OUT = "MSDNET_CPU_KERNELS"      # "pinned" (default) or "native"


def mode() -> str:
    value = os.environ.get(OPT_OUT, "pinned").strip().lower() or "pinned"
    return value if value in ("pinned", "native") else "pinned"


def pin() -> str:
    """Set :data:`PINNED` in the environment unless the user opted out; returns the mode.

    Call it before torch is imported: ATen, oneDNN and MKL read these once, at start-up.
    """
    if mode() == "pinned":
        os.environ.update(PINNED)
    return mode()


def record() -> dict[str, Any]:
    """What decided this process's CPU numerics: the mode, the pinned variables, the threads."""
    out: dict[str, Any] = {"mode": mode(), **{k: os.environ.get(k, "") for k in PINNED}}
    torch = sys.modules.get("torch")
    out["threads"] = int(torch.get_num_threads()) if torch is not None else None
    return out
