# One job per data set (and split) the preset trains on: downloads CIFAR, fixes the held-out
# split, writes a summary that every training job on that data checks.
rule prepare_data:
    output:
        f"{RESULTS}/data/{{dataset}}-{{dkey}}.json",
    log:
        f"{LOGS}/data/{{dataset}}-{{dkey}}.log",
    conda:
        "../envs/msdnet.yaml"
    params:
        recipe=lambda wc: data_plan(wc).recipe,
        sets=lambda wc: quoted(
            f"--set={o}" for o in data_plan(wc).overrides if o.startswith("data.")
        ),
    shell:
        "msdnet data {params.recipe:q} {params.sets} --out {output:q} > {log:q} 2>&1"
