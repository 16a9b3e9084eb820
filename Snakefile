# MSDNet reproduction: every figure of the paper from models it trains itself.
# From the repository root (Snakemake reads profiles/default by itself):
#   snakemake --cores 8 figures                                          (the default preset)
#   snakemake figures --cores 8 --configfile config/paper-cifar100.yaml  (GPU)
# Layout, presets, reruns and clusters: docs/workflow.md.
if not workflow.config_settings.configfiles:

    configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/predict.smk"
include: "workflow/rules/analyze.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/notebooks.smk"


# The main target: every figure, the notebooks and the key files they were built from
# (key files: docs/workflow.md).
rule figures:
    input:
        figure_files(),
        key_files(),
        f"{RESULTS}/notebooks/overview.ipynb",
        f"{RESULTS}/metrics.json",


rule all:
    default_target: True
    input:
        rules.figures.input,


# Stage targets (dvc.yaml runs one per stage).
rule data:
    input:
        data_files(),


rule train:
    input:
        [str(PRESET.model_file(m, s)) for m, s in PRESET.runs_needed()],


rule predict:
    input:
        [pred for n, s in PRESET.predictions_needed() for pred in predictions(n, s)],


rule tables:
    input:
        [f"{RESULTS}/tables/{t}.csv" for t in PRESET.tables()],
        [str(PRESET.table_key(t)) for t in PRESET.tables()],
        f"{RESULTS}/metrics.json",


# Run where Snakemake runs, never submitted to a cluster: the targets, the key files and
# prepare_data (it downloads; compute nodes often have no internet).
localrules:
    all,
    job_key,
    prepare_data,
    data,
    train,
    predict,
    tables,
    metrics,
    figures,
