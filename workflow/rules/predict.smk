rule predict_model:
    input:
        ancient(f"{RESULTS}/runs/{{model}}/{{key}}/seed{{seed}}/model.pt"),
    output:
        val=f"{RESULTS}/predictions/{{model}}/{{key}}/seed{{seed}}/val.npz",
        test=f"{RESULTS}/predictions/{{model}}/{{key}}/seed{{seed}}/test.npz",
    log:
        f"{LOGS}/predict/{{model}}/{{key}}/seed{{seed}}.log",
    priority: 1
    conda:
        "../envs/msdnet.yaml"
    threads: config["threads"]
    resources:
        **GPU_RESOURCES,
        **preset_resources("predict_model"),
    params:
        out=lambda wc, output: str(Path(output.val).parent),
    shell:
        "OMP_NUM_THREADS={threads} msdnet predict {input:q} --out-dir {params.out:q} > {log:q} 2>&1"


rule ensemble:
    input:
        val=lambda wc: [ancient(predictions(m, s)[0]) for m, s in planned_ensemble(wc)],
        test=lambda wc: [ancient(predictions(m, s)[1]) for m, s in planned_ensemble(wc)],
    output:
        val=f"{RESULTS}/predictions/{{ensemble}}/{{key}}/seed{{seed}}/val.npz",
        test=f"{RESULTS}/predictions/{{ensemble}}/{{key}}/seed{{seed}}/test.npz",
    log:
        f"{LOGS}/ensemble/{{ensemble}}/{{key}}/seed{{seed}}.log",
    conda:
        "../envs/msdnet.yaml"
    resources:
        **preset_resources("ensemble"),
    shell:
        "(msdnet ensemble {input.val:q} --name {wildcards.ensemble} --out {output.val:q}"
        " && msdnet ensemble {input.test:q} --name {wildcards.ensemble} --out {output.test:q}) > {log:q} 2>&1"
