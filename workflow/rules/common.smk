# Helpers shared by the rules. The preset logic lives in msdnet.workflow (one source of truth
# for Snakemake and the `msdnet collect` command).
import json
import re
import shlex
from pathlib import Path

from snakemake.utils import min_version, validate

from msdnet.workflow import FIGURE_TABLES, Preset, pred_path, run_dir, validate_preset

min_version("8.0")

validate(config, workflow.source_path("../schemas/config.schema.yaml"))
PRESET = Preset(validate_preset(config, "config"))
RESULTS = f"results/{PRESET.name}"
FIGURES = f"figures/{PRESET.name}"
LOGS = f"{RESULTS}/logs"
REFERENCE = "data/paper/reference_points.csv"
SPLITS = ["val", "test"]


def _alternatives(names):
    return "|".join(re.escape(n) for n in sorted(names)) or "^$"


wildcard_constraints:
    model=_alternatives(PRESET.cfg["models"]),
    ensemble=_alternatives(PRESET.cfg["ensembles"]),
    seed=r"\d+",
    table="|".join(t for figure in FIGURE_TABLES.values() for t in figure),
    figure="|".join(FIGURE_TABLES),


def model_config(wildcards):
    return PRESET.cfg["models"][wildcards.model]["config"]


def train_overrides(wildcards):
    return " ".join(f"--set {shlex.quote(s)}" for s in PRESET.train_overrides(wildcards.model))


def ensemble_members(split):
    def members(wildcards):
        return [
            str(pred_path(RESULTS, model, seed, split))
            for model, seed in PRESET.ensemble_members(wildcards.ensemble, int(wildcards.seed))
        ]

    return members


def table_predictions(wildcards):
    return [
        str(pred_path(RESULTS, name, seed, split))
        for name, seed in PRESET.table_sources(wildcards.table)
        for split in SPLITS
    ]


def figure_tables(wildcards):
    return [f"{RESULTS}/tables/{t}.csv" for t in FIGURE_TABLES[wildcards.figure]]


def figure_args(wildcards, input):
    tables = list(input.tables)
    if wildcards.figure == "densenet-star":
        args = f"--anytime {tables[0]} --budgeted {tables[1]}"
    else:
        args = f"--table {tables[0]}"
    if wildcards.figure == "easy-hard":
        args += f" --data {RESULTS}/data.yaml"
    if PRESET.cfg["reference_dataset"]:
        args += f" --reference {REFERENCE} --dataset {PRESET.cfg['reference_dataset']}"
    return args


def figure_files():
    return [f"{FIGURES}/{fig}.{ext}" for fig in PRESET.figures for ext in ("pdf", "png")]


def preset_json():
    return json.dumps(config, sort_keys=True)
