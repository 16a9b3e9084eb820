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
# # MSDNet reproduction: every figure and the numbers behind it
#
# One notebook for all seven figures of the paper (anytime, budgeted, staircase, ablation,
# easy-hard, densenet-star, reduction-lazy): each section reads the table the figure is drawn
# from (`{results_dir}/tables/*.csv`, the same files `msdnet figure` reads), shows summary
# tables, and redraws the figure with the same function (`msdnet.figures`). A missing table is
# skipped with a printed note, so the notebook runs on a partial `results/` too.
#
# This file is a jupytext "percent" notebook (plain Python, diffs well). To run it:
#
# ```
# jupytext --to ipynb notebooks/overview.py -o overview.ipynb
# papermill overview.ipynb results/mini/notebooks/overview.ipynb \
#     -p results_dir results/mini -p figures_dir figures/mini -p preset mini
# ```
#
# or open it in Jupyter (with jupytext installed) and run all cells. Optional parameters:
# `reference_csv` + `dataset` draw the paper's points on the MACs figures; `data_yaml` (a data
# config) makes the easy-hard section redraw from the test images; without it, it shows
# `{figures_dir}/easy-hard.png`, or redraws from `{results_dir}/data.yaml` when there is no PNG.

# %% tags=["parameters"]
results_dir = "results/mini"
figures_dir = "figures/mini"
preset = "mini"
reference_csv = None
dataset = None
data_yaml = None

# %%
import io
from pathlib import Path

import pandas as pd
from IPython.display import Image, Markdown, display

from msdnet import figures as F
from msdnet.errors import MsdnetError
from msdnet.figures import summary

pd.set_option("display.precision", 2)
pd.set_option("display.width", 160)


def _resolve(path):
    """A path as given, else relative to the repository root (when run from notebooks/)."""
    p = Path(path)
    if not p.exists() and not p.is_absolute() and (Path("..") / p).exists():
        return Path("..") / p
    return p


RESULTS, FIGURES = _resolve(results_dir), _resolve(figures_dir)
TABLES = RESULTS / "tables"
print(f"preset {preset}: tables from {TABLES}, figures in {FIGURES}")


def table(name):
    """``{results_dir}/tables/{name}.csv``, or None (with a note) when missing or unreadable."""
    path = TABLES / f"{name}.csv"
    try:
        return F.read_table(path, f"{name} table")
    except MsdnetError as exc:
        print(f"skipped: {exc}")
        return None


def show(fig):
    """Display a figure as PNG (independent of the notebook's matplotlib backend)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    display(Image(data=buf.getvalue()))


def attempt(what, fn, *args, **kwargs):
    """Run one summary or figure; a bad table is a printed note, not a crash."""
    try:
        return fn(*args, **kwargs)
    except MsdnetError as exc:
        print(f"skipped {what}: {exc}")
        return None


REFERENCE = None
if reference_csv and dataset:
    REFERENCE = attempt("the paper's points", F.load_reference, _resolve(reference_csv), dataset)
    if REFERENCE is not None:
        print(f"the paper's points for {dataset}: {len(REFERENCE)} points, "
              f"{REFERENCE['curve'].nunique()} curves")

# %% [markdown]
# ## Anytime prediction
# Accuracy of each exit against the MACs spent up to it (mean ± std over seeds).

# %%
anytime = table("anytime")
if anytime is not None:
    display(attempt("anytime summary", summary.anytime_summary, anytime))
    budgets = summary.common_budgets(anytime, x="macs")
    display(Markdown("Best accuracy (%) of an exit within each budget (MACs per image):"))
    display(attempt("anytime budgets", summary.anytime_at_budgets, anytime, budgets))
    fig = attempt("anytime figure", F.anytime_figure, anytime, reference=None, title=f"Anytime ({preset})")
    if fig is not None:
        show(fig)

# %% [markdown]
# ## Budgeted batch classification
# Accuracy against the average MACs per test image; dynamic curves averaged over seeds on a
# common MACs grid; single networks as points. The paper's points, when given, are dashed with
# hollow markers.

# %%
budgeted = table("budgeted")
if budgeted is not None:
    display(attempt("budgeted summary", summary.budgeted_summary, budgeted))
    budgets = summary.common_budgets(budgeted)
    display(Markdown("Accuracy (%) at each average budget (MACs per image), interpolated:"))
    display(attempt("budgeted budgets", summary.budgeted_at_budgets, budgeted, budgets))
    fig = attempt("budgeted figure", F.budgeted_figure, budgeted, reference=REFERENCE,
                  title=f"Budgeted batch ({preset})")
    if fig is not None:
        show(fig)

# %% [markdown]
# ## Staircase: one intermediate classifier at different depths
# Ratios (1.0 = equal accuracy), mean over seeds.

# %%
staircase = table("staircase")
if staircase is not None:
    if {"family", "location", "metric", "mean"} <= set(staircase.columns):
        display(staircase.pivot_table(index=["metric", "location"], columns="family", values="mean"))
    fig = attempt("staircase figure", F.staircase_figure, staircase)
    if fig is not None:
        show(fig)

# %% [markdown]
# ## Ablation of MSDNet (anytime)

# %%
ablation = table("ablation")
if ablation is not None:
    display(attempt("ablation summary", summary.anytime_summary, ablation))
    fig = attempt("ablation figure", F.ablation_figure, ablation)
    if fig is not None:
        show(fig)

# %% [markdown]
# ## Easy and hard images
# "easy": right at the first exit and confident enough to leave there; "hard": only the last
# exit is right.

# %%
easy_hard = table("easy_hard")
if easy_hard is not None:
    if {"label", "kind"} <= set(easy_hard.columns):
        display(easy_hard.groupby(["label", "kind"]).size().unstack(fill_value=0))
    png = FIGURES / "easy-hard.png"
    data_config = _resolve(data_yaml) if data_yaml else RESULTS / "data.yaml"
    if png.exists() and not data_yaml:
        display(Image(filename=str(png)))
    elif data_config.is_file():
        loaded = attempt("test images", F.load_test_images, data_config)
        if loaded is not None:
            images, ids, names = loaded
            fig = attempt("easy-hard figure", F.easy_hard_figure, easy_hard, images, ids,
                          class_names=names)
            if fig is not None:
                show(fig)
    else:
        print(f"no images: pass data_yaml (a data config) or draw {png} with `msdnet figure easy-hard`")

# %% [markdown]
# ## DenseNet vs DenseNet* vs MSDNet

# %%
star_anytime, star_budgeted = table("densenet_star_anytime"), table("densenet_star_budgeted")
if star_anytime is not None:
    display(attempt("densenet-star anytime summary", summary.anytime_summary, star_anytime))
if star_budgeted is not None:
    display(attempt("densenet-star budgeted summary", summary.budgeted_summary, star_budgeted))
if star_anytime is not None and star_budgeted is not None:
    fig = attempt("densenet-star figure", F.densenet_star_figure, star_anytime, star_budgeted)
    if fig is not None:
        show(fig)

# %% [markdown]
# ## Network reduction and lazy evaluation (budgeted)

# %%
reduction_lazy = table("reduction_lazy")
if reduction_lazy is not None:
    display(attempt("reduction-lazy summary", summary.budgeted_summary, reduction_lazy))
    budgets = summary.common_budgets(reduction_lazy)
    display(attempt("reduction-lazy budgets", summary.budgeted_at_budgets, reduction_lazy, budgets))
    fig = attempt("reduction-lazy figure", F.reduction_lazy_figure, reduction_lazy)
    if fig is not None:
        show(fig)

# %% [markdown]
# ## Figures written by the workflow

# %%
written = sorted(FIGURES.glob("*.png")) if FIGURES.is_dir() else []
print("\n".join(str(p) for p in written) if written else f"no figures in {FIGURES} yet")
