"""The metrics file DVC reads (``results/<preset>/metrics.json``; ``dvc metrics show``,
``dvc exp show``): a summary of a preset's tables, no new numbers.

    {"models":   {NAME: {"seed<S>": {"top1_percent": ..., "mmacs": ...}}},
     "findings": {"anytime": 1, "staircase": 0, ...},
     "reproduced": K, "checked": N}

``models``: per network of the workflow (its name in the preset, e.g. ``msdnet``, the ensembles
too) and seed, the last exit's top-1 % on the test split and its cumulative MACs in MMACs (full
costs), read from every anytime-style table (columns name, seed, exit, macs, accuracy).
``findings``: the paper's five findings (:mod:`.findings`), 1 when this preset's numbers
reproduce one, 0 when they do not; a finding the preset cannot check is left out.
``reproduced`` / ``checked``: how many hold of how many could be checked.
"""

from __future__ import annotations

from pathlib import Path


from .common import read_csv_strict
from .findings import all_findings

__all__ = ["FINDING_IDS", "dvc_metrics"]

FINDING_IDS = ("anytime", "staircase", "ablation", "budgeted", "reduction_lazy")   # all_findings' order
ANYTIME_COLUMNS = {"name", "seed", "exit", "macs", "accuracy"}


def dvc_metrics(tables: str | Path) -> dict:
    """The metrics of a tables folder (module docstring)."""
    tables = Path(tables)
    models: dict[str, dict[str, dict[str, float]]] = {}
    for csv in sorted(tables.glob("*.csv")):
        df = read_csv_strict(csv)             # names stay strings ("NA", "007")
        if not ANYTIME_COLUMNS <= set(df.columns) or df.empty:
            continue
        for (name, seed), g in df.groupby(["name", "seed"], sort=True):
            last = g.sort_values("exit").iloc[-1]
            models.setdefault(str(name), {})[f"seed{int(seed)}"] = {
                "top1_percent": round(float(last["accuracy"]), 6),
                "mmacs": round(float(last["macs"]) / 1e6, 6)}
    findings = {fid: int(bool(f.holds)) for fid, f in zip(FINDING_IDS, all_findings(tables))
                if f.holds is not None}
    return {"models": {k: dict(sorted(v.items())) for k, v in sorted(models.items())},
            "findings": findings, "reproduced": sum(findings.values()), "checked": len(findings)}
