"""Presets of the workflow: which runs a preset needs, where their files live, and the tables
behind each figure. Pure functions shared by the Snakemake rules (``workflow/rules/common.smk``)
and the ``msdnet preset`` / ``msdnet collect`` commands, so both read one source of truth.

Layout under ``results/<preset>/``::

    runs/<model>/seed<s>/checkpoint.pt, metrics.csv   (msdnet train)
    predictions/<name>/seed<s>/{val,test}.npz          (msdnet predict, or msdnet ensemble)
    tables/<table>.csv                                  (msdnet collect)
    notebooks/overview.ipynb                            (papermill)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import yaml

from .analysis.anytime import anytime_table
from .analysis.budgeted import BudgetedEvaluator, envelope
from .analysis.common import exit_accuracy
from .analysis.easy_hard import easy_hard_table
from .analysis.staircase import baseline_row, run_row, staircase_table
from .errors import ConfigError
from .predictions import Predictions, load

SCHEMA = Path("workflow") / "schemas" / "config.schema.yaml"
ENSEMBLE_SEED_STRIDE = 1000
TABLES = ("anytime", "ablation", "budgeted", "staircase", "easy_hard", "densenet_star_anytime",
          "densenet_star_budgeted", "reduction_lazy")
FIGURE_TABLES = {
    "anytime": ["anytime"], "ablation": ["ablation"], "budgeted": ["budgeted"],
    "staircase": ["staircase"], "easy-hard": ["easy_hard"],
    "densenet-star": ["densenet_star_anytime", "densenet_star_budgeted"],
    "reduction-lazy": ["reduction_lazy"],
}


def validate_preset(config: Mapping[str, Any], source: str = "<preset>", schema: Path | None = None) -> dict:
    """Check a preset against the JSON schema (defaults filled in) and its cross-references."""
    import jsonschema

    schema_path = Path(schema or SCHEMA)
    if not schema_path.is_file():
        raise ConfigError(f"{schema_path}: config schema not found; run from the repository root")
    schema_doc = yaml.safe_load(schema_path.read_text())
    cfg = dict(config)
    try:
        jsonschema.validate(cfg, schema_doc)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(top level)"
        raise ConfigError(f"{source}: {where}: {exc.message}") from None
    for key, spec in schema_doc["properties"].items():
        if key not in cfg and "default" in spec:
            cfg[key] = spec["default"]
    cfg.setdefault("recipe_set", {})
    cfg.setdefault("model_set", {})
    preset = Preset(cfg)
    names = set(cfg["models"]) | set(cfg["ensembles"])
    for name, members in cfg["ensembles"].items():
        for m in members:
            if m not in cfg["models"]:
                raise ConfigError(f"{source}: ensembles/{name}: unknown member model '{m}'")
    for fig, name in preset.referenced():
        if name not in names:
            raise ConfigError(f"{source}: figures/{fig}: unknown model or ensemble '{name}' "
                              f"(define it under models: or ensembles:)")
    for name, spec in cfg["models"].items():
        if not Path(spec["config"]).is_file():
            raise ConfigError(f"{source}: models/{name}: config file {spec['config']} does not exist")
    return cfg


@dataclass
class Preset:
    cfg: dict[str, Any]

    @property
    def name(self) -> str:
        return self.cfg["preset"]

    @property
    def figures(self) -> dict[str, Any]:
        return self.cfg["figures"]

    def seeds_of(self, model: str) -> list[int]:
        return list(self.cfg["models"][model].get("seeds") or self.cfg["seeds"])

    def seeds_for(self, name: str) -> list[int]:
        """Seeds of a model or an ensemble (ensembles use the preset's seeds)."""
        return self.seeds_of(name) if name in self.cfg["models"] else list(self.cfg["seeds"])

    def ensemble_members(self, name: str, seed: int) -> list[tuple[str, int]]:
        """(model, seed) of every member: the j-th copy of a model trains with seed + 1000 j."""
        seen: dict[str, int] = {}
        out = []
        for m in self.cfg["ensembles"][name]:
            j = seen.get(m, 0)
            seen[m] = j + 1
            out.append((m, seed + ENSEMBLE_SEED_STRIDE * j))
        return out

    def referenced(self) -> list[tuple[str, str]]:
        """(figure, model-or-ensemble name) for everything the figures draw."""
        refs: list[tuple[str, str]] = []
        f = self.figures
        for fig in ("anytime", "ablation"):
            refs += [(fig, n) for n in f.get(fig, {}).values()]
        b = f.get("budgeted", {})
        refs += [("budgeted", n) for ns in b.get("dynamic", {}).values() for n in ns]
        refs += [("budgeted", n) for ns in b.get("single", {}).values() for n in _as_list(ns)]
        d = f.get("densenet-star", {})
        refs += [("densenet-star", n) for n in d.get("anytime", {}).values()]
        refs += [("densenet-star", n) for ns in d.get("budgeted", {}).values() for n in ns]
        refs += [("reduction-lazy", n) for spec in f.get("reduction-lazy", {}).values() for n in spec["models"]]
        for spec in f.get("staircase", {}).values():
            refs += [("staircase", spec["baseline"])] + [("staircase", n) for n in spec["runs"].values()]
        if "easy-hard" in f:
            refs.append(("easy-hard", f["easy-hard"]["model"]))
        return refs

    def table_sources(self, table: str) -> list[tuple[str, int]]:
        """(name, seed) of every predictions pair a table reads."""
        fig = {"densenet_star_anytime": "densenet-star", "densenet_star_budgeted": "densenet-star",
               "easy_hard": "easy-hard", "reduction_lazy": "reduction-lazy"}.get(table, table)
        names = sorted({n for f, n in self.referenced() if f == fig})
        if table == "densenet_star_anytime":
            names = sorted(set(self.figures[fig]["anytime"].values()))
        if table == "densenet_star_budgeted":
            names = sorted({n for ns in self.figures[fig]["budgeted"].values() for n in ns})
        return [(n, s) for n in names for s in self.seeds_for(n)]

    def tables(self) -> list[str]:
        return [t for fig in self.figures for t in FIGURE_TABLES[fig]]

    def predictions_needed(self) -> list[tuple[str, int]]:
        return sorted({src for t in self.tables() for src in self.table_sources(t)})

    def runs_needed(self) -> list[tuple[str, int]]:
        runs = set()
        for name, seed in self.predictions_needed():
            if name in self.cfg["ensembles"]:
                runs.update(self.ensemble_members(name, seed))
            else:
                runs.add((name, seed))
        return sorted(runs)

    def data_config(self) -> dict[str, Any]:
        """The recipe's data section with the preset's ``data.*`` overrides applied."""
        from .config import load_yaml

        data = dict(load_yaml(self.cfg["recipe"]).get("data") or {})
        for key, value in self.cfg.get("recipe_set", {}).items():
            section, _, name = key.partition(".")
            if section == "data":
                data[name] = value
        return data

    def train_overrides(self, model: str) -> list[str]:
        """``--set`` arguments of msdnet train for a model: recipe then model overrides."""
        spec = self.cfg["models"][model]
        sets = {**self.cfg.get("recipe_set", {}), **spec.get("recipe_set", {})}
        args = [f"{k}={_yaml_scalar(v)}" for k, v in sets.items()]
        model_sets = {**self.cfg.get("model_set", {}), **spec.get("set", {})}
        args += [f"model.{k}={_yaml_scalar(v)}" for k, v in model_sets.items()]
        return args


def _as_list(names: str | list[str]) -> list[str]:
    return [names] if isinstance(names, str) else list(names)


def _yaml_scalar(v: Any) -> str:
    return yaml.safe_dump(v, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()


def pred_path(results: str | Path, name: str, seed: int, split: str) -> Path:
    return Path(results) / "predictions" / name / f"seed{seed}" / f"{split}.npz"


def run_dir(results: str | Path, model: str, seed: int) -> Path:
    return Path(results) / "runs" / model / f"seed{seed}"


# --------------------------------------------------------------------------------------------
# Tables behind the figures (long format). Columns are documented in each function.
# --------------------------------------------------------------------------------------------

def _load(results: Path, name: str, seed: int, split: str, costs: str = "full") -> Predictions:
    preds = load(pred_path(results, name, seed, split))
    if costs == "lazy" and "exit_macs_lazy" in preds.meta:
        preds.exit_macs = np.asarray(preds.meta["exit_macs_lazy"], dtype=np.float64)
    return preds


def anytime_rows(preset: Preset, results: Path, curves: Mapping[str, str]) -> pd.DataFrame:
    """Columns: model (legend label), name, seed, exit, macs, params, accuracy (top-1 %)."""
    frames = []
    for label, name in curves.items():
        for seed in preset.seeds_for(name):
            df = anytime_table(_load(results, name, seed, "test"), model=label)
            frames.append(df.assign(name=name, seed=seed))
    return pd.concat(frames, ignore_index=True)[["model", "name", "seed", "exit", "macs", "params", "accuracy"]]


def budgeted_rows(preset: Preset, results: Path, dynamic: Mapping[str, list[str]],
                  single: Mapping[str, str | list[str]] | None = None,
                  costs: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Columns: model (legend label), family (single networks: the label that joins several
    sizes into one line), name (the network a point comes from), seed, kind (dynamic | single),
    p, avg_macs, accuracy (top-1 %), val_avg_macs, val_accuracy.

    A dynamic curve over several models is their best-on-validation envelope (the paper's MSDNet
    curve); over one model it is that model's sweep of p. A single network is one point (its
    last exit, full cost); a label with several single networks is a line through their sizes.
    Dynamic curves count lazy evaluation unless ``costs`` says ``full`` for their label.
    """
    rows = []
    for label, names in dynamic.items():
        cost_kind = (costs or {}).get(label, "lazy")
        for seed in preset.seeds_for(names[0]):
            points = {}
            for name in names:
                ev = BudgetedEvaluator(_load(results, name, seed, "val", cost_kind),
                                       _load(results, name, seed, "test", cost_kind))
                points[name] = ev.sweep()
            chosen = points[names[0]] if len(names) == 1 else envelope(points)
            for pt in chosen:
                rows.append({"model": label, "name": pt.model if len(names) > 1 else names[0],
                             "seed": seed, "kind": "dynamic", "p": pt.p,
                             "avg_macs": pt.avg_macs, "accuracy": pt.accuracy,
                             "val_avg_macs": pt.val_avg_macs, "val_accuracy": pt.val_accuracy})
    for label, names in (single or {}).items():
        for name in _as_list(names):
            for seed in preset.seeds_for(name):
                test, val = _load(results, name, seed, "test"), _load(results, name, seed, "val")
                rows.append({"model": label if isinstance(names, str) else name, "family": label,
                             "name": name, "seed": seed, "kind": "single", "p": float("nan"),
                             "avg_macs": float(test.exit_macs[-1]), "accuracy": _last_exit_accuracy(test),
                             "val_avg_macs": float(val.exit_macs[-1]), "val_accuracy": _last_exit_accuracy(val)})
    return pd.DataFrame(rows, columns=["model", "family", "name", "seed", "kind", "p", "avg_macs",
                                       "accuracy", "val_avg_macs", "val_accuracy"])


def _last_exit_accuracy(preds: Predictions) -> float:
    return float(exit_accuracy(preds)[-1])


def staircase_rows(preset: Preset, results: Path) -> pd.DataFrame:
    """msdnet.analysis.staircase's table: family, location, metric, mean, std, n_seeds."""
    runs, base = [], []
    for family, spec in preset.figures["staircase"].items():
        for seed in preset.seeds_for(spec["baseline"]):
            base.append(baseline_row(_load(results, spec["baseline"], seed, "test"), family, seed))
        for loc, name in spec["runs"].items():
            for seed in preset.seeds_for(name):
                runs.append(run_row(_load(results, name, seed, "test"), family, seed, float(loc)))
    return staircase_table(pd.DataFrame(runs), pd.DataFrame(base))


def easy_hard_rows(preset: Preset, results: Path) -> pd.DataFrame:
    """msdnet.analysis.easy_hard's table for the first seed of the chosen model."""
    spec = preset.figures["easy-hard"]
    seed = preset.seeds_for(spec["model"])[0]
    return easy_hard_table(_load(results, spec["model"], seed, "test"), per_class=spec.get("per_class", 4))


def collect(table: str, preset: Preset, results: str | Path) -> pd.DataFrame:
    results = Path(results)
    f = preset.figures
    if table == "anytime":
        return anytime_rows(preset, results, f["anytime"])
    if table == "ablation":
        return anytime_rows(preset, results, f["ablation"])
    if table == "budgeted":
        return budgeted_rows(preset, results, f["budgeted"].get("dynamic", {}), f["budgeted"].get("single", {}))
    if table == "densenet_star_anytime":
        return anytime_rows(preset, results, f["densenet-star"]["anytime"])
    if table == "densenet_star_budgeted":
        return budgeted_rows(preset, results, f["densenet-star"]["budgeted"])
    if table == "reduction_lazy":
        spec = f["reduction-lazy"]
        return budgeted_rows(preset, results, {k: v["models"] for k, v in spec.items()},
                             costs={k: v["costs"] for k, v in spec.items()})
    if table == "staircase":
        return staircase_rows(preset, results)
    if table == "easy_hard":
        return easy_hard_rows(preset, results)
    raise ConfigError(f"unknown table {table!r} (one of: {', '.join(TABLES)})")

