rule predict_model:
    input:
        f"{RESULTS}/runs/{{model}}/seed{{seed}}/model.pt",
    output:
        val=f"{RESULTS}/predictions/{{model}}/seed{{seed}}/val.npz",
        test=f"{RESULTS}/predictions/{{model}}/seed{{seed}}/test.npz",
    log:
        f"{LOGS}/predict/{{model}}/seed{{seed}}.log",
    threads: config["threads"]
    resources:
        gpu=config["gpu_jobs"],
    conda:
        "../envs/msdnet.yaml"
    shell:
        "OMP_NUM_THREADS={threads} msdnet predict {input} --out-dir $(dirname {output.val}) > {log} 2>&1"


rule ensemble:
    input:
        val=ensemble_members("val"),
        test=ensemble_members("test"),
    output:
        val=f"{RESULTS}/predictions/{{ensemble}}/seed{{seed}}/val.npz",
        test=f"{RESULTS}/predictions/{{ensemble}}/seed{{seed}}/test.npz",
    log:
        f"{LOGS}/ensemble/{{ensemble}}/seed{{seed}}.log",
    conda:
        "../envs/msdnet.yaml"
    shell:
        "(msdnet ensemble {input.val} --name {wildcards.ensemble} --out {output.val}"
        " && msdnet ensemble {input.test} --name {wildcards.ensemble} --out {output.test}) > {log} 2>&1"
