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
# # MSDNet reproduction: findings and figures
#
# Which of the paper's findings this preset's tables reproduce, then all seven figures of the
# paper with the numbers behind each (read from `{results_dir}/tables/*.csv`, the files
# `msdnet figure` draws from). The two collapsed cells below are set-up: parameters and helpers.
# Paths, pairing with the `.py` and running it by hand: `notebooks/README.md`.

# %% tags=["parameters"] jupyter={"source_hidden": true}
# Paths are relative to the folder the notebook runs in (results/<preset>/notebooks/). Run from
# the repository root instead, it needs e.g. results_dir = "results/mini", figures_dir = "figures/mini",
# repo_dir = ".".
results_dir = ".."          # results/<preset>
figures_dir = None          # None: <repo_dir>/figures/<name of results_dir>
repo_dir = "../../.."       # the repository: relative data roots (data summaries) resolve from it
preset = "mini"
reference_csv = None        # the paper's points (data/paper/reference_points.csv)
dataset = None              # ... of this data set (the preset's reference_dataset)
data_summary = None         # easy-hard images from this data config (default: the PNG, else results/data/)
data_yaml = None            # older name of data_summary

# %% jupyter={"source_hidden": true}
import io
from pathlib import Path

import pandas as pd
from IPython.display import Image, Markdown, display

from msdnet import figures as F
from msdnet.evaluation.notebooks import find_data_summary, load_test_split, locate, read_data_config
from msdnet.core.errors import MsdnetError
from msdnet.figures import summary

pd.set_option("display.precision", 2)
pd.set_option("display.width", 160)

WHERE = locate(results_dir, repo_dir, figures_dir, preset)
RESULTS, FIGURES, REPO = WHERE["results"], WHERE["figures"], WHERE["repo"]
TABLES = RESULTS / "tables"
print(f"preset {preset}: tables from {TABLES}, figures in {FIGURES}")
if not TABLES.is_dir():
    print(f"no {TABLES} (from {Path.cwd()}): pass results_dir relative to the notebook's folder")


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
    REFERENCE = attempt("the paper's points", F.load_reference, Path(reference_csv), dataset)
    if REFERENCE is not None:
        print(f"the paper's points for {dataset}: {len(REFERENCE)} points, "
              f"{REFERENCE['curve'].nunique()} curves")

# %% [markdown]
# ## Findings
# The paper's findings checked on these tables with fixed rules (the last column), as
# `msdnet findings {results_dir}/tables` prints them; "n/a" where a table is missing.

# %%
from msdnet.evaluation.analysis.findings import all_findings, markdown

FINDINGS = attempt("findings", all_findings, TABLES)
if FINDINGS is not None:
    display(Markdown(markdown(FINDINGS)))

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
    given = data_summary or data_yaml
    if png.exists() and not given:
        display(Image(filename=str(png)))
    else:
        # a data config given, an older results/<preset>/data.yaml, else the data summary the
        # workflow wrote (results/<preset>/data/*.json)
        source = Path(given) if given else RESULTS / "data.yaml"
        if not given and not source.is_file():
            source = find_data_summary(RESULTS)
        if source is not None and Path(source).is_file():
            data = attempt("data config", read_data_config, source)
            loaded = data and attempt("test images", load_test_split, data, REPO, str(source))
            if loaded:
                images, ids, names = loaded
                fig = attempt("easy-hard figure", F.easy_hard_figure, easy_hard, images, ids,
                              class_names=names)
                if fig is not None:
                    show(fig)
        else:
            print(f"no images: pass data_summary (a data config) or draw {png} with `msdnet figure easy-hard`")

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

# %% [markdown]
# ## About this notebook
#
# Each section reads the table its figure is drawn from and redraws the figure with the same
# function (`msdnet.figures`); a missing table is skipped with a printed note, so the notebook
# runs on a partial `results/` too. The workflow executes it into
# `results/<preset>/notebooks/overview.ipynb`, in that folder (`results_dir = ".."`). Optional
# parameters: `reference_csv` + `dataset` draw the paper's points on the MACs figures;
# `data_summary` (a data summary JSON, `msdnet data --out`, or a data YAML) makes the easy-hard
# section redraw from the test images instead of showing `{figures_dir}/easy-hard.png`.
