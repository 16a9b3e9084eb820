"""Row builders: the tidy tables behind the figures, from predictions files.

Each builder is ``build(section, sources) -> DataFrame``: ``section`` is the figure's section of
a preset (legend labels -> model or ensemble names), ``sources`` finds the predictions of every
(name, seed). ``msdnet.figures.registry`` says which builder makes which table; ``msdnet collect``
runs one. The analysis itself (accuracies, thresholds, envelopes) lives in ``msdnet.evaluation.analysis``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from .analysis.anytime import anytime_table
from .analysis.budgeted import BudgetedEvaluator, check_pair, envelope
from .analysis.combiners import (COMBINERS, EPSILONS, combined_predictions, exit_metrics,
                                 fit_temperatures)
from .analysis.common import exit_accuracy
from .analysis.easy_hard import add_fallback_hard, easy_hard_table
from .analysis.staircase import baseline_row, run_row, staircase_table
from ..core.errors import ConfigError
from ..inference.predictions import Predictions, load, with_costs

__all__ = ["Sources", "anytime_rows", "budgeted_rows", "dynamic_rows", "reduction_lazy_rows",
           "staircase_rows", "easy_hard_rows", "COST_DEFAULT", "combiners_rows",
           "monotonicity_rows", "calibration_rows", "reliability_rows", "budgeted_combiners_rows"]

# Budgeted curves count lazy evaluation (features an earlier exit computed are reused), as a real
# early-exit run spends; `msdnet budgeted` uses the same default (--costs lazy). Anytime curves
# and single networks use full costs (one exit evaluated alone).
COST_DEFAULT = "lazy"


class Sources:
    """Where each (name, seed)'s predictions live: ``{name: {seed: directory}}``; a directory
    holds ``val.npz`` and ``test.npz``."""

    def __init__(self, dirs: Mapping[str, Mapping[int | str, str | Path]]):
        self.dirs = {name: {int(s): Path(d) for s, d in seeds.items()} for name, seeds in dirs.items()}

    def seeds(self, name: str) -> list[int]:
        if name not in self.dirs:
            raise ConfigError(f"no predictions were planned for {name!r}; add it to the table's sources")
        return sorted(self.dirs[name])

    def load(self, name: str, seed: int, split: str, costs: str = "full") -> Predictions:
        return with_costs(load(self.dirs[name][seed] / f"{split}.npz"), costs)


def _as_list(names: str | list[str]) -> list[str]:
    return [names] if isinstance(names, str) else list(names)


def anytime_rows(section: Mapping[str, str], src: Sources) -> pd.DataFrame:
    """Columns: model (legend label), name, seed, exit, macs, params, accuracy (top-1 %)."""
    frames = []
    for label, name in section.items():
        for seed in src.seeds(name):
            df = anytime_table(src.load(name, seed, "test"), model=label)
            frames.append(df.assign(name=name, seed=seed))
    return pd.concat(frames, ignore_index=True)[["model", "name", "seed", "exit", "macs", "params", "accuracy"]]


BUDGETED_COLUMNS = ["model", "family", "name", "seed", "kind", "p", "avg_macs", "accuracy",
                    "val_avg_macs", "val_accuracy"]


def dynamic_rows(section: Mapping[str, list[str]], src: Sources,
                 costs: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Dynamic-evaluation curves (see :func:`budgeted_rows`), one per legend label."""
    rows = []
    for label, names in section.items():
        cost_kind = (costs or {}).get(label, COST_DEFAULT)
        for seed in src.seeds(names[0]):
            points = {}
            for name in names:
                ev = BudgetedEvaluator(src.load(name, seed, "val", cost_kind),
                                       src.load(name, seed, "test", cost_kind))
                points[name] = ev.sweep()
            chosen = points[names[0]] if len(names) == 1 else envelope(points)
            for pt in chosen:
                rows.append({"model": label, "name": pt.model if len(names) > 1 else names[0],
                             "seed": seed, "kind": "dynamic", "p": pt.p,
                             "avg_macs": pt.avg_macs, "accuracy": pt.accuracy,
                             "val_avg_macs": pt.val_avg_macs, "val_accuracy": pt.val_accuracy})
    return pd.DataFrame(rows, columns=BUDGETED_COLUMNS)


def budgeted_rows(section: Mapping[str, Mapping], src: Sources) -> pd.DataFrame:
    """Columns: model (legend label), family (single networks: the label that joins several
    sizes into one line), name (the network a point comes from), seed, kind (dynamic | single),
    p, avg_macs, accuracy (top-1 %), val_avg_macs, val_accuracy.

    A dynamic curve over several models is their best-on-validation envelope (the paper's MSDNet
    curve); over one model it is that model's sweep of p, counting lazy evaluation (the section's
    ``costs: full`` counts every exit alone instead). A single
    network is one point (its last exit, full cost); a label with several single networks is a
    line through their sizes.
    """
    dynamic = dynamic_rows(section.get("dynamic", {}), src,
                           {label: section.get("costs", COST_DEFAULT) for label in section.get("dynamic", {})})
    rows = []
    for label, names in section.get("single", {}).items():
        for name in _as_list(names):
            for seed in src.seeds(name):
                test, val = src.load(name, seed, "test"), src.load(name, seed, "val")
                rows.append({"model": label if isinstance(names, str) else name, "family": label,
                             "name": name, "seed": seed, "kind": "single", "p": float("nan"),
                             "avg_macs": float(test.exit_macs[-1]), "accuracy": _last(test),
                             "val_avg_macs": float(val.exit_macs[-1]), "val_accuracy": _last(val)})
    single = pd.DataFrame(rows, columns=BUDGETED_COLUMNS)
    return pd.concat([df for df in (dynamic, single) if not df.empty] or [dynamic], ignore_index=True)


def reduction_lazy_rows(section: Mapping[str, Mapping], src: Sources) -> pd.DataFrame:
    """The budgeted columns for MSDNet with and without network reduction / lazy evaluation."""
    return dynamic_rows({k: v["models"] for k, v in section.items()}, src,
                        costs={k: v["costs"] for k, v in section.items()})


def _last(preds: Predictions) -> float:
    return float(exit_accuracy(preds)[-1])


def staircase_rows(section: Mapping[str, Mapping], src: Sources) -> pd.DataFrame:
    """msdnet.evaluation.analysis.staircase's table: family, location, metric, mean, std, n_seeds."""
    runs, base = [], []
    for family, spec in section.items():
        for seed in src.seeds(spec["baseline"]):
            base.append(baseline_row(src.load(spec["baseline"], seed, "test"), family, seed))
        for loc, name in spec["runs"].items():
            for seed in src.seeds(name):
                runs.append(run_row(src.load(name, seed, "test"), family, seed, float(loc)))
    return staircase_table(pd.DataFrame(runs), pd.DataFrame(base))


def easy_hard_rows(section: Mapping, src: Sources) -> pd.DataFrame:
    """msdnet.evaluation.analysis.easy_hard's table for the first seed of the chosen model."""
    seed = src.seeds(section["model"])[0]
    test = src.load(section["model"], seed, "test")
    per_class = section.get("per_class", 4)
    return add_fallback_hard(easy_hard_table(test, per_class=per_class), test, per_class=per_class)


# -- beyond the paper: exit combiners and calibration (msdnet.evaluation.analysis.combiners) ----

COMBINERS_COLUMNS = ["model", "seed", "combiner", "calibrated", "exit", "macs", "accuracy",
                     "ece_percent", "nll"]
MONOTONICITY_COLUMNS = ["model", "seed", "combiner", "calibrated", "epsilon", "decrease_percent"]
CALIBRATION_COLUMNS = ["model", "seed", "exit", "macs", "temperature", "ece_percent",
                       "ece_percent_calibrated", "nll", "nll_calibrated"]
RELIABILITY_COLUMNS = ["model", "seed", "exit", "calibrated", "bin", "lower", "upper", "count",
                       "confidence", "accuracy"]
BUDGETED_COMBINERS_COLUMNS = BUDGETED_COLUMNS + ["combiner"]


def _val_test(src: Sources, name: str, seed: int, costs: str = "full") -> tuple[Predictions, Predictions]:
    """The (validation, test) predictions of a run, checked to belong together."""
    val, test = src.load(name, seed, "val", costs), src.load(name, seed, "test", costs)
    check_pair(val, test, f"{name} seed {seed} val.npz", f"{name} seed {seed} test.npz")
    return val, test


def _combiner_metrics(section: Mapping[str, str], src: Sources):
    """(label, seed, test, temperatures, {(combiner, calibrated): Metrics}) per model and seed;
    temperatures are fitted on the validation file only."""
    for label, name in section.items():
        for seed in src.seeds(name):
            val, test = _val_test(src, name, seed)
            temps = fit_temperatures(val)
            metrics = {(comb, cal): exit_metrics(test, comb, temps if cal else None)
                       for cal in (False, True) for comb in COMBINERS}
            yield label, seed, test, temps, metrics


def combiners_rows(section: Mapping[str, str], src: Sources) -> pd.DataFrame:
    """Per model (legend label), seed, combiner, calibrated (per-exit temperature scaling fitted
    on the validation split) and exit: macs (full, as the anytime table), accuracy (top-1 %),
    ece_percent, nll; on the test split."""
    rows = []
    for label, seed, test, _temps, metrics in _combiner_metrics(section, src):
        for (comb, cal), m in metrics.items():
            for k in range(test.num_exits):
                rows.append({"model": label, "seed": seed, "combiner": comb, "calibrated": cal,
                             "exit": k + 1, "macs": float(test.exit_macs[k]),
                             "accuracy": float(m.accuracy[k]), "ece_percent": float(m.ece_percent[k]),
                             "nll": float(m.nll[k])})
    return pd.DataFrame(rows, columns=COMBINERS_COLUMNS)


def monotonicity_rows(section: Mapping[str, str], src: Sources) -> pd.DataFrame:
    """Per model, seed, combiner, calibrated and epsilon: decrease_percent, the % of test images
    whose true-class probability falls by more than epsilon from an exit to a later one."""
    rows = []
    for label, seed, _test, _temps, metrics in _combiner_metrics(section, src):
        for (comb, cal), m in metrics.items():
            for eps in EPSILONS:
                rows.append({"model": label, "seed": seed, "combiner": comb, "calibrated": cal,
                             "epsilon": eps, "decrease_percent": m.decrease_percent[eps]})
    return pd.DataFrame(rows, columns=MONOTONICITY_COLUMNS)


def _softmax_calibration(section: Mapping[str, str], src: Sources):
    for label, name in section.items():
        for seed in src.seeds(name):
            val, test = _val_test(src, name, seed)
            temps = fit_temperatures(val)
            yield label, seed, test, temps, exit_metrics(test), exit_metrics(test, temperatures=temps)


def calibration_rows(section: Mapping[str, str], src: Sources) -> pd.DataFrame:
    """Per model, seed and exit of the paper's softmax: the temperature fitted on the validation
    split, and ECE (%) and NLL on the test split before and after scaling."""
    rows = []
    for label, seed, test, temps, raw, cal in _softmax_calibration(section, src):
        for k in range(test.num_exits):
            rows.append({"model": label, "seed": seed, "exit": k + 1, "macs": float(test.exit_macs[k]),
                         "temperature": float(temps[k]), "ece_percent": float(raw.ece_percent[k]),
                         "ece_percent_calibrated": float(cal.ece_percent[k]),
                         "nll": float(raw.nll[k]), "nll_calibrated": float(cal.nll[k])})
    return pd.DataFrame(rows, columns=CALIBRATION_COLUMNS)


def reliability_rows(section: Mapping[str, str], src: Sources) -> pd.DataFrame:
    """The reliability diagram of the first and the last exit (the paper's softmax), before and
    after temperature scaling: per model, seed, exit, calibrated and confidence bin (15
    equal-width bins, lower < confidence <= upper): count, confidence (mean) and accuracy (%)
    of the test images in it. Empty bins are left out (no point to draw, and every number in a
    table is finite)."""
    rows = []
    for label, seed, test, _temps, raw, cal in _softmax_calibration(section, src):
        n_bins = raw.bins.shape[1]
        for k in sorted({0, test.num_exits - 1}):
            for calibrated, m in ((False, raw), (True, cal)):
                for b in range(n_bins):
                    count, conf, ok = m.bins[k, b]
                    if not count:
                        continue
                    rows.append({"model": label, "seed": seed, "exit": k + 1, "calibrated": calibrated,
                                 "bin": b, "lower": b / n_bins, "upper": (b + 1) / n_bins,
                                 "count": int(count),
                                 "confidence": conf / count, "accuracy": ok / count * 100.0})
    return pd.DataFrame(rows, columns=RELIABILITY_COLUMNS)


def budgeted_combiners_rows(section: Mapping[str, str], src: Sources) -> pd.DataFrame:
    """The budgeted table's columns plus combiner: the paper's thresholds (sweep of p, lazy
    costs as the budgeted figure) on the largest combined probability of each combiner (no
    temperature scaling: it alone cannot move a budgeted curve)."""
    rows = []
    for label, name in section.items():
        for seed in src.seeds(name):
            val, test = _val_test(src, name, seed, COST_DEFAULT)
            for comb in COMBINERS:
                ev = BudgetedEvaluator(combined_predictions(val, comb), combined_predictions(test, comb))
                for pt in ev.sweep():
                    rows.append({"model": label, "name": name, "seed": seed, "kind": "dynamic",
                                 "p": pt.p, "avg_macs": pt.avg_macs, "accuracy": pt.accuracy,
                                 "val_avg_macs": pt.val_avg_macs, "val_accuracy": pt.val_accuracy,
                                 "combiner": comb})
    return pd.DataFrame(rows, columns=BUDGETED_COMBINERS_COLUMNS)
