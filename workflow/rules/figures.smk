rule figure:
    input:
        tables=figure_tables,
        data=lambda wc: [f"{RESULTS}/data.yaml"] if wc.figure == "easy-hard" else [],
    output:
        pdf=f"{FIGURES}/{{figure}}.pdf",
        png=report(f"{FIGURES}/{{figure}}.png", category="Figures", caption="../report/figure.rst"),
    params:
        args=figure_args,
        stem=lambda wc: f"{FIGURES}/{wc.figure}",
    log:
        f"{LOGS}/figures/{{figure}}.log",
    conda:
        "../envs/msdnet.yaml"
    shell:
        "msdnet figure {wildcards.figure} {params.args} --out {params.stem} > {log} 2>&1"


rule figures:
    input:
        figure_files(),
        f"{RESULTS}/notebooks/overview.ipynb",
