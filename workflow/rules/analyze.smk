# Writes the key file of a table, figure or notebook: its spec, the one thing the output's job
# reads to learn what to build (key files: docs/workflow.md). The planner writes it here, in the
# Snakemake process (a local rule: no subprocess, no spec on a shell line).
rule job_key:
    output:
        "{keydir}/.keys/{name}.{hash}.json",
    log:
        f"{LOGS}/keys/{{keydir}}/{{name}}.{{hash}}.log",
    run:
        # the planned path from the wildcards (under a storage provider output[0] is a local copy)
        planned = f"{wildcards.keydir}/.keys/{wildcards.name}.{wildcards.hash}.json"
        Path(log[0]).write_text(f"{write_key(output[0], planned_key(planned))}\n")


# A table depends on its own section of the preset and the predictions it reads: its spec, which
# `msdnet collect` reads from the table's key file.
rule table:
    input:
        predictions=lambda wc: [
            ancient(p) for n, s in PRESET.table_sources(wc.table) for p in predictions(n, s)
        ],
        key=lambda wc: ancient(str(PRESET.table_key(wc.table))),
    output:
        # update(): Snakemake keeps the previous table until the job succeeds (it backs it up
        # and restores it when the job fails), so a failed rerun never loses a good table
        update(
            report(
                f"{RESULTS}/tables/{{table}}.csv",
                category="Tables",
                caption="../report/table.rst",
                labels={"table": "{table}"},
            )
        ),
    log:
        f"{LOGS}/tables/{{table}}.log",
    conda:
        "../envs/msdnet.yaml"
    resources:
        **preset_resources("table"),
    shell:
        "msdnet collect {wildcards.table} --key {input.key:q} --out {output:q} > {log:q} 2>&1"


# What DVC reads (`dvc metrics show`, `dvc exp show`): per model and seed the last exit's top-1 %
# and MMACs, and the findings' verdicts, from the tables (msdnet.evaluation.analysis.metrics).
# Its inputs name the tables' key files, so a table built from another spec rebuilds it.
rule metrics:
    input:
        tables=[ancient(f"{RESULTS}/tables/{t}.csv") for t in PRESET.tables()],
        table_keys=[ancient(str(PRESET.table_key(t))) for t in PRESET.tables()],
    output:
        report(f"{RESULTS}/metrics.json", category="Metrics", caption="../report/metrics.rst"),
    log:
        f"{LOGS}/metrics.log",
    conda:
        "../envs/msdnet.yaml"
    params:
        # the folder of the tables as this job sees them (a local copy under a storage provider)
        tables=lambda wc, input: str(Path(input.tables[0]).parent) if input.tables else "",
    shell:
        "msdnet metrics {params.tables:q} --out {output:q} > {log:q} 2>&1"
