"""Every figure of the workflow, declared once (as ``msdnet.models.registry`` does for networks).

A figure entry says:

- ``schema``: the JSON schema of its section under ``figures:`` in a preset (what a user writes);
- ``tables``: the tables it draws, each with its row builder (``msdnet.evaluation.tables``, a pure function
  ``build(section, sources) -> DataFrame`` over predictions files) and the models or ensembles
  that table reads (``names(section)``);
- ``draw``: its draw function, ``draw(tables, reference=, title=, options=) -> Figure``
  (``msdnet.figures.<module>``);
- whether it has a MACs axis (then the paper's points are drawn beside the curves) and whether it
  also reads the test images (easy-hard).

The Snakemake rules, ``msdnet collect``, ``msdnet figure`` and the preset schema all read this
module; a new figure is one entry here, one draw function and one table builder. This module
imports neither matplotlib nor torch, so the workflow planner stays fast.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = ["FIGURES", "FigureSpec", "TableSpec", "TABLES", "figure_schema", "resolve"]


@dataclass(frozen=True)
class TableSpec:
    name: str                                   # file name: results/<preset>/tables/<name>.csv
    build: str                                  # "module:function", builder(section, sources)
    names: Callable[[dict], list[str]]          # models / ensembles the table reads
    part: str | None = None                     # the sub-section it is built from (None: all)

    def section_of(self, section: dict) -> dict:
        return section[self.part] if self.part else section


@dataclass(frozen=True)
class FigureSpec:
    id: str
    description: str
    tables: tuple[TableSpec, ...]
    draw: str                                   # "module:function"
    schema: dict[str, Any]
    macs_axis: bool = True                      # draws the paper's points beside the curves
    needs_images: bool = False                  # also reads the test split's images
    options: dict[str, Any] = field(default_factory=dict)   # draw options a preset may set


def resolve(target: str) -> Callable:
    """Import ``module:function``."""
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


# -- schema pieces ------------------------------------------------------------------------------

_NAME = {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9_-]*$"}
_LIST = {"type": "array", "items": _NAME, "minItems": 1}
LABEL_TO_MODEL = {"type": "object", "minProperties": 1, "additionalProperties": _NAME,
                  "description": "legend label (the paper's name) -> model or ensemble name"}
LABEL_TO_MODELS = {"type": "object", "minProperties": 1, "additionalProperties": _LIST,
                   "description": "legend label -> models; several models give the "
                                  "best-on-validation envelope"}


def _as_list(v: str | list[str]) -> list[str]:
    return [v] if isinstance(v, str) else list(v)


def _values(section: dict) -> list[str]:
    return list(section.values())


def _flat(section: dict) -> list[str]:
    return [n for v in section.values() for n in _as_list(v)]


def _budgeted_names(section: dict) -> list[str]:
    return _flat(section.get("dynamic", {})) + _flat(section.get("single", {}))


def _staircase_names(section: dict) -> list[str]:
    return [n for spec in section.values() for n in [spec["baseline"], *spec["runs"].values()]]


# -- the figures --------------------------------------------------------------------------------

_ENTRIES = [
    FigureSpec(
        id="anytime", description="anytime prediction: top-1 % against MACs up to each exit",
        tables=(TableSpec("anytime", "msdnet.evaluation.tables:anytime_rows", _values),),
        draw="msdnet.figures.anytime:draw", schema=LABEL_TO_MODEL),
    FigureSpec(
        id="ablation", description="anytime top-1 % of MSDNet and its ablations",
        tables=(TableSpec("ablation", "msdnet.evaluation.tables:anytime_rows", _values),),
        draw="msdnet.figures.ablation:draw", schema=LABEL_TO_MODEL),
    FigureSpec(
        id="budgeted", description="budgeted batch classification: top-1 % against average MACs",
        tables=(TableSpec("budgeted", "msdnet.evaluation.tables:budgeted_rows", _budgeted_names),),
        draw="msdnet.figures.budgeted:draw",
        schema={"type": "object", "additionalProperties": False, "properties": {
            "costs": {"enum": ["lazy", "full"], "default": "lazy",
                      "description": "MACs of the dynamic curves: 'lazy' (features an earlier exit "
                                     "computed are reused; the published curves fit it) or 'full' "
                                     "(every exit counted alone, as the authors' PyTorch port)"},
            "dynamic": LABEL_TO_MODELS,
            "single": {"type": "object", "additionalProperties": {"oneOf": [_NAME, _LIST]},
                       "description": "legend label -> one network, or several sizes of a "
                                      "family drawn as one line"}}}),
    FigureSpec(
        id="densenet-star", description="DenseNet, DenseNet* and MSDNet: anytime and budgeted",
        tables=(TableSpec("densenet_star_anytime", "msdnet.evaluation.tables:anytime_rows", _values, "anytime"),
                TableSpec("densenet_star_budgeted", "msdnet.evaluation.tables:dynamic_rows", _flat, "budgeted")),
        draw="msdnet.figures.densenet_star:draw",
        schema={"type": "object", "additionalProperties": False, "required": ["anytime", "budgeted"],
                "properties": {"anytime": LABEL_TO_MODEL, "budgeted": LABEL_TO_MODELS}}),
    FigureSpec(
        id="reduction-lazy", description="network reduction and lazy evaluation (budgeted)",
        tables=(TableSpec("reduction_lazy", "msdnet.evaluation.tables:reduction_lazy_rows",
                          lambda s: [n for v in s.values() for n in v["models"]]),),
        draw="msdnet.figures.reduction_lazy:draw",
        schema={"type": "object", "minProperties": 1,
                "description": "label -> {models, costs}; costs 'lazy' counts lazy evaluation, "
                               "'full' does not",
                "additionalProperties": {"type": "object", "additionalProperties": False,
                                         "required": ["models", "costs"],
                                         "properties": {"models": _LIST,
                                                        "costs": {"enum": ["lazy", "full"]}}}}),
    FigureSpec(
        id="staircase", description="a single intermediate classifier at different depths",
        tables=(TableSpec("staircase", "msdnet.evaluation.tables:staircase_rows", _staircase_names),),
        draw="msdnet.figures.staircase:draw", macs_axis=False,
        schema={"type": "object", "minProperties": 1,
                "description": "family -> the network without an intermediate classifier and one "
                               "run per location",
                "additionalProperties": {"type": "object", "additionalProperties": False,
                                         "required": ["baseline", "runs"], "properties": {
                                             "baseline": _NAME,
                                             "runs": {"type": "object", "minProperties": 1,
                                                      "additionalProperties": _NAME,
                                                      "description": "relative depth (0-1) -> model"}}}}),
    FigureSpec(
        id="easy-hard", description="easy and hard test images of one model",
        tables=(TableSpec("easy_hard", "msdnet.evaluation.tables:easy_hard_rows", lambda s: [s["model"]]),),
        draw="msdnet.figures.easy_hard:draw", macs_axis=False, needs_images=True,
        schema={"type": "object", "additionalProperties": False, "required": ["model"],
                "properties": {"model": _NAME,
                               "per_class": {"type": "integer", "minimum": 1, "default": 4},
                               "max_classes": {"type": "integer", "minimum": 1, "default": 4}}}),
    # -- beyond the paper: exit combiners and calibration (docs/method.md) ----------------------
    FigureSpec(
        id="anytime-combiners",
        description="anytime top-1 % against MACs of each exit combiner (softmax, mean, caching, "
                    "product), with and without per-exit temperature scaling",
        tables=(TableSpec("combiners", "msdnet.evaluation.tables:combiners_rows", _values),),
        draw="msdnet.figures.combiners:draw_anytime_combiners", macs_axis=False,
        schema=LABEL_TO_MODEL),
    FigureSpec(
        id="monotonicity",
        description="% of test images whose true-class probability falls by more than epsilon "
                    "between two exits, per combiner",
        tables=(TableSpec("monotonicity", "msdnet.evaluation.tables:monotonicity_rows", _values),),
        draw="msdnet.figures.combiners:draw_monotonicity", macs_axis=False,
        schema=LABEL_TO_MODEL),
    FigureSpec(
        id="calibration",
        description="expected calibration error per exit before and after temperature scaling, "
                    "and reliability diagrams of the first and last exit",
        tables=(TableSpec("calibration", "msdnet.evaluation.tables:calibration_rows", _values),
                TableSpec("reliability", "msdnet.evaluation.tables:reliability_rows", _values)),
        draw="msdnet.figures.combiners:draw_calibration", macs_axis=False,
        schema=LABEL_TO_MODEL),
    FigureSpec(
        id="budgeted-combiners",
        description="budgeted batch top-1 % against average MACs, the paper's thresholds on each "
                    "combiner's confidence",
        tables=(TableSpec("budgeted_combiners", "msdnet.evaluation.tables:budgeted_combiners_rows",
                          _values),),
        draw="msdnet.figures.combiners:draw_budgeted_combiners", macs_axis=False,
        schema=LABEL_TO_MODEL),
]

FIGURES: dict[str, FigureSpec] = {f.id: f for f in _ENTRIES}
TABLES: dict[str, tuple[FigureSpec, TableSpec]] = {t.name: (f, t) for f in _ENTRIES for t in f.tables}


def figure_schema() -> dict[str, Any]:
    """The schema of a preset's ``figures:`` section, from the entries above."""
    return {"type": "object", "additionalProperties": False, "minProperties": 1,
            "description": "the paper's figures this preset draws; leave one out to skip it",
            "properties": {f.id: {**f.schema, "description": f.description} for f in _ENTRIES}}
