# A figure from its tables, its section's labels and the paper's points (its spec, in its key file).
rule figure:
    input:
        tables=lambda wc: [
            derived(f"{RESULTS}/tables/{t.name}.csv", "table") for t in FIGURES[wc.figure].tables
        ],
        key=lambda wc: ancient(str(PRESET.figure_key(wc.figure))),
        # its tables' key files: a table rebuilt from a new spec redraws the figure in the same
        # pass, even when this figure is the target (docs/workflow.md#key-files)
        table_keys=lambda wc: [
            ancient(str(PRESET.table_key(t.name))) for t in FIGURES[wc.figure].tables
        ],
        data=lambda wc: [ancient(str(p)) for p in [PRESET.image_data(wc.figure)] if p],
        reference=ancient(local(REFERENCE)),
    output:
        # update(): a failed redraw keeps the previous figure (analyze.smk, rule table)
        pdf=update(f"{FIGURES_DIR}/{{figure}}.pdf"),
        png=update(
            report(
                f"{FIGURES_DIR}/{{figure}}.png",
                category=report_figure_category,
                caption="../report/figure.rst",
                labels={"figure": "{figure}", "format": "PNG"},
            )
        ),
    log:
        f"{LOGS}/figures/{{figure}}.log",
    conda:
        "../envs/msdnet.yaml"
    resources:
        **preset_resources("figure"),
    params:
        args=figure_args,
        stem=lambda wc, output: output.pdf[: -len(".pdf")],
    shell:
        "msdnet figure {wildcards.figure} {params.args} --out {params.stem:q} > {log:q} 2>&1"
