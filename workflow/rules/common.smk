# Helpers shared by the rules. The planning lives in msdnet.planning.workflow (which runs, predictions,
# tables and figures a preset needs, and the key of each; torch-free, like all of msdnet.planning);
# the figures in msdnet.figures.registry.
# Every input is ancient(): a job reruns when its key (in its path) or its params change, never
# because a file got a newer modification time (a restore, a `touch`, a `dvc checkout`).
import functools
import re
import shlex
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version

from msdnet.core.errors import MsdnetError
from msdnet.figures.registry import FIGURES, TABLES
from msdnet.planning.notebooks import workflow_plan
from msdnet.planning.runs import write_key
from msdnet.planning.workflow import SPLITS, check_dvc_params, plan

min_version("8.0")

SOURCE = (list(workflow.config_settings.configfiles) or ["config/config.yaml"])[0]
try:
    PRESET = plan(config, str(SOURCE))  # validated once, its runs resolved once
    check_dvc_params(SOURCE, PRESET.name)  # params.yaml's preset name agrees with its configfile
except MsdnetError as exc:
    raise WorkflowError(f"invalid preset: {exc}") from None


include: "gpu.smk"


RESULTS = str(PRESET.results)
FIGURES_DIR = str(PRESET.figures_dir)
LOGS = f"{RESULTS}/logs"
# Repository files that jobs read (the paper's points, the notebooks) are local(): under a default
# storage provider (the Kubernetes profile) they come with each job's source archive, not a bucket.
REFERENCE = "data/paper/reference_points.csv"
# The notebook rule's inputs and arguments (workflow/rules/notebooks.smk) and its key.
NOTEBOOKS = workflow_plan(PRESET, REFERENCE)


def _alternatives(names):
    return "|".join(re.escape(n) for n in sorted(names)) or "^$"


wildcard_constraints:
    keydir="|".join(
        re.escape(d) for d in (f"{RESULTS}/tables", FIGURES_DIR, f"{RESULTS}/notebooks")
    ),
    hash=r"[0-9a-f]{16}",
    model=_alternatives(PRESET.cfg["models"]),
    ensemble=_alternatives(PRESET.cfg["ensembles"]),
    key=r"[0-9a-f]{16}",
    dataset=r"[A-Za-z0-9][A-Za-z0-9_-]*",
    seed=r"\d+",
    table=_alternatives(TABLES),
    figure=_alternatives(FIGURES),


def forced(rule_name):
    """Whether this run forces every job of ``rule_name`` (--forcerun/-R RULE, --forceall).
    Read when the DAG is built (input functions), after Snakemake has set its DAG settings."""
    settings = workflow.dag_settings
    return settings is not None and (settings.forceall or rule_name in settings.forcerun)


def derived(path, rule_name):
    """An input that the jobs of ``rule_name`` write, as ancient() (no modification-time
    reruns); a plain input when this run forces those jobs (e.g. --forcerun table), so that
    their new outputs rerun the jobs that read them (ancient inputs never propagate a rerun)."""
    return path if forced(rule_name) else ancient(path)


def quoted(args):
    return " ".join(shlex.quote(str(a)) for a in args)


def preset_resources(name):
    """Runtime (minutes) and mem_mb of the jobs of one submitted rule, from the preset's
    resources section; a cluster profile's default-resources cover what it leaves out."""
    return PRESET.cfg["resources"].get(name, {})


def data_files():
    return [str(PRESET.data_summary(m)) for m in PRESET.models_needed()]


def predictions(name, seed):
    d = PRESET.predictions_dir(name, int(seed))
    return [str(d / f"{split}.npz") for split in SPLITS]


def planned_run(wildcards):
    """The resolved run of a train/predict job; refuses a key the preset no longer plans."""
    run = PRESET.run_of(wildcards.model)
    if wildcards.key != run.key:
        raise WorkflowError(
            f"{wildcards.model}: run {wildcards.key} is not the one the preset "
            f"plans ({run.key}); ask for the planned target (e.g. `figures`)"
        )
    return run


def planned_ensemble(wildcards):
    if wildcards.key != PRESET.key_of(wildcards.ensemble):
        raise WorkflowError(
            f"{wildcards.ensemble}: ensemble {wildcards.key} is not the one the "
            f"preset plans; ask for the planned target (e.g. `figures`)"
        )
    return PRESET.ensemble_members(wildcards.ensemble, int(wildcards.seed))


def figure_files():
    return [f"{FIGURES_DIR}/{fig}.{ext}" for fig in PRESET.figures for ext in ("pdf", "png")]


def data_plan(wildcards):
    """A run that trains on this data set: its recipe and data overrides prepare it."""
    plans = PRESET.data_plans()
    name = f"{wildcards.dataset}-{wildcards.dkey}"
    if name not in plans:
        raise WorkflowError(f"data set {name} is not one the preset trains on")
    return plans[name]


def figure_args(wildcards, input):
    """Arguments of `msdnet figure`, quoted: its tables, images and the paper's points."""
    spec, args = FIGURES[wildcards.figure], []
    for t in input.tables:
        args += ["--table", t]
    args += ["--key", input.key]  # refuses tables that lack a curve or seed the spec names
    if spec.needs_images:
        args += ["--data", input.data[0]]
        section = PRESET.figures[wildcards.figure]
        args += ["--max-classes", section.get("max_classes", 4)]
    if spec.macs_axis and PRESET.cfg["reference_dataset"]:
        args += ["--reference", REFERENCE, "--dataset", PRESET.cfg["reference_dataset"]]
    return quoted(args)


def key_files():
    """Every key file the preset plans (tables, figures, notebooks)."""
    extra = NOTEBOOKS["explorer_key"]
    return (
        [str(PRESET.table_key(t)) for t in PRESET.tables()]
        + [str(PRESET.figure_key(f)) for f in PRESET.figures]
        + [str(PRESET.notebook_key(extra))]
    )


@functools.cache
def planned_keys():
    """Every key file the preset plans (path) with its spec, computed once."""
    extra = NOTEBOOKS["explorer_key"]
    keys = {str(PRESET.table_key(t)): PRESET.table_spec(t) for t in PRESET.tables()}
    keys |= {str(PRESET.figure_key(f)): PRESET.figure_spec(f) for f in PRESET.figures}
    keys[str(PRESET.notebook_key(extra))] = PRESET.notebook_spec(extra)
    return keys


def planned_key(path):
    """The spec of a key file the preset plans; refuses one it does not plan."""
    keys = planned_keys()
    if path not in keys:
        raise WorkflowError(
            f"{path}: not a key this preset plans; ask for a planned target (e.g. `figures`)"
        )
    return keys[path]


# The report (`snakemake --report report.html`; workflow/report/): one category per figure, its
# registry description as the caption; the tables, the metrics and the notebooks beside them.
# The captions (workflow/report/*.rst, Jinja templates that see the config) read these texts;
# they sit under a key no preset uses, so nothing a job runs depends on them.
config["_report"] = {
    "figures": {fid: spec.description for fid, spec in FIGURES.items()},
    "tables": {name: (fig.id, fig.description) for name, (fig, _) in TABLES.items()},
    "preset": PRESET.name,
}


def report_figure_category(wildcards):
    return f"Figure {wildcards.figure}"


def _quiet_missing_metadata():
    """After `dvc pull` there is no .snakemake metadata: `snakemake --report` would warn once per
    output. One line says so instead (the report then lists the outputs without run times)."""
    import logging

    class _Once(logging.Filter):
        said = False

        def filter(self, record):
            if not str(record.getMessage()).startswith("Missing metadata for file"):
                return True
            if _Once.said:
                return False
            _Once.said = True
            record.msg, record.args = (
                "Some outputs have no Snakemake metadata (a tree restored by `dvc pull`, or "
                "metadata removed): the report lists them without run times; no more such "
                "warnings (docs/workflow.md#the-report).",
                (),
            )
            return True

    logging.getLogger("snakemake.logging").addFilter(_Once())


_quiet_missing_metadata()
