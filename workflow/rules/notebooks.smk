rule notebook:
    input:
        notebook="notebooks/overview.py",
        tables=[f"{RESULTS}/tables/{t}.csv" for t in PRESET.tables()],
        figures=[f for f in figure_files() if f.endswith(".png")],
    output:
        f"{RESULTS}/notebooks/overview.ipynb",
    log:
        f"{LOGS}/notebooks/overview.log",
    shell:
        "msdnet notebook {input.notebook} --out {output} -p results_dir {RESULTS}"
        " -p figures_dir {FIGURES} -p preset {PRESET.name} > {log} 2>&1"
