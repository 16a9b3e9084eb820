rule notebook:
    input:
        notebook=ancient("notebooks/overview.py"),
        tables=[ancient(f"{RESULTS}/tables/{t}.csv") for t in PRESET.tables()],
        figures=[ancient(f) for f in figure_files() if f.endswith(".png")],
    output:
        f"{RESULTS}/notebooks/overview.ipynb",
    params:
        spec=PRESET.notebook_spec(),
        results=RESULTS,
        figures=FIGURES_DIR,
        preset=PRESET.name,
    log:
        f"{LOGS}/notebooks/overview.log",
    conda:
        "../envs/msdnet.yaml"
    shell:
        "msdnet notebook {input.notebook:q} --out {output:q} -p results_dir {params.results:q}"
        " -p figures_dir {params.figures:q} -p preset {params.preset:q} > {log:q} 2>&1"
