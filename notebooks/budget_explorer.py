# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Budget explorer: one MSDNet at one computational budget
#
# Budgeted batch classification (docs/method.md, "budgeted thresholds"): the confidence
# thresholds of the exits are fitted on the validation split so that the average cost per image
# stays within a budget (`BudgetedEvaluator(val, test).at_budget(budget)`), then applied to the
# test split. Pick a budget and see
#
# 1. the accuracy at that budget, on the model's budgeted curve,
# 2. the share of test images leaving at each exit,
# 3. a few test images that left at each exit (easy images leave early, hard ones late).
#
# The workflow executes this notebook into `results/<preset>/notebooks/budget_explorer.ipynb`,
# running it in that folder: its paths are relative to it (`results_dir = ".."`). Browse it
# with `make lab`; change `budget` in the parameters cell and run all cells, or move the slider
# at the end (ipywidgets, installed with the package). The `.ipynb` is paired with
# `budget_explorer.py` beside it (jupytext: saving in JupyterLab updates both; `jupytext --sync`
# from a shell); the source of truth is `notebooks/budget_explorer.py` in the repository. By hand:
#
# ```
# msdnet notebook notebooks/budget_explorer.py --out results/mini/notebooks/budget_explorer.ipynb \
#     --path results_dir results/mini --path repo_dir . -p model msdnet -p budget 2.5e6
# ```

# %% tags=["parameters"]
# Paths are relative to the folder the notebook runs in (results/<preset>/notebooks/).
results_dir = ".."          # results/<preset>
repo_dir = "../../.."       # the repository: relative data roots (data summaries) resolve from it
preset = "mini"
model = "msdnet"            # a model (or ensemble) of the preset with early exits
seed = 0
predictions_dir = None      # None: results_dir/predictions/<model>/<key>/seed<seed>/ (the newest key)
data_summary = None         # None: the summary in results_dir/data/ of the predictions' data
budget = None               # average MACs per test image; None: the median MACs of the model's curve
costs = "lazy"              # "lazy" (features reused between exits, as the budgeted figure) or "full"
confidence = "max_prob"     # exit confidence: max_prob, entropy or margin
per_exit = 8                # sample images shown per exit

# %%
import io
import math
from pathlib import Path

import numpy as np
import pandas as pd
from IPython.display import Image, display
from matplotlib.figure import Figure

from msdnet.evaluation.analysis.budgeted import BudgetedEvaluator, assign_exits
from msdnet.evaluation.analysis.common import exit_scores
from msdnet.evaluation.notebooks import find_data_summary, find_predictions, load_test_split, locate, read_data_config
from msdnet.core.errors import MsdnetError
from msdnet.figures import style
from msdnet.evaluation.tables import Sources

pd.set_option("display.precision", 2)
WHERE = locate(results_dir, repo_dir, None, preset)
RESULTS, REPO = WHERE["results"], WHERE["repo"]


def show(fig):
    """Display a figure as PNG (independent of the notebook's matplotlib backend)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    display(Image(data=buf.getvalue()))


def macs(x):
    """MACs in MMACs, for the text: "2.79 MMACs"."""
    return f"{x / 1e6:.3g} MMACs"


def mmacs(values):
    """MACs as MMACs, for the tables."""
    return np.asarray(values, dtype=float) / 1e6


PRED_DIR = find_predictions(RESULTS, model, seed) if predictions_dir is None else predictions_dir
EV = VAL = TEST = CURVE = None
if PRED_DIR is None:
    print(f"skipped: no predictions of {model} (seed {seed}) under {RESULTS / 'predictions'} "
          f"(relative to this notebook's folder); run the workflow, or set results_dir / predictions_dir")
else:
    try:
        src = Sources({model: {seed: PRED_DIR}})
        VAL, TEST = src.load(model, seed, "val", costs), src.load(model, seed, "test", costs)
        EV = BudgetedEvaluator(VAL, TEST, confidence, model=model,
                               val_name=f"{PRED_DIR}/val.npz", test_name=f"{PRED_DIR}/test.npz")
        CURVE = EV.sweep()
    except MsdnetError as exc:
        print(f"skipped: {exc}")
        EV = None
if EV is not None:
    costs_used = "lazy" if costs == "lazy" and "exit_macs_lazy" in TEST.meta else "full"
    print(f"{model} (seed {seed}) from {PRED_DIR}: {EV.n_exits} exits, {len(VAL)} validation and "
          f"{len(TEST)} test images, {costs_used} costs")
    display(pd.DataFrame({"exit": np.arange(1, EV.n_exits + 1), "MMACs": mmacs(EV.macs),
                          "test top-1 %": 100.0 * exit_scores(TEST, confidence)[1].mean(axis=1)}
                         ).set_index("exit").round(2))
    curve_macs = np.array([pt.avg_macs for pt in CURVE])
    BUDGET = float(np.median(curve_macs)) if budget is None else float(budget)
    print(f"budget: {macs(BUDGET)} per image"
          + (" (the median MACs of the curve's points)" if budget is None else ""))

# %% [markdown]
# ## The network itself
# The predictions above are all the curves need. The trained network is the run's `model.pt`
# (`results/<preset>/runs/<model>/<key>/seed<seed>/`); `msdnet.load_model` gives it back, in
# eval mode, its forward returning one logits tensor per exit. Here: its MACs per exit.

# %%
import msdnet
from msdnet.models.cost import count_costs

CHECKPOINT = (Path(RESULTS) / "runs" / model / Path(PRED_DIR).parent.name / f"seed{seed}" / "model.pt"
              if PRED_DIR is not None else None)
if CHECKPOINT is not None and CHECKPOINT.is_file():
    NET = msdnet.load_model(CHECKPOINT)
    full, lazy = count_costs(NET), count_costs(NET, lazy=True)
    print(f"{CHECKPOINT}: {type(NET).__name__}, {NET.num_exits} exits, {full[-1].params:,} parameters")
    display(pd.DataFrame({"exit": np.arange(1, NET.num_exits + 1),
                          "MMACs": mmacs([c.macs for c in full]),
                          "MMACs, lazy": mmacs([c.macs for c in lazy])}).set_index("exit").round(3))
else:
    print(f"no checkpoint of {model} (seed {seed}) at {CHECKPOINT}: only its predictions are read "
          "(an ensemble has none of its own)")

# %% [markdown]
# ## Accuracy at the budget
# The thresholds whose validation cost is the largest within the budget; their test accuracy
# and cost (the test cost can land slightly above the budget: the thresholds are fitted on
# validation images). The curve is the model's sweep over the exit-share parameter p.

# %%
IMAGES = None


def report(budget_macs):
    """The point at a budget: a summary table and the curve with the point on it; returns it."""
    try:
        pt = EV.at_budget(budget_macs)
    except MsdnetError as exc:
        print(f"skipped: {exc}")
        return None
    last = 100.0 * exit_scores(TEST, confidence)[1][-1].mean()
    print(f"at {macs(budget_macs)} per image: test accuracy {pt.accuracy:.2f}% for "
          f"{macs(pt.avg_macs)} per test image (the last exit alone: {last:.2f}% for "
          f"{macs(EV.macs[-1])})")
    display(pd.DataFrame(
        {"top-1 %": [pt.accuracy, pt.val_accuracy, last],
         "MMACs per image": mmacs([pt.avg_macs, pt.val_avg_macs, EV.macs[-1]]),
         "exit shares (%)": [" / ".join(f"{100 * f:.0f}" for f in fr)
                             for fr in (pt.exit_fractions, pt.val_exit_fractions,
                                        np.eye(EV.n_exits)[-1])]},
        index=[f"test, at the budget (p = {pt.p:.3g})", "validation, at the budget",
               "test, last exit alone"]).round(2))
    with style.theme():
        fig = Figure(figsize=(11, 3.8), layout="constrained")
        ax_curve, ax_share = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.2, 1]})
        ordered = sorted(CURVE, key=lambda q: q.avg_macs)
        ax_curve.plot([q.avg_macs for q in ordered], [q.accuracy for q in ordered], "-o", ms=3,
                      color=style.colour("MSDNet"), label=f"{model}: budgeted curve")
        ax_curve.axvline(budget_macs, color="0.5", ls="--", lw=1, label="budget")
        ax_curve.plot([pt.avg_macs], [pt.accuracy], "*", ms=14, color="crimson",
                      label=f"at the budget: {pt.accuracy:.1f}%")
        style.macs_axis(ax_curve, "average MACs per test image")
        style.accuracy_axis(ax_curve)
        ax_curve.legend(loc="lower right", fontsize=8)
        exits = np.arange(1, EV.n_exits + 1)
        ax_share.bar(exits - 0.2, 100 * pt.exit_fractions, width=0.4, label="test")
        ax_share.bar(exits + 0.2, 100 * pt.val_exit_fractions, width=0.4, alpha=0.5, label="validation")
        for k, f in zip(exits, pt.exit_fractions):
            ax_share.annotate(f"{100 * f:.0f}%", (k - 0.2, 100 * f), ha="center", va="bottom", fontsize=8)
        ax_share.set_xticks(exits, [f"exit {k}\n{macs(m)}" for k, m in zip(exits, EV.macs)], fontsize=8)
        ax_share.set_ylabel("images leaving here (%)")
        ax_share.set_title("exit shares", fontsize=10)
        ax_share.legend(fontsize=8)
        fig.suptitle(f"{model} at {macs(budget_macs)} per image ({preset})")
    show(fig)
    return pt


POINT = report(BUDGET) if EV is not None else None

# %% [markdown]
# ## Test images by the exit they left at
# For each exit, test images that left there at this budget (a fixed random draw; a red title
# is a wrong answer): the early exits take the easy images, the last exit the rest.

# %%
def load_images():
    """(images, ids, class names) of the predictions' test split, or None (with a note)."""
    data = TEST.meta.get("data") if isinstance(TEST.meta, dict) else None
    path = data_summary if data_summary is not None else find_data_summary(
        RESULTS, data if isinstance(data, dict) else None)
    try:
        if path is not None:
            config, where = read_data_config(path), str(path)
        elif isinstance(data, dict):
            config, where = data, f"{PRED_DIR}/test.npz (meta: data)"
        else:
            print(f"skipped: no data summary under {RESULTS / 'data'} and no data config in the predictions")
            return None
        print(f"test images from {where}")
        return load_test_split(config, REPO, where)
    except MsdnetError as exc:
        print(f"skipped: {exc}")
        return None


def exit_grid(pt, loaded, n=per_exit, seed=0):
    """One row per exit: up to n test images that left there, titled with their label."""
    images, ids, names = loaded
    conf, correct = exit_scores(TEST, confidence)
    left = assign_exits(conf, pt.thresholds)
    preds = TEST.logits.argmax(axis=2)
    where = {int(i): j for j, i in enumerate(np.asarray(ids))}
    rng = np.random.default_rng(seed)
    name = (lambda c: str(names[c]) if names is not None and c < len(names) else f"class {c}")
    with style.theme():
        fig = Figure(figsize=(1.2 * n + 1.4, 1.45 * EV.n_exits + 0.6), layout="constrained")
        axes = fig.subplots(EV.n_exits, n, squeeze=False)
        for k in range(EV.n_exits):
            here = np.flatnonzero(left == k)
            pick = np.sort(rng.choice(here, size=min(n, len(here)), replace=False)) if len(here) else here
            acc = 100.0 * correct[k, here].mean() if len(here) else math.nan
            for c in range(n):
                ax = axes[k][c]
                ax.set_xticks([])
                ax.set_yticks([])
                ax.grid(False)
                for spine in ax.spines.values():
                    spine.set_visible(False)
                if c == 0:
                    ax.set_ylabel(f"exit {k + 1}\n{len(here)} images\n{acc:.0f}% right" if len(here)
                                  else f"exit {k + 1}\nno image", fontsize=8)
                if c >= len(pick):
                    continue
                i = int(pick[c])
                sid = int(TEST.sample_ids[i])
                if sid not in where:
                    raise MsdnetError(f"sample_id {sid} is not in the test split's ids: the data config "
                                      "is not the one the predictions were made on")
                img = np.asarray(images[where[sid]])
                img = img[0] if img.shape[0] == 1 else np.transpose(img[:3], (1, 2, 0))
                ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=255,
                          interpolation="nearest")
                label, guess = int(TEST.labels[i]), int(preds[k, i])
                title = name(label) if guess == label else f"{name(label)} (said {name(guess)})"
                ax.set_title(title, fontsize=7, color="black" if guess == label else "crimson")
        fig.suptitle(f"test images by exit at {macs(pt.budget)} per image")
    return fig


if POINT is not None:
    IMAGES = load_images()
    if IMAGES is not None:
        try:
            show(exit_grid(POINT, IMAGES))
        except MsdnetError as exc:
            print(f"skipped: {exc}")

# %% [markdown]
# ## Try another budget
# A slider (ipywidgets, installed with the package) re-runs the sections above for any budget
# between the first and the last exit's cost, in MMACs per image; without ipywidgets, change
# `budget` in the parameters cell and run all cells.

# %%
try:
    import ipywidgets as widgets
except ImportError:
    widgets = None
if EV is None:
    print("skipped: no predictions loaded")
elif EV.n_exits < 2:
    print(f"{model} has one exit: every budget gives the same point")
elif widgets is None:
    print(f"ipywidgets is not installed: set budget in the parameters cell "
          f"(in MACs, between {EV.macs[0]:.4g} and {EV.macs[-1]:.4g}) and run all cells")
else:
    def explore(budget_mmacs):
        pt = report(budget_mmacs * 1e6)
        if pt is not None and IMAGES is not None:
            show(exit_grid(pt, IMAGES))

    lo, hi = float(EV.macs[0]) / 1e6, float(EV.macs[-1]) / 1e6
    slider = widgets.FloatSlider(value=min(max(BUDGET / 1e6, lo), hi), min=lo, max=hi,
                                 step=(hi - lo) / 200, readout_format=".4g",
                                 description="MMACs", continuous_update=False,
                                 layout=widgets.Layout(width="80%"))
    display(widgets.interactive(explore, budget_mmacs=slider))
