"""dvc.lock on main is current: `dvc status` would rerun no stage for a reason in the repository
itself (code, configs, params). What results/ and figures/ hold is left out: a fresh clone has
none, `make figures` writes them, a killed run leaves some; none of it may decide this test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
FIX = "run `make repro` (or `dvc repro`) and commit dvc.lock"


def _status() -> dict:
    if not (REPO / ".dvc").is_dir() or not (REPO / "dvc.lock").is_file():
        pytest.skip("not a DVC checkout")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    out = subprocess.run([str(BIN / "dvc"), "status", "--json"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout or "{}")


def stale_reasons(status: dict) -> list[str]:
    """Why each stage would rerun, leaving out generated files (outputs, and deps that are outputs)."""
    reasons = []
    for stage, changes in status.items():
        for change in changes:
            if isinstance(change, str):                  # "changed command", "always changed"
                reasons.append(f"{stage}: {change}")
                continue
            for kind, files in change.items():
                if kind == "changed params":
                    reasons.append(f"{stage}: params {files}")
                    continue
                for path, state in (files or {}).items():
                    if not path.startswith(("results/", "figures/")):
                        reasons.append(f"{stage}: {kind} {path} {state}")
    return reasons


def test_dvc_lock_is_current():
    reasons = stale_reasons(_status())
    assert not reasons, f"dvc.lock is stale ({FIX}): " + "; ".join(reasons)


def test_stale_reasons_ignore_only_absent_outputs():
    status = {"train": [{"changed deps": {"src/msdnet": "modified", "results/mini/data": "deleted"}},
                        {"changed outs": {"results/mini/runs": "deleted"}}],
              "figures": [{"changed outs": {"figures/mini": "modified"}}, "changed command"]}
    assert stale_reasons(status) == ["train: changed deps src/msdnet modified",
                                     "figures: changed command"]
