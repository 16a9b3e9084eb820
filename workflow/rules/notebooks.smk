rule notebook:
    input:
        notebook="notebooks/overview.py",
        tables=[f"{RESULTS}/tables/{t}.csv" for t in PRESET.tables()],
        figures=[f for f in figure_files() if f.endswith(".png")],
    output:
        f"{RESULTS}/notebooks/overview.ipynb",
    params:
        results=lambda wc, output: Path(output[0]).parents[1],
        figures=lambda wc, input: Path(input.figures[0]).parent,
        preset=PRESET.name,
    log:
        f"{LOGS}/notebooks/overview.log",
    conda:
        "../envs/msdnet.yaml"
    shell:
        "msdnet notebook {input.notebook} --out {output} -p results_dir {params.results}"
        " -p figures_dir {params.figures} -p preset {params.preset} > {log} 2>&1"
