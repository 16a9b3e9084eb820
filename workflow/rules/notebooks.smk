# The executed notebooks of a preset, in results/<preset>/notebooks/ (browse them with `make lab`):
#   overview.ipynb         every figure and the numbers behind it (notebooks/overview.py)
#   budget_explorer.ipynb  one MSDNet at one budget: accuracy, exit shares, images per exit
#                          (notebooks/budget_explorer.py)
# msdnet notebook runs each one in that folder and passes the paths relative to it (--path), so
# an executed notebook re-runs as it is when opened there; each .ipynb is paired with a jupytext
# .py beside it (formats ipynb,py:percent; `jupytext --sync` keeps them in step). Which model the
# explorer shows and the arguments: msdnet.planning.notebooks.workflow_plan (NOTEBOOKS, common.smk).


rule notebook:
    input:
        notebook=ancient(local("notebooks/overview.py")),
        explorer=ancient(local("notebooks/budget_explorer.py")),
        tables=lambda wc: [derived(f"{RESULTS}/tables/{t}.csv", "table") for t in PRESET.tables()],
        figures=lambda wc: [derived(f, "figure") for f in figure_files() if f.endswith(".png")],
        key=ancient(str(PRESET.notebook_key(NOTEBOOKS["explorer_key"]))),
        # the figures' key files, for the same reason as a figure's table_keys (figures.smk)
        figure_keys=[ancient(str(PRESET.figure_key(f))) for f in PRESET.figures],
        reference=[ancient(local(f)) for f in NOTEBOOKS["reference"]],
        predictions=[ancient(f) for f in NOTEBOOKS["explorer_inputs"]],
    output:
        # update(): a failed run keeps the previous notebooks (analyze.smk, rule table)
        overview=update(
            report(
                f"{RESULTS}/notebooks/overview.ipynb",
                category="Notebooks",
                caption="../report/notebook.rst",
                labels={"notebook": "overview"},
            )
        ),
        overview_py=update(f"{RESULTS}/notebooks/overview.py"),
        explorer=update(
            report(
                f"{RESULTS}/notebooks/budget_explorer.ipynb",
                category="Notebooks",
                caption="../report/notebook.rst",
                labels={"notebook": "budget explorer"},
            )
        ),
        explorer_py=update(f"{RESULTS}/notebooks/budget_explorer.py"),
    log:
        overview=f"{LOGS}/notebooks/overview.log",
        explorer=f"{LOGS}/notebooks/budget_explorer.log",
    conda:
        "../envs/msdnet.yaml"
    resources:
        **preset_resources("notebook"),
    params:
        explorer=NOTEBOOKS["explorer_key"],
        overview_args=NOTEBOOKS["overview_args"],
        explorer_args=NOTEBOOKS["explorer_args"],
    shell:
        "msdnet notebook {input.notebook:q} --out {output.overview:q} {params.overview_args}"
        " > {log.overview:q} 2>&1"
        " && msdnet notebook {input.explorer:q} --out {output.explorer:q} {params.explorer_args}"
        " > {log.explorer:q} 2>&1"
