# A training run lives under its run key (docs/workflow.md, "What reruns when").
rule train_model:
    input:
        data=lambda wc: ancient(str(PRESET.data_summary(wc.model))),
    output:
        final=f"{RESULTS}/runs/{{model}}/{{key}}/seed{{seed}}/model.pt",
    log:
        f"{LOGS}/train/{{model}}/{{key}}/seed{{seed}}.log",
    wildcard_constraints:
        model=_alternatives(PRESET.trained_models()),
    # before the analyses when both could start: every table waits on the trainings
    priority: 1
    conda:
        "../envs/msdnet.yaml"
    threads: config["threads"]
    resources:
        **GPU_RESOURCES,
        **preset_resources("train_model"),
    params:
        config=lambda wc: planned_run(wc).config,
        recipe=lambda wc: planned_run(wc).recipe,
        overrides=lambda wc: quoted(f"--set={o}" for o in planned_run(wc).overrides),
        out=lambda wc, output: str(Path(output.final).parent),
    shell:
        "OMP_NUM_THREADS={threads} msdnet train {params.config:q} --recipe {params.recipe:q}"
        " --out {params.out:q} --final {output.final:q} --expect-key {wildcards.key}"
        " --data {input.data:q} --set train.seed={wildcards.seed} {params.overrides} > {log:q} 2>&1"


# A model with `checkpoint:` in the preset is imported, not trained, into the same place (seed 0).
# The checkpoint is a parameter, not an input, so a dry run needs no download (docs/authors.md).
rule import_model:
    output:
        final=f"{RESULTS}/runs/{{model}}/{{key}}/seed{{seed}}/model.pt",
    log:
        f"{LOGS}/import/{{model}}/{{key}}/seed{{seed}}.log",
    wildcard_constraints:
        model=_alternatives(PRESET.imported_models()),
        seed="0",
    conda:
        "../envs/msdnet.yaml"
    resources:
        **preset_resources("import_model"),
    params:
        src=lambda wc: planned_run(wc).checkpoint,
        config=lambda wc: planned_run(wc).config,
        recipe=lambda wc: planned_run(wc).recipe,
        overrides=lambda wc: quoted(f"--set={o}" for o in planned_run(wc).overrides),
    shell:
        "msdnet import-authors {params.src:q} --config {params.config:q} --recipe {params.recipe:q}"
        " {params.overrides} --out {output.final:q} --expect-key {wildcards.key} > {log:q} 2>&1"
