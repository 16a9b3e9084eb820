# A table depends on its own section of the preset and the predictions it reads (both in
# params.spec, which is also what `msdnet collect` builds it from).
rule table:
    input:
        lambda wc: [ancient(p) for n, s in PRESET.table_sources(wc.table) for p in predictions(n, s)],
    output:
        f"{RESULTS}/tables/{{table}}.csv",
    params:
        spec=lambda wc: json.dumps(PRESET.table_spec(wc.table), sort_keys=True),
    log:
        f"{LOGS}/tables/{{table}}.log",
    conda:
        "../envs/msdnet.yaml"
    shell:
        "msdnet collect {wildcards.table} --spec {params.spec:q} --csv {output:q} > {log:q} 2>&1"
