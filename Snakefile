# MSDNet reproduction workflow: every figure of the paper from models it trains itself.
#   snakemake --cores 2 figures                                   (embedded default, CPU)
#   snakemake figures --cores 8 --configfile config/paper-cifar100.yaml   (GPU)
# A --configfile replaces the embedded default preset (it is not merged into it).
if not workflow.config_settings.configfiles:

    configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/predict.smk"
include: "workflow/rules/analyze.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/notebooks.smk"


rule all:
    input:
        rules.figures.input,


# Stage targets (dvc.yaml runs one per stage).
rule data:
    input:
        f"{RESULTS}/data.json",


rule train:
    input:
        [f"{RESULTS}/runs/{m}/seed{s}/model.pt" for m, s in PRESET.runs_needed()],


rule predict:
    input:
        [str(pred_path(RESULTS, n, s, split)) for n, s in PRESET.predictions_needed() for split in SPLITS],


rule tables:
    input:
        [f"{RESULTS}/tables/{t}.csv" for t in PRESET.tables()],


localrules:
    all,
    data,
    train,
    predict,
    tables,
    figures,
