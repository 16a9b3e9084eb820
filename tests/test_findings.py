"""The findings checks on hand-made tables: each verdict can go either way."""

from __future__ import annotations

import pandas as pd

from msdnet.evaluation.analysis.findings import (ablation_order, all_findings, anytime_low_budget, dynamic_vs_single,
                                      markdown, reduction_lazy_savings, staircase_final)
from msdnet.cli import main


def _anytime(curves: dict[str, list[tuple[float, float]]], seeds=(0, 1)) -> pd.DataFrame:
    rows = []
    for model, pts in curves.items():
        for s in seeds:
            for k, (macs, acc) in enumerate(pts, 1):
                rows.append({"model": model, "seed": s, "exit": k, "macs": macs * 1e6, "accuracy": acc + s})
    return pd.DataFrame(rows)


def test_anytime_low_budget_either_way():
    win = _anytime({"MSDNet": [(1, 80), (2, 85)], "ResNet^MC": [(1.2, 78), (2, 86)],
                    "DenseNet^MC": [(1.1, 75), (3, 88)]})
    f = anytime_low_budget(win)
    assert f.holds is True and "1.20 MMACs" in f.numbers and "80.5 ± 0.7" in f.numbers
    lose = _anytime({"MSDNet": [(1, 70), (2, 85)], "ResNet^MC": [(1.2, 78), (2, 86)]})
    assert anytime_low_budget(lose).holds is False


def test_staircase_final_either_way():
    def table(msd):
        return pd.DataFrame([{"family": f, "location": 0.5, "metric": "relative_final", "mean": m,
                              "std": 0.0, "n_seeds": 1} for f, m in
                             (("resnet", 0.97), ("densenet", 0.98), ("msdnet", msd))])
    assert staircase_final(table(1.0)).holds is True
    assert staircase_final(table(0.97)).holds is False


def test_ablation_order_either_way():
    names = ("MSDNet", "MSDNet w/o dense connection", "MSDNet w/o dense connection and multi-scale")
    good = _anytime(dict(zip(names, ([(1, 80), (2, 90)], [(1, 79), (2, 88)], [(1, 70), (2, 85)]))))
    assert ablation_order(good).holds is True
    bad = _anytime(dict(zip(names, ([(1, 80), (2, 86)], [(1, 79), (2, 88)], [(1, 70), (2, 85)]))))
    assert ablation_order(bad).holds is False


def _budgeted(dyn, singles):
    rows = [{"model": "MSDNet with dynamic evaluation", "kind": "dynamic", "seed": s, "avg_macs": m * 1e6,
             "accuracy": a} for s in (0, 1) for m, a in dyn]
    rows += [{"model": n, "kind": "single", "seed": 0, "avg_macs": m * 1e6, "accuracy": a} for n, m, a in singles]
    return pd.DataFrame(rows)


def test_dynamic_vs_single_either_way():
    dyn = [(1, 80), (3, 90)]
    assert dynamic_vs_single(_budgeted(dyn, [("ResNet", 2, 84)])).holds is True
    assert dynamic_vs_single(_budgeted(dyn, [("ResNet", 2, 86)])).holds is False
    beyond = dynamic_vs_single(_budgeted(dyn, [("WRN", 9, 95)]))      # the curve stops at 3 MMACs
    assert beyond.holds is False and "90.0 ± 0.0 % at 3.00" in beyond.numbers
    cheaper = dynamic_vs_single(_budgeted(dyn, [("Tiny", 0.5, 60)]))
    assert cheaper.holds is None and "below" in cheaper.numbers


def test_reduction_lazy_either_way():
    def table(lazy_cost):
        rows = []
        for model, cost in (("MSDNet", lazy_cost), ("MSDNet w/o lazy evaluation", 2.0)):
            for s in (0, 1):
                rows += [{"model": model, "seed": s, "avg_macs": cost * 1e6, "accuracy": 85.0},
                         {"model": model, "seed": s, "avg_macs": cost * 2e6, "accuracy": 90.0}]
        return pd.DataFrame(rows)
    assert reduction_lazy_savings(table(1.5)).holds is True
    assert reduction_lazy_savings(table(2.5)).holds is False


def test_command_prints_a_markdown_table(tmp_path, capsys):
    _anytime({"MSDNet": [(1, 80)], "ResNet^MC": [(1, 70)]}).to_csv(tmp_path / "anytime.csv", index=False)
    assert main(["findings", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| the paper's finding") and out.count("\n") == 7 and "| yes |" in out
    assert markdown(all_findings(tmp_path)).count("n/a") == 4
    assert main(["findings", str(tmp_path / "nope")]) == 2
