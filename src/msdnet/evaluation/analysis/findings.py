"""The paper's five findings, checked on a preset's tables (``results/<preset>/tables/``).

Each check returns a :class:`Finding`: the claim, whether this preset's numbers reproduce it,
and the numbers (mean ± std over seeds where there are several seeds). The rules are fixed in
advance and stated in ``rule``; nothing is tuned to make a claim hold.

1. anytime: MSDNet's accuracy at a low budget (the largest first-exit cost of the compared
   networks, so each has an exit within it) is above ResNet^MC's and DenseNet^MC's.
2. staircase: an intermediate classifier lowers ResNet's and DenseNet's final accuracy
   (mean relative final accuracy < 1) but not MSDNet's (>= 0.995, i.e. within half a percent).
3. ablation: at MSDNet's full budget, MSDNet > w/o dense connection > w/o dense connection and
   multi-scale (each removal costs accuracy at the same budget).
4. budgeted: MSDNet with dynamic evaluation is more accurate than every single network at that
   network's cost or less (where the MSDNet curve stops below it, at its last point).
5. reduction-lazy: to reach the accuracy every curve reaches, MSDNet with reduction and lazy
   evaluation spends the fewest MACs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ...core.errors import DataError
from .common import read_csv_strict

__all__ = ["Finding", "anytime_low_budget", "staircase_final", "ablation_order", "dynamic_vs_single",
           "reduction_lazy_savings", "all_findings", "markdown"]


@dataclass
class Finding:
    claim: str
    holds: bool | None                   # None: the preset does not have what the check needs
    numbers: str
    rule: str
    details: dict = field(default_factory=dict)


def _ms(values) -> str:
    v = np.asarray(list(values), dtype=float)
    if v.size > 1:
        return f"{v.mean():.1f} ± {v.std(ddof=1):.1f}"
    return f"{v.mean():.1f}"


def _step_accuracy(g: pd.DataFrame, budget: float) -> float:
    """Anytime accuracy within ``budget``: the last exit whose cumulative MACs fit in it."""
    fit = g[g["macs"] <= budget * (1 + 1e-9)].sort_values("macs")
    return float(fit["accuracy"].iloc[-1]) if len(fit) else float("nan")


def anytime_low_budget(anytime: pd.DataFrame, ours: str = "MSDNet",
                       others: tuple[str, ...] = ("ResNet^MC", "DenseNet^MC")) -> Finding:
    claim = "MSDNet's anytime curve is above ResNet^MC's and DenseNet^MC's at low budgets"
    rule = "top-1 % at the largest first-exit cost of the three (each has an exit within it)"
    names = [n for n in (ours, *others) if n in set(anytime["model"])]
    if ours not in names or len(names) < 2:
        return Finding(claim, None, "the preset does not draw these curves", rule)
    budget = max(float(anytime[anytime["model"] == n]["macs"].min()) for n in names)
    acc = {n: [_step_accuracy(g, budget) for _, g in anytime[anytime["model"] == n].groupby("seed")]
           for n in names}
    holds = all(np.mean(acc[ours]) > np.mean(acc[n]) for n in names if n != ours)
    numbers = f"at {budget / 1e6:.2f} MMACs: " + ", ".join(f"{n} {_ms(a)} %" for n, a in acc.items())
    return Finding(claim, holds, numbers, rule, {"budget": budget, "accuracy": acc})


def staircase_final(staircase: pd.DataFrame) -> Finding:
    claim = ("intermediate classifiers hurt ResNet's and DenseNet's final accuracy, not MSDNet's")
    rule = "mean over locations of final accuracy / accuracy without the classifier: < 1 for ResNet " \
           "and DenseNet, >= 0.995 for MSDNet"
    rel = staircase[staircase["metric"] == "relative_final"]
    fam = {f.lower(): g for f, g in rel.groupby("family")}
    if not {"resnet", "densenet", "msdnet"} <= set(fam):
        return Finding(claim, None, "the preset does not train all three staircases", rule)
    means = {f: float(fam[f]["mean"].mean()) for f in ("resnet", "densenet", "msdnet")}
    holds = means["resnet"] < 1 and means["densenet"] < 1 and means["msdnet"] >= 0.995
    per_loc = {f: ", ".join(f"{r.location:.2f}: {r.mean:.3f}" for r in fam[f].sort_values("location")
                            .itertuples()) for f in means}
    n = int(rel["n_seeds"].max()) if "n_seeds" in rel else 1
    numbers = "; ".join(f"{f} {means[f]:.3f} ({per_loc[f]})" for f in means) + \
              f" ({n} seed{'s' if n > 1 else ''} per run)"
    return Finding(claim, holds, numbers, rule, means)


def ablation_order(ablation: pd.DataFrame, order: tuple[str, ...] = (
        "MSDNet", "MSDNet w/o dense connection", "MSDNet w/o dense connection and multi-scale")) -> Finding:
    claim = "dense connectivity and multi-scale features each help (ablation)"
    rule = "top-1 % at MSDNet's full cost: MSDNet > w/o dense > w/o dense and multi-scale"
    if not set(order) <= set(ablation["model"]):
        return Finding(claim, None, "the preset does not draw these ablations", rule)
    budget = float(ablation[ablation["model"] == order[0]]["macs"].max())
    acc = {n: [_step_accuracy(g, budget) for _, g in ablation[ablation["model"] == n].groupby("seed")]
           for n in order}
    means = [np.nanmean(acc[n]) for n in order]
    holds = bool(all(a > b for a, b in zip(means, means[1:])))
    numbers = f"at {budget / 1e6:.2f} MMACs: " + ", ".join(f"{n} {_ms(acc[n])} %" for n in order)
    return Finding(claim, holds, numbers, rule, {"budget": budget, "accuracy": acc})


def _curve_at(points: pd.DataFrame, budget: float) -> list[float]:
    """Per seed, the dynamic curve's top-1 % at average budget ``budget``: linear between its
    points, its last point beyond its range (it cannot spend more), NaN below its range."""
    out = []
    for _, g in points.groupby("seed"):
        g = g.sort_values("avg_macs")
        x, y = g["avg_macs"].to_numpy(float), g["accuracy"].to_numpy(float)
        out.append(float(np.interp(min(budget, x[-1]), x, y)) if budget >= x[0] else float("nan"))
    return out


def dynamic_vs_single(budgeted: pd.DataFrame, ours: str = "MSDNet with dynamic evaluation") -> Finding:
    claim = "dynamic evaluation (MSDNet) beats single networks at equal average budget"
    rule = ("MSDNet's dynamic curve at each single network's cost (at most; where the curve stops "
            "earlier, its last point) against that network")
    dyn = budgeted[(budgeted["kind"] == "dynamic") & (budgeted["model"] == ours)]
    single = budgeted[budgeted["kind"] == "single"]
    if dyn.empty or single.empty:
        return Finding(claim, None, "the preset does not draw these curves", rule)
    rows, verdicts = [], []
    for name, g in single.groupby("model", sort=False):
        cost = float(g["avg_macs"].mean())
        ours_acc = np.array(_curve_at(dyn, cost))
        if np.all(np.isnan(ours_acc)):
            rows.append(f"{name} ({cost / 1e6:.2f} MMACs, {_ms(g['accuracy'])} %): below MSDNet's range")
            continue
        spent = float(np.mean([min(cost, m) for m in dyn.groupby("seed")["avg_macs"].max()]))
        verdicts.append(np.nanmean(ours_acc) > g["accuracy"].mean())
        rows.append(f"{name} {_ms(g['accuracy'])} % at {cost / 1e6:.2f} MMACs vs MSDNet "
                    f"{_ms(ours_acc[~np.isnan(ours_acc)])} % at {spent / 1e6:.2f}")
    holds = all(verdicts) if verdicts else None
    return Finding(claim, holds, "; ".join(rows), rule)


def reduction_lazy_savings(table: pd.DataFrame) -> Finding:
    claim = "network reduction and lazy evaluation save MACs at equal accuracy"
    rule = "average MACs each curve needs to reach the highest accuracy every curve reaches " \
           "(mean curve over seeds)"
    curves = list(dict.fromkeys(table["model"]))
    if len(curves) < 2 or "MSDNet" not in curves:
        return Finding(claim, None, "the preset does not draw these curves", rule)
    target = min(table[table["model"] == c].groupby("seed")["accuracy"].max().mean() for c in curves)
    need = {}
    for c in curves:
        per_seed = []
        for _, g in table[table["model"] == c].groupby("seed"):
            g = g.sort_values("avg_macs")
            reach = g[g["accuracy"] >= target - 1e-9]
            per_seed.append(float(reach["avg_macs"].iloc[0]) if len(reach) else float("nan"))
        need[c] = float(np.nanmean(per_seed))
    holds = all(need["MSDNet"] <= v for v in need.values())
    numbers = f"to reach {target:.1f} %: " + ", ".join(f"{c} {v / 1e6:.2f} MMACs" for c, v in need.items())
    return Finding(claim, holds, numbers, rule, need)


def _read(tables: Path, name: str) -> pd.DataFrame | None:
    path = tables / f"{name}.csv"
    if not path.is_file():
        return None
    try:
        return read_csv_strict(path, f"{name} table")
    except DataError as exc:
        raise DataError(f"{exc}; re-run `snakemake tables`") from None


def all_findings(tables: str | Path) -> list[Finding]:
    tables = Path(tables)
    checks = [("anytime", anytime_low_budget), ("staircase", staircase_final),
              ("ablation", ablation_order), ("budgeted", dynamic_vs_single),
              ("reduction_lazy", reduction_lazy_savings)]
    out = []
    for name, check in checks:
        df = _read(tables, name)
        out.append(check(df) if df is not None else Finding(check.__name__, None, f"no {name} table", ""))
    return out


def markdown(findings: list[Finding]) -> str:
    verdict = {True: "yes", False: "**no**", None: "n/a"}
    lines = ["| the paper's finding | reproduced here? | numbers (top-1 %, mean ± std over seeds) | rule |",
             "|---|---|---|---|"]
    for f in findings:
        lines.append(f"| {f.claim} | {verdict[f.holds]} | {f.numbers} | {f.rule} |")
    return "\n".join(lines)
