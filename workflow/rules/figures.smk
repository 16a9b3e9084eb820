# A figure depends on its tables, its section's labels and the paper's points (its spec, recorded
# in its key file; see analyze.smk).
rule figure:
    input:
        tables=lambda wc: [ancient(f"{RESULTS}/tables/{t.name}.csv") for t in FIGURES[wc.figure].tables],
        key=lambda wc: ancient(str(PRESET.figure_key(wc.figure))),
        data=lambda wc: [ancient(str(p)) for p in [PRESET.image_data(wc.figure)] if p],
        reference=ancient(local(REFERENCE)),
    output:
        pdf=f"{FIGURES_DIR}/{{figure}}.pdf",
        png=report(f"{FIGURES_DIR}/{{figure}}.png", category="Figures", caption="../report/figure.rst"),
    params:
        spec=lambda wc: json.dumps(PRESET.figure_spec(wc.figure), sort_keys=True),
        args=figure_args,
        stem=lambda wc, output: output.pdf[: -len(".pdf")],
    log:
        f"{LOGS}/figures/{{figure}}.log",
    resources:
        **preset_resources("figure"),
    conda:
        "../envs/msdnet.yaml"
    shell:
        "msdnet figure {wildcards.figure} {params.args} --out {params.stem:q} > {log:q} 2>&1"


# The key files are asked for here, by the target itself: a key that is missing (an edited spec)
# makes its job run, and the table, figure or notebook that reads it follows.
rule figures:
    input:
        figure_files(),
        key_files(),
        f"{RESULTS}/notebooks/overview.ipynb",
