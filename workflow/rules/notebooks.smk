# The executed notebooks of a preset, in results/<preset>/notebooks/ (browse them with `make lab`):
#   overview.ipynb         every figure and the numbers behind it (notebooks/overview.py)
#   budget_explorer.ipynb  one MSDNet at one budget: accuracy, exit shares, images per exit
#                          (notebooks/budget_explorer.py)
# msdnet notebook runs each one in that folder and passes the paths relative to it (--path), so
# an executed notebook re-runs as it is when opened there; each .ipynb is paired with a jupytext
# .py beside it (formats ipynb,py:percent; `jupytext --sync` keeps them in step).


def explorer_source():
    """(name, seed) the budget explorer shows: the middle model of the budgeted figure's MSDNet
    curve (msdnet for mini and tiny, msdnet-b6 for CIFAR), else msdnet, else the first planned
    MSDNet predictions, else any; (None, None) when the preset plans no predictions."""
    needed = PRESET.predictions_needed()
    names = [n for n, _ in needed]
    candidates = []
    budgeted = PRESET.figures.get("budgeted")
    dynamic = budgeted.get("dynamic") if isinstance(budgeted, dict) else None
    for label, models in (dynamic or {}).items():
        models = [models] if isinstance(models, str) else list(models or [])
        if str(label).startswith("MSDNet") and models:
            candidates.append(models[len(models) // 2])
    candidates += ["msdnet"] + [n for n in names if n.startswith("msdnet")] + names
    for name in candidates:
        seeds = sorted(s for n, s in needed if n == name)
        if seeds:
            return name, seeds[0]
    return None, None


EXPLORER_NAME, EXPLORER_SEED = explorer_source()


def explorer_data():
    """The data summary of the explorer's predictions (an ensemble: of its first member)."""
    if EXPLORER_NAME is None:
        return None
    model = EXPLORER_NAME if EXPLORER_NAME in PRESET.cfg["models"] else PRESET.cfg["ensembles"][EXPLORER_NAME][0]
    return str(PRESET.data_summary(model))


def overview_args():
    args = ["--path", "results_dir", RESULTS, "--path", "figures_dir", FIGURES_DIR,
            "--path", "repo_dir", ".", "-p", "preset", json.dumps(PRESET.name)]
    if PRESET.cfg.get("reference_dataset"):
        args += ["--path", "reference_csv", REFERENCE,
                 "-p", "dataset", json.dumps(PRESET.cfg["reference_dataset"])]
    return quoted(args)


def explorer_args():
    args = ["--path", "results_dir", RESULTS, "--path", "repo_dir", ".",
            "-p", "preset", json.dumps(PRESET.name)]
    if EXPLORER_NAME is not None:
        args += ["-p", "model", json.dumps(EXPLORER_NAME), "-p", "seed", str(EXPLORER_SEED),
                 "--path", "predictions_dir", str(PRESET.predictions_dir(EXPLORER_NAME, EXPLORER_SEED)),
                 "--path", "data_summary", explorer_data()]
    return quoted(args)


rule notebook:
    input:
        notebook=ancient("notebooks/overview.py"),
        explorer=ancient("notebooks/budget_explorer.py"),
        tables=[ancient(f"{RESULTS}/tables/{t}.csv") for t in PRESET.tables()],
        figures=[ancient(f) for f in figure_files() if f.endswith(".png")],
        reference=[ancient(REFERENCE)] if PRESET.cfg.get("reference_dataset") else [],
        predictions=[ancient(p) for p in predictions(EXPLORER_NAME, EXPLORER_SEED)] if EXPLORER_NAME else [],
        data=[ancient(explorer_data())] if EXPLORER_NAME else [],
    output:
        overview=f"{RESULTS}/notebooks/overview.ipynb",
        overview_py=f"{RESULTS}/notebooks/overview.py",
        explorer=f"{RESULTS}/notebooks/budget_explorer.ipynb",
        explorer_py=f"{RESULTS}/notebooks/budget_explorer.py",
    params:
        spec=PRESET.notebook_spec(),
        explorer=(f"{EXPLORER_NAME}/{PRESET.key_of(EXPLORER_NAME)}/seed{EXPLORER_SEED}"
                  if EXPLORER_NAME else "none"),
        overview_args=overview_args(),
        explorer_args=explorer_args(),
    log:
        overview=f"{LOGS}/notebooks/overview.log",
        explorer=f"{LOGS}/notebooks/budget_explorer.log",
    conda:
        "../envs/msdnet.yaml"
    shell:
        "msdnet notebook {input.notebook:q} --out {output.overview:q} {params.overview_args}"
        " > {log.overview:q} 2>&1"
        " && msdnet notebook {input.explorer:q} --out {output.explorer:q} {params.explorer_args}"
        " > {log.explorer:q} 2>&1"
