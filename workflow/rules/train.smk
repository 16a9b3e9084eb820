rule preset:
    output:
        f"{RESULTS}/preset.json",
    params:
        config=preset_json(),
    log:
        f"{LOGS}/preset.log",
    conda:
        "../envs/msdnet.yaml"
    shell:
        "msdnet preset - --json-config {params.config:q} --write {output} > {log} 2>&1"


rule train_model:
    input:
        config=model_config,
        recipe=config["recipe"],
        data=f"{RESULTS}/data.json",
    output:
        final=f"{RESULTS}/runs/{{model}}/seed{{seed}}/model.pt",
    params:
        out=lambda wc: run_dir(RESULTS, wc.model, wc.seed),
        overrides=train_overrides,
    log:
        f"{LOGS}/train/{{model}}/seed{{seed}}.log",
    threads: config["threads"]
    resources:
        gpu=config["gpu_jobs"],
    conda:
        "../envs/msdnet.yaml"
    shell:
        "OMP_NUM_THREADS={threads} msdnet train {input.config} --recipe {input.recipe}"
        " --out {params.out} --final {output.final} --set train.seed={wildcards.seed}"
        " {params.overrides} > {log} 2>&1"
