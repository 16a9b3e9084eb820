"""CPU jobs pin the kernel path (msdnet.kernels): ATen, oneDNN and MKL take the AVX2 path on
every x86-64 host, whatever the user's environment says, unless MSDNET_CPU_KERNELS=native."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

PROBE = """
import json, sys
from msdnet.core import kernels
kernels.pin()                      # what msdnet.cli.main does first
import torch
print(json.dumps({"capability": torch.backends.cpu.get_cpu_capability(), "record": kernels.record()}))
"""

x86 = pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="the pin is x86-64's AVX2 path")


def _probe(**env) -> dict:
    full = {**os.environ, **env}
    out = subprocess.run([sys.executable, "-c", PROBE], env=full, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@x86
def test_the_pin_overrides_the_users_environment():
    got = _probe(ATEN_CPU_CAPABILITY="default", MSDNET_CPU_KERNELS="")
    assert got["capability"] == "AVX2"
    assert got["record"]["mode"] == "pinned" and got["record"]["ATEN_CPU_CAPABILITY"] == "avx2"
    assert got["record"]["ONEDNN_MAX_CPU_ISA"] == "AVX2" and got["record"]["MKL_CBWR"] == "AVX2"


@x86
def test_native_opts_out_and_says_so():
    got = _probe(ATEN_CPU_CAPABILITY="default", MSDNET_CPU_KERNELS="native")
    assert got["capability"] == "DEFAULT"
    assert got["record"]["mode"] == "native"


def test_the_cli_pins_before_any_command_runs(monkeypatch):
    from msdnet import cli
    from msdnet.core import kernels

    seen = {}
    monkeypatch.setattr(kernels, "pin", lambda: seen.setdefault("pinned", True))
    with pytest.raises(SystemExit):
        cli.main(["--version"])
    assert seen == {"pinned": True}
