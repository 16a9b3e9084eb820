"""What the workflow's notebook rule passes (``workflow/rules/notebooks.smk``): which model the
budget explorer shows, the notebooks' inputs and their ``msdnet notebook`` arguments, from a
:class:`msdnet.planning.workflow.Preset`. Torch-free, as all of planning.
"""

from __future__ import annotations

from typing import Any


def explorer_source(preset) -> tuple[str | None, int | None]:
    """(name, seed) the budget explorer shows for a ``msdnet.planning.workflow.Preset``: the middle model of
    the budgeted figure's MSDNet curve (msdnet for mini and tiny, msdnet-b6 for CIFAR), else
    msdnet, else the first planned MSDNet predictions, else any; (None, None) without any."""
    needed = preset.predictions_needed()
    names = [n for n, _ in needed]
    candidates = []
    budgeted = preset.figures.get("budgeted")
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


def workflow_plan(preset, reference_csv: str) -> dict[str, Any]:
    """The notebook rule's inputs and arguments for a preset (paths relative to the repository
    root, where Snakemake runs; msdnet notebook makes them relative to the notebooks' folder)."""
    import json
    import shlex

    def quoted(args):
        return " ".join(shlex.quote(str(a)) for a in args)

    results, name = str(preset.results), json.dumps(preset.name)
    ref_dataset = preset.cfg.get("reference_dataset")
    overview = ["--path", "results_dir", results, "--path", "figures_dir", str(preset.figures_dir),
                "--path", "repo_dir", ".", "-p", "preset", name]
    if ref_dataset:
        overview += ["--path", "reference_csv", reference_csv, "-p", "dataset", json.dumps(ref_dataset)]
    explorer = ["--path", "results_dir", results, "--path", "repo_dir", ".", "-p", "preset", name]
    model, seed = explorer_source(preset)
    inputs, key = [], "none"
    if model is not None:
        pred_dir = preset.predictions_dir(model, seed)
        member = model if model in preset.cfg["models"] else preset.cfg["ensembles"][model][0]
        summary = str(preset.data_summary(member))
        explorer += ["-p", "model", json.dumps(model), "-p", "seed", str(seed),
                     "--path", "predictions_dir", str(pred_dir), "--path", "data_summary", summary]
        inputs = [str(pred_dir / "val.npz"), str(pred_dir / "test.npz"), summary]
        key = f"{model}/{preset.key_of(model)}/seed{seed}"
    return {"overview_args": quoted(overview), "explorer_args": quoted(explorer),
            "reference": [reference_csv] if ref_dataset else [], "explorer_inputs": inputs,
            "explorer_key": key}
