rule table:
    input:
        preset=f"{RESULTS}/preset.json",
        predictions=table_predictions,
    output:
        f"{RESULTS}/tables/{{table}}.csv",
    params:
        results=lambda wc, output: Path(output[0]).parents[1],
    log:
        f"{LOGS}/tables/{{table}}.log",
    conda:
        "../envs/msdnet.yaml"
    shell:
        "msdnet collect {wildcards.table} --preset {input.preset} --results {params.results}"
        " --csv {output} > {log} 2>&1"


rule prepare_data:
    input:
        preset=f"{RESULTS}/preset.json",
    output:
        f"{RESULTS}/data.json",
    log:
        f"{LOGS}/prepare_data.log",
    conda:
        "../envs/msdnet.yaml"
    shell:
        "msdnet data {input.preset} --out {output} > {log} 2>&1"


rule data_config:
    input:
        preset=f"{RESULTS}/preset.json",
    output:
        f"{RESULTS}/data.yaml",
    log:
        f"{LOGS}/data_config.log",
    conda:
        "../envs/msdnet.yaml"
    shell:
        "msdnet preset {input.preset} --write-data {output} > {log} 2>&1"
