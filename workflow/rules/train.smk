# A training run lives under its run key (a hash of its resolved config): an edited knob is a
# new directory, trained from scratch; the old run stays where it was.
rule train_model:
    input:
        data=lambda wc: ancient(str(PRESET.data_summary(wc.model))),
    output:
        final=f"{RESULTS}/runs/{{model}}/{{key}}/seed{{seed}}/model.pt",
    wildcard_constraints:
        model=_alternatives(PRESET.trained_models()),
    params:
        config=lambda wc: planned_run(wc).config,
        recipe=lambda wc: planned_run(wc).recipe,
        overrides=lambda wc: quoted(f"--set={o}" for o in planned_run(wc).overrides),
        out=lambda wc, output: str(Path(output.final).parent),
    log:
        f"{LOGS}/train/{{model}}/{{key}}/seed{{seed}}.log",
    # before the analyses when both could start: every table waits on the trainings
    priority: 1
    threads: config["threads"]
    resources:
        **GPU_RESOURCES,
        **preset_resources("train_model"),
    conda:
        "../envs/msdnet.yaml"
    shell:
        "OMP_NUM_THREADS={threads} msdnet train {params.config:q} --recipe {params.recipe:q}"
        " --out {params.out:q} --final {output.final:q} --expect-key {wildcards.key}"
        " --data {input.data:q} --set train.seed={wildcards.seed} {params.overrides} > {log:q} 2>&1"


# A model with `checkpoint:` in the preset (the authors' published weights) is imported, not
# trained, into the same place (one seed, 0), so prediction reads it like a trained one. Its key
# hashes the checkpoint's path with the resolved config (msdnet.planning.runs.import_key). The checkpoint is
# a parameter, not an input: a dry run plans without the download; a real run without it stops
# with one line saying where to get it (README, "The authors' ImageNet models").
rule import_model:
    output:
        final=f"{RESULTS}/runs/{{model}}/{{key}}/seed{{seed}}/model.pt",
    wildcard_constraints:
        model=_alternatives(PRESET.imported_models()),
        seed="0",
    params:
        src=lambda wc: planned_run(wc).checkpoint,
        config=lambda wc: planned_run(wc).config,
        recipe=lambda wc: planned_run(wc).recipe,
        overrides=lambda wc: quoted(f"--set={o}" for o in planned_run(wc).overrides),
    log:
        f"{LOGS}/import/{{model}}/{{key}}/seed{{seed}}.log",
    resources:
        **preset_resources("import_model"),
    conda:
        "../envs/msdnet.yaml"
    shell:
        "msdnet import-authors {params.src:q} --config {params.config:q} --recipe {params.recipe:q}"
        " {params.overrides} --out {output.final:q} --expect-key {wildcards.key} > {log:q} 2>&1"
