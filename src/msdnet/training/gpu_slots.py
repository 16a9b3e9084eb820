"""Which card a job takes on a node with several GPUs.

Snakemake limits how many training (and prediction) jobs run at once (the ``gpu`` or
``gpu_slot`` resource, ``workflow/rules/common.smk``) but does not say which card each one
gets: without help every process would use ``cuda:0``. A process asked for ``device: auto`` (or
a bare ``cuda``) while several cards are visible calls :func:`claim`: it holds an ``flock`` on
one slot file of the least-loaded card for the rest of its life, and uses that card. The lock
goes with the process (a killed job never leaves a stale one); the files stay.

Slot files live in a folder of the node (:func:`slot_dir`: ``$MSDNET_GPU_SLOT_DIR``, else
``<system temp>/msdnet-gpu-slots-<uid>``): cards are a node's, so a shared file system is the
wrong place for them. A card is named by its entry of ``CUDA_VISIBLE_DEVICES`` when that is set
(so two jobs that see different cards never count each other's), else by its index.

The choice (:func:`card_names`, :func:`choose`) is pure and testable without CUDA; :func:`claim`
takes the device count as an argument for the same reason.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

from ..core.errors import MsdnetError

if TYPE_CHECKING:
    import torch

ENV_DIR = "MSDNET_GPU_SLOT_DIR"
_HELD: list["Claim"] = []          # claims of this process, held until it exits


def slot_dir() -> Path:
    """The node-local folder of the slot files."""
    env = os.environ.get(ENV_DIR)
    if env:
        return Path(env)
    return Path(tempfile.gettempdir()) / f"msdnet-gpu-slots-{os.getuid()}"


def card_names(count: int, visible: str | None) -> list[str]:
    """Names of the ``count`` cards this process sees: ``CUDA_VISIBLE_DEVICES``'s entries
    (indices or UUIDs) when it is set, else ``0 .. count-1``. Unsafe characters become ``_``."""
    entries = [e.strip() for e in (visible or "").split(",") if e.strip()]
    names = entries[:count] if len(entries) >= count else [str(i) for i in range(count)]
    return ["".join(c if c.isalnum() or c in "-_" else "_" for c in n) for n in names]


def choose(loads: Sequence[int]) -> int:
    """The index of the least-loaded card (the lowest index among equals)."""
    if not loads:
        raise ValueError("no cards to choose from")
    return min(range(len(loads)), key=lambda i: (loads[i], i))


def wants_card(device: str, count: int, distributed: bool) -> bool:
    """Whether a process asked for ``device`` should claim a card: ``auto`` or a bare ``cuda``
    with more than one card visible, outside torchrun (which gives each rank its own card)."""
    return device in ("auto", "cuda") and count > 1 and not distributed


@dataclass
class Claim:
    index: int                      # the card's index in this process (cuda:<index>)
    name: str                       # its name in the slot folder
    slot: int                       # which of its slot files this process holds
    loads: Mapping[str, int]        # every card's other holders when it was chosen
    _fd: int = field(default=-1, repr=False)

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)      # closing the descriptor releases the lock
            self._fd = -1
        if self in _HELD:
            _HELD.remove(self)


def _held(path: Path) -> bool:
    """Whether another process holds an flock on ``path`` (probe without keeping it)."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)                # releases the probe's lock, if it got one


def loads(directory: Path, names: Sequence[str]) -> dict[str, int]:
    """How many slot files of each card are held now."""
    return {n: sum(_held(p) for p in directory.glob(f"card-{n}.slot-*.lock")) for n in names}


def claim(count: int, visible: str | None = None, directory: Path | None = None) -> Claim:
    """Hold a slot of the least-loaded of ``count`` cards until :meth:`Claim.release` or exit.

    Choosing is serialised by a blocking flock on ``<dir>/choose.lock``, so jobs starting
    together spread over the cards instead of all counting zero on card 0."""
    directory = Path(directory or slot_dir())
    directory.mkdir(parents=True, exist_ok=True)
    names = card_names(count, os.environ.get("CUDA_VISIBLE_DEVICES") if visible is None else visible)
    guard = os.open(directory / "choose.lock", os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(guard, fcntl.LOCK_EX)
        now = loads(directory, names)
        index = choose([now[n] for n in names])
        slot = 0
        while True:                 # the first free slot file of that card
            fd = os.open(directory / f"card-{names[index]}.slot-{slot}.lock", os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                os.close(fd)
                slot += 1
    finally:
        os.close(guard)
    held = Claim(index=index, name=names[index], slot=slot, loads=now, _fd=fd)
    _HELD.append(held)
    return held


def resolve_device(name: str) -> torch.device:
    """The torch device of a device name: ``auto`` is CUDA when available, else the CPU; a
    ``cuda`` name without CUDA is one line."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        raise MsdnetError(f"device {name!r} is not a device name; use auto, cpu, cuda or cuda:N") from None
    if dev.type not in ("cpu", "cuda"):
        raise MsdnetError(f"device {name!r}: msdnet runs on the CPU or CUDA cards; use auto, cpu, "
                          f"cuda or cuda:N")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise MsdnetError(f"device {name!r} was asked for but CUDA is not available; use device: auto or cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise MsdnetError(f"device {name!r}: there are {torch.cuda.device_count()} CUDA card(s) "
                          f"(cuda:0 .. cuda:{torch.cuda.device_count() - 1})")
    return dev


def claim_device(device: str, distributed: bool = False, log=None):
    """``(torch device, claim or None)``: on a claimed card when :func:`wants_card` says so
    (made the current CUDA device); otherwise what :func:`resolve_device` gives and
    None. Release the claim when done (it also goes when the process exits)."""
    import torch

    resolved = resolve_device(device)
    count = torch.cuda.device_count() if resolved.type == "cuda" else 0
    if not wants_card(device, count, distributed):
        return resolved, None
    held = claim(count)
    dev = torch.device("cuda", held.index)
    torch.cuda.set_device(dev)
    if log is not None:
        busy = ", ".join(f"{n}: {k}" for n, k in held.loads.items())
        log(f"card {dev} (slot {held.slot} of card {held.name}; jobs already on the cards: {busy})")
    return dev, held


@contextlib.contextmanager
def claimed_device(device: str, distributed: bool = False, log=None):
    """:func:`claim_device` as a context: yields the torch device and releases the claim (if
    any) on the way out."""
    dev, held = claim_device(device, distributed, log)
    try:
        yield dev
    finally:
        if held is not None:
            held.release()
