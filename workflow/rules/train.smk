# A training run lives under its run key (a hash of its resolved config): an edited knob is a
# new directory, trained from scratch; the old run stays where it was.
rule train_model:
    input:
        data=lambda wc: ancient(str(PRESET.data_summary(wc.model))),
    output:
        final=f"{RESULTS}/runs/{{model}}/{{key}}/seed{{seed}}/model.pt",
    params:
        config=lambda wc: planned_run(wc).config,
        recipe=lambda wc: planned_run(wc).recipe,
        overrides=lambda wc: quoted(f"--set={o}" for o in planned_run(wc).overrides),
        out=lambda wc, output: str(Path(output.final).parent),
    log:
        f"{LOGS}/train/{{model}}/{{key}}/seed{{seed}}.log",
    threads: config["threads"]
    resources:
        gpu=config["gpu_jobs"],
    conda:
        "../envs/msdnet.yaml"
    shell:
        "OMP_NUM_THREADS={threads} msdnet train {params.config:q} --recipe {params.recipe:q}"
        " --out {params.out:q} --final {output.final:q} --expect-key {wildcards.key}"
        " --data {input.data:q} --set train.seed={wildcards.seed} {params.overrides} > {log:q} 2>&1"
