# Tables, figures and notebooks keep fixed names (tables/anytime.csv), so what each was built
# from is recorded in a key file, .keys/<name>.<hash of its spec>.json, that it takes as input.
# An edit (a renamed label, other predictions) asks for a key that does not exist yet: the key
# job writes it (removing the older keys of that name) and the output is rebuilt. This works
# with or without Snakemake's metadata (e.g. after `dvc pull` into an empty tree).
rule job_key:
    output:
        "{keydir}/.keys/{name}.{hash}.json",
    params:
        # the planned path from the wildcards (under a storage provider output[0] is a local copy)
        spec=lambda wc: planned_key(f"{wc.keydir}/.keys/{wc.name}.{wc.hash}.json"),
    log:
        f"{LOGS}/keys/{{keydir}}/{{name}}.{{hash}}.log",
    conda:
        "../envs/msdnet.yaml"
    shell:
        "msdnet key {output:q} --spec {params.spec:q} > {log:q} 2>&1"


# A table depends on its own section of the preset and the predictions it reads (its spec, which
# is also what `msdnet collect` builds it from).
rule table:
    input:
        predictions=lambda wc: [ancient(p) for n, s in PRESET.table_sources(wc.table) for p in predictions(n, s)],
        key=lambda wc: ancient(str(PRESET.table_key(wc.table))),
    output:
        f"{RESULTS}/tables/{{table}}.csv",
    params:
        spec=lambda wc: json.dumps(PRESET.table_spec(wc.table), sort_keys=True),
    log:
        f"{LOGS}/tables/{{table}}.log",
    resources:
        **preset_resources("table"),
    conda:
        "../envs/msdnet.yaml"
    shell:
        "msdnet collect {wildcards.table} --spec {params.spec:q} --csv {output:q} > {log:q} 2>&1"
