rule figure:
    input:
        tables=figure_tables,
        data=lambda wc: [f"{RESULTS}/data.yaml"] if wc.figure == "easy-hard" else [],
    output:
        pdf=f"{FIGURES}/{{figure}}.pdf",
        png=report(f"{FIGURES}/{{figure}}.png", category="Figures", caption="../report/figure.rst"),
    params:
        args=figure_args,
    log:
        f"{LOGS}/figures/{{figure}}.log",
    shell:
        "msdnet figure {wildcards.figure} {params.args} --out {FIGURES}/{wildcards.figure} > {log} 2>&1"


rule figures:
    input:
        figure_files(),
        f"{RESULTS}/notebooks/overview.ipynb",
