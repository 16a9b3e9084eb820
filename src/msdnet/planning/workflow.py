"""The job planner: which runs, predictions, tables and figures a preset needs, and what
identifies each of them. Snakemake's rules (``workflow/rules/common.smk``) and ``msdnet preset``
read it; it computes nothing (the tables are built by ``msdnet collect``, :mod:`msdnet.evaluation.tables`).

Layout under ``results/<preset>/`` (keys: :mod:`msdnet.planning.runs`)::

    data/<dataset>-<data key>.json                       msdnet data (the data set, prepared)
    runs/<model>/<run key>/seed<s>/model.pt              msdnet train (+ checkpoint.pt to resume), or
                                                         msdnet import-authors (a model with `checkpoint:`)
    predictions/<name>/<key>/seed<s>/{val,test}.npz      msdnet predict, or msdnet ensemble
    tables/<table>.csv                                   msdnet collect
    tables/.keys/<table>.<hash>.json                     its spec: what msdnet collect builds (job_key)
    notebooks/{overview,budget_explorer}.ipynb (+ .py)   msdnet notebook

Each job is keyed on exactly what determines its output (docs/workflow.md, "What reruns when").
A model with ``checkpoint: PATH`` is imported, not trained (:func:`msdnet.planning.runs.import_key`).
"""

from __future__ import annotations

import copy
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from . import runs as R
from ..core.config import load_yaml
from ..core.errors import ConfigError
from ..figures.registry import FIGURES, TABLES, check_labels, figure_schema
from ..core.io import stable_hash

SCHEMA = Path("workflow") / "schemas" / "config.schema.yaml"
ENSEMBLE_SEED_STRIDE = 1000
SEED_LIMIT = 2**32          # torch.manual_seed and numpy take seeds in [0, 2**32)
SPLITS = ("val", "test")


def _schema(schema_path: Path) -> dict:
    if not schema_path.is_file():
        raise ConfigError(f"{schema_path}: config schema not found; run from the repository root")
    doc = yaml.safe_load(schema_path.read_text(encoding="utf-8"))
    doc["properties"]["figures"] = figure_schema()
    return doc


# The optional checkers of string formats jsonschema imports when they are installed; the
# preset schema uses no "format", so none is needed.
_FORMAT_CHECKERS = ("rfc3987_syntax", "rfc3987", "rfc3986_validator", "rfc3339_validator", "fqdn",
                    "idna", "isoduration", "jsonpointer", "uri_template", "webcolors")


def _jsonschema():
    """jsonschema, imported without its optional format checkers (:data:`_FORMAT_CHECKERS`; no
    schema here uses a format): rfc3987_syntax alone compiles 38 grammars on import, 1.5 s, and
    the others (arrow, ...) add a tenth of a second, paid by every Snakemake process that reads the
    Snakefile, two per job on a cluster."""
    if "jsonschema" not in sys.modules:
        blocked = [m for m in _FORMAT_CHECKERS if m not in sys.modules]
        for m in blocked:
            sys.modules[m] = None  # type: ignore[assignment]  (import fails: the checker is skipped)
        try:
            import jsonschema  # noqa: F401
        finally:
            for m in blocked:
                del sys.modules[m]
    import jsonschema

    return jsonschema


def validate_preset(config: Mapping[str, Any], source: str = "<preset>", schema: Path | None = None) -> dict:
    """Check a preset against the schema (defaults filled in), its names and cross-references,
    and resolve every run (so a bad model config fails here, in one line, before any job runs);
    returns the checked config. :func:`plan` does the same and keeps the resolved runs."""
    return plan(config, source, schema).cfg


def plan(config: Mapping[str, Any], source: str = "<preset>", schema: Path | None = None) -> Preset:
    """The :class:`Preset` of a validated preset (:func:`validate_preset`'s checks), its runs
    resolved once, while validating: what the Snakefile (``workflow/rules/common.smk``) and
    ``msdnet preset`` plan with, so a process validates its preset once."""
    jsonschema = _jsonschema()

    schema_doc = _schema(Path(schema or SCHEMA))
    cfg = dict(config)
    try:
        jsonschema.validate(cfg, schema_doc)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(top level)"
        raise ConfigError(f"{source}: {where}: {exc.message}") from None
    for key, spec in schema_doc["properties"].items():
        if key not in cfg and "default" in spec:
            cfg[key] = spec["default"]
    cfg.setdefault("recipe_set", {})
    cfg.setdefault("model_set", {})
    R.check_name(cfg["preset"], "preset name", source)
    if cfg.get("reference_dataset") is not None:
        R.check_name(cfg["reference_dataset"], "reference_dataset", source)
    for kind in ("models", "ensembles"):
        for name in cfg[kind]:
            R.check_name(name, kind[:-1] + " name", source)
    clash = sorted(set(cfg["models"]) & set(cfg["ensembles"]))
    if clash:
        raise ConfigError(f"{source}: '{clash[0]}' is both a model and an ensemble; rename one")
    for name, members in cfg["ensembles"].items():
        for m in members:
            if m not in cfg["models"]:
                raise ConfigError(f"{source}: ensembles/{name}: unknown member model '{m}'")
            if "checkpoint" in cfg["models"][m]:
                raise ConfigError(f"{source}: ensembles/{name}: '{m}' is imported from a checkpoint "
                                  "(one set of weights); ensembles train their members")
    for name, spec in cfg["models"].items():
        if "checkpoint" in spec and len(spec.get("seeds") or [0]) != 1:
            raise ConfigError(f"{source}: models/{name}: an imported model has one set of weights; "
                              "give it one seed (seeds: [0]) or none")
    if cfg["gpu_slots"] > 1 and cfg["gpu_jobs"] != 1:
        raise ConfigError(f"{source}: gpu_slots {cfg['gpu_slots']} shares one card between jobs, "
                          f"so it needs gpu_jobs: 1 (got {cfg['gpu_jobs']})")
    names = set(cfg["models"]) | set(cfg["ensembles"])
    preset = Preset(cfg, source)
    check_presentation(cfg["figures"], source)
    for fig, name in preset.referenced():
        if name not in names:
            raise ConfigError(f"{source}: figures/{fig}: unknown model or ensemble '{name}' "
                              f"(define it under models: or ensembles:)")
    for name, spec in cfg["models"].items():
        if not Path(spec["config"]).is_file():
            raise ConfigError(f"{source}: models/{name}: config file {spec['config']} does not exist")
    if not Path(cfg["recipe"]).is_file():
        raise ConfigError(f"{source}: recipe: file {cfg['recipe']} does not exist")
    for model, seed in preset.runs_needed():
        if not 0 <= seed < SEED_LIMIT:
            raise ConfigError(f"{source}: models/{model}: seed {seed} is out of range; seeds are "
                              f"0 <= seed < 2**32 (an ensemble's j-th copy trains with seed + "
                              f"{ENSEMBLE_SEED_STRIDE} j)")
    for name in preset.models_needed():
        preset.run_of(name)                        # resolves (and validates) the run
    R.inside_outputs(preset.results, source)
    R.inside_outputs(preset.figures_dir, source)
    return preset


def check_dvc_params(source: str | Path, preset_name: str, params: str | Path = "params.yaml") -> None:
    """Refuse a ``params.yaml`` (the DVC pipeline's parameters) whose ``workflow.configfile`` is
    the preset being planned but whose ``workflow.preset`` is not that preset's name: dvc.yaml
    would record results/<wrong name>/ while Snakemake writes results/<name>/. Checked when
    Snakemake plans (the first thing every DVC stage runs), so before any job runs. A run with
    another preset than params.yaml's (plain ``snakemake --configfile ...``) is not checked."""
    path = Path(params)
    if not path.is_file():
        return
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError:
        raise ConfigError(f"{path}: not valid YAML") from None
    wf = doc.get("workflow") if isinstance(doc, dict) else None
    if not isinstance(wf, dict) or "configfile" not in wf:
        return
    if Path(str(wf["configfile"])).resolve() != Path(source).resolve():
        return
    if wf.get("preset") != preset_name:
        raise ConfigError(f"{path}: workflow.preset is {wf.get('preset')!r} but {wf['configfile']} is "
                          f"preset {preset_name!r}; set both together, e.g. dvc exp run -S "
                          f"workflow.configfile={wf['configfile']} -S workflow.preset={preset_name}")


def check_presentation(figures: Mapping[str, Any], source: str = "<preset>") -> None:
    """What the figures will show, checked before any job runs: every legend label non-empty, at
    most 80 characters, unique within its figure case-insensitively (the same label in two
    panels is one curve) and (when it has a "$")
    mathtext that parses; staircase locations numbers in (0, 1). One-line ConfigError."""
    for fid, section in figures.items():
        labels = [lab for t in FIGURES[fid].tables for lab in t.labels(t.section_of(section))]
        check_labels(labels, f"{source}: figures/{fid}: legend label")
        if fid == "staircase":
            for family, spec in section.items():
                for loc in spec["runs"]:
                    try:
                        ok = 0 < float(loc) < 1
                    except (TypeError, ValueError):
                        ok = False
                    if not ok:
                        raise ConfigError(f"{source}: figures/staircase/{family}/runs: location "
                                          f"{loc!r} is not a number in (0, 1) (the relative depth "
                                          f"of the intermediate classifier)")


@dataclass(frozen=True)
class RunPlan:
    """One model's resolved training configuration (every seed of it)."""

    model: str
    key: str                     # run key: results/<preset>/runs/<model>/<key>/seed<s>/
    dataset: str
    data_key: str
    config: str                  # model YAML
    recipe: str                  # recipe YAML
    overrides: tuple[str, ...]   # --set arguments of msdnet train (without the seed)
    checkpoint: str | None = None  # imported from this file (msdnet import-authors), not trained


@dataclass
class Preset:
    cfg: dict[str, Any]
    source: str = "<preset>"
    _runs: dict[str, RunPlan] = field(default_factory=dict, repr=False)
    # what one planning pass reads and builds once: the YAML files its runs resolve against (the
    # recipe of every run) and the tables' specs (every figure, notebook and key file reads them)
    _files: dict[str, dict] = field(default_factory=dict, repr=False)
    _table_specs: dict[str, dict] = field(default_factory=dict, repr=False)

    # -- names and places ------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.cfg["preset"]

    @property
    def results(self) -> Path:
        return Path("results") / self.name

    @property
    def figures_dir(self) -> Path:
        return Path("figures") / self.name

    @property
    def figures(self) -> dict[str, Any]:
        return self.cfg["figures"]

    def seeds_of(self, model: str) -> list[int]:
        spec = self.cfg["models"][model]
        if "checkpoint" in spec:                      # imported: one set of weights
            return list(spec.get("seeds") or [0])
        return list(spec.get("seeds") or self.cfg["seeds"])

    def imported_models(self) -> list[str]:
        """Models whose weights are given (``checkpoint:``), imported instead of trained."""
        return sorted(m for m, spec in self.cfg["models"].items() if "checkpoint" in spec)

    def trained_models(self) -> list[str]:
        return sorted(m for m in self.cfg["models"] if m not in self.imported_models())

    def seeds_for(self, name: str) -> list[int]:
        """Seeds of a model or an ensemble (ensembles use the preset's seeds)."""
        return self.seeds_of(name) if name in self.cfg["models"] else list(self.cfg["seeds"])

    def ensemble_members(self, name: str, seed: int) -> list[tuple[str, int]]:
        """(model, seed) of every member: the j-th copy of a model trains with seed + 1000 j."""
        seen: dict[str, int] = {}
        out = []
        for m in self.cfg["ensembles"][name]:
            j = seen.get(m, 0)
            seen[m] = j + 1
            out.append((m, seed + ENSEMBLE_SEED_STRIDE * j))
        return out

    # -- what the figures read --------------------------------------------------------------------
    def referenced(self) -> list[tuple[str, str]]:
        """(figure, model-or-ensemble name) for everything the figures draw."""
        return [(fid, n) for fid, section in self.figures.items()
                for t in FIGURES[fid].tables for n in t.names(t.section_of(section))]

    def tables(self) -> list[str]:
        return [t.name for fid in self.figures for t in FIGURES[fid].tables]

    def table_names(self, table: str) -> list[str]:
        fig, spec = TABLES[table]
        return sorted(set(spec.names(spec.section_of(self.figures[fig.id]))))

    def table_sources(self, table: str) -> list[tuple[str, int]]:
        """(name, seed) of every predictions pair a table reads."""
        return [(n, s) for n in self.table_names(table) for s in self.seeds_for(n)]

    def predictions_needed(self) -> list[tuple[str, int]]:
        return sorted({src for t in self.tables() for src in self.table_sources(t)})

    def runs_needed(self) -> list[tuple[str, int]]:
        out = set()
        for name, seed in self.predictions_needed():
            if name in self.cfg["ensembles"]:
                out.update(self.ensemble_members(name, seed))
            else:
                out.add((name, seed))
        return sorted(out)

    def models_needed(self) -> list[str]:
        return sorted({m for m, _ in self.runs_needed()})

    # -- identities -------------------------------------------------------------------------------
    def train_overrides(self, model: str) -> list[str]:
        """``--set`` arguments of msdnet train for a model: recipe then model overrides."""
        spec = self.cfg["models"][model]
        sets = {**self.cfg.get("recipe_set", {}), **spec.get("recipe_set", {})}
        args = [f"{k}={R.yaml_scalar(v)}" for k, v in sets.items()]
        model_sets = {**self.cfg.get("model_set", {}), **spec.get("set", {})}
        args += [f"model.{k}={R.yaml_scalar(v)}" for k, v in model_sets.items()]
        return args

    def run_of(self, model: str) -> RunPlan:
        """The resolved run of a model (cached): its key, data key and training arguments."""
        if model not in self._runs:
            spec = self.cfg["models"][model]
            overrides = self.train_overrides(model)
            try:
                run = R.resolve(spec["config"], self.cfg["recipe"], overrides, load=self._load_yaml)
            except ConfigError as exc:
                raise ConfigError(f"{self.source}: models/{model}: {exc}") from None
            checkpoint = spec.get("checkpoint")
            key = R.run_key(run) if checkpoint is None else R.import_key(checkpoint, run)
            self._runs[model] = RunPlan(model=model, key=key, dataset=run.data.name,
                                        data_key=R.data_key(run), config=spec["config"],
                                        recipe=self.cfg["recipe"], overrides=tuple(overrides),
                                        checkpoint=checkpoint)
        return self._runs[model]

    def _load_yaml(self, path: str | Path) -> dict[str, Any]:
        """``load_yaml`` of a file, read once per Preset (a copy: resolving a run edits it)."""
        if str(path) not in self._files:
            self._files[str(path)] = load_yaml(path)
        return copy.deepcopy(self._files[str(path)])

    def key_of(self, name: str) -> str:
        """Run key of a model, or an ensemble's key (a hash of its members' run keys)."""
        if name in self.cfg["models"]:
            return self.run_of(name).key
        members = [(m, self.run_of(m).key) for m in self.cfg["ensembles"][name]]
        return stable_hash({"ensemble": members})

    def run_dir(self, model: str, seed: int) -> Path:
        return R.run_dir(self.results, model, self.run_of(model).key, seed)

    def model_file(self, model: str, seed: int) -> Path:
        return self.run_dir(model, seed) / "model.pt"

    def predictions_dir(self, name: str, seed: int) -> Path:
        return R.predictions_dir(self.results, name, self.key_of(name), seed)

    def data_summary(self, model: str) -> Path:
        run = self.run_of(model)
        return R.data_summary_path(self.results, run.dataset, run.data_key)

    def data_plans(self) -> dict[str, RunPlan]:
        """One run per data set the preset trains on (its recipe and overrides prepare it)."""
        out: dict[str, RunPlan] = {}
        for m in self.models_needed():
            out.setdefault(f"{self.run_of(m).dataset}-{self.run_of(m).data_key}", self.run_of(m))
        return out

    def table_spec(self, table: str) -> dict[str, Any]:
        """Everything ``msdnet collect`` needs to build a table, and all a table depends on."""
        if table not in self._table_specs:
            fig, spec = TABLES[table]
            sources: dict[str, dict[str, str]] = {}
            for name, seed in self.table_sources(table):
                sources.setdefault(name, {})[str(seed)] = str(self.predictions_dir(name, seed))
            self._table_specs[table] = {"table": table, "figure": fig.id,
                                        "section": spec.section_of(self.figures[fig.id]),
                                        "sources": sources}
        return copy.deepcopy(self._table_specs[table])

    def figure_spec(self, figure: str) -> dict[str, Any]:
        """What a figure depends on besides its tables' files: their specs and the paper's points."""
        return {"figure": figure, "reference_dataset": self.cfg.get("reference_dataset"),
                "tables": [self.table_spec(t.name) for t in FIGURES[figure].tables]}

    def notebook_spec(self, extra: Any = None) -> dict[str, Any]:
        """What the notebooks depend on: every figure's spec (and the notebook rule's ``extra``)."""
        return {"figures": [self.figure_spec(f) for f in self.figures], "extra": extra}

    def table_key(self, table: str) -> Path:
        return R.key_path(self.results / "tables", table, self.table_spec(table))

    def figure_key(self, figure: str) -> Path:
        return R.key_path(self.figures_dir, figure, self.figure_spec(figure))

    def notebook_key(self, extra: Any = None) -> Path:
        return R.key_path(self.results / "notebooks", "notebooks", self.notebook_spec(extra))

    def image_data(self, figure: str) -> Path | None:
        """The data summary whose test images a figure shows (easy-hard), else None."""
        if not FIGURES[figure].needs_images:
            return None
        name = self.table_names(FIGURES[figure].tables[0].name)[0]
        model = name if name in self.cfg["models"] else self.cfg["ensembles"][name][0]
        return self.data_summary(model)


# -- how many jobs share a card (Snakemake resources; workflow/rules/common.smk) -----------------
def gpu_resources(cfg: Mapping[str, Any], local: bool = True) -> dict[str, int]:
    """What each training or prediction job asks the scheduler for: ``gpu: gpu_jobs`` (cards
    of its own) when ``gpu_slots`` is 1, else ``gpu_slot: 1`` (one of ``gpu_slots`` shares of a
    card). Snakemake resources are integers, so a share is a resource of its own.

    Nothing when the preset asks for no GPU (``gpu_jobs: 0``): the Kubernetes executor requests a
    card for any job that names ``gpu``, even with 0. ``local=False`` (a cluster executor: every
    job is its own allocation, which the executor sizes from ``gpu``) always asks for ``gpu``;
    sharing a card there is the profile's business (job groups, docs/workflow.md)."""
    jobs = int(cfg.get("gpu_jobs", 0))
    if jobs == 0:
        return {}
    if int(cfg.get("gpu_slots", 1)) == 1 or not local:
        return {"gpu": jobs}
    return {"gpu_slot": 1}


def gpu_slot_limit(cfg: Mapping[str, Any], cards: int | None, given: int | None = None) -> int | None:
    """The global ``gpu_slot`` limit: ``given`` when the command line sets it
    (``--resources gpu_slot=M``), else ``gpu_slots`` per card of ``--resources gpu=N``; None
    (no limit) when neither is given or the preset does not share cards."""
    slots = int(cfg.get("gpu_slots", 1))
    if slots == 1:
        return None
    if given is not None:
        return given
    return None if cards is None else cards * slots
