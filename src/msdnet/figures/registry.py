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

from ..core.errors import ConfigError

__all__ = ["FIGURES", "FigureSpec", "TableSpec", "TABLES", "check_labels", "display_text",
           "figure_schema", "label_problem", "resolve"]

MAX_LABEL = 80          # characters of a legend label


def display_text(label: str) -> str:
    """The text a legend shows for ``label``: "^MC" as a mathtext superscript."""
    return str(label).replace("^MC", r"$^{MC}$")


def label_problem(label: object) -> str | None:
    """Why ``label`` cannot be a legend label (empty, longer than :data:`MAX_LABEL`, mathtext
    that does not parse), or None. matplotlib's mathtext parser is imported only for a label
    with a "$" (planning a preset stays matplotlib-free otherwise)."""
    if not isinstance(label, str) or not label.strip():
        return "is empty"
    if len(label) > MAX_LABEL:
        return f"is {len(label)} characters long (at most {MAX_LABEL})"
    if "$" in label:
        text = display_text(label)
        unescaped = text.count("$") - text.count(r"\$")
        if unescaped > 0 and unescaped % 2 == 0:          # matplotlib reads it as mathtext
            from matplotlib.mathtext import MathTextParser

            try:
                MathTextParser("path").parse(text)
            except (ValueError, RuntimeError) as exc:
                lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
                why = (lines[-1] if lines else type(exc).__name__)[:120]
                return f"is not valid mathtext: {why} " \
                       f"(fix its $...$ part, or write a literal dollar as \\$)"
    return None


def check_labels(labels, where: str) -> None:
    """One figure's legend labels: each valid (:func:`label_problem`) and the distinct ones unique
    case-insensitively (they would share a colour); else a one-line ConfigError."""
    seen: dict[str, str] = {}
    for label in dict.fromkeys(labels):
        problem = label_problem(label)
        if problem:
            raise ConfigError(f"{where} {label!r} {problem}")
        other = seen.setdefault(label.casefold(), label)
        if other != label:
            raise ConfigError(f"{where}s {other!r} and {label!r} differ only in case; "
                              f"give them distinct names")


@dataclass(frozen=True)
class TableSpec:
    name: str                                   # file name: results/<preset>/tables/<name>.csv
    build: str                                  # "module:function", builder(section, sources)
    names: Callable[[dict], list[str]]          # models / ensembles the table reads
    part: str | None = None                     # the sub-section it is built from (None: all)
    # the legend labels its section writes (unique within the figure) and the rows the table
    # must hold, (column, label, name whose seeds it must hold or None), from its section
    labels: Callable[[dict], list[str]] = lambda s: list(s)
    rows: Callable[[dict], list[tuple[str, str, str | None]]] = lambda s: []

    def section_of(self, section: dict) -> dict:
        return section[self.part] if self.part else section

    def expected(self, spec: dict) -> list[tuple[str, str, int | None]]:
        """(column, value, seed or None) of every curve (and seed) the table built from ``spec``
        (its ``section`` and ``sources``) must hold; a figure missing one refuses to draw."""
        out = []
        for column, label, name in self.rows(spec["section"]):
            seeds = sorted(int(k) for k in spec["sources"].get(name, {})) if name else []
            out += [(column, label, s) for s in seeds] or [(column, label, None)]
        return out


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


def _label_rows(section: dict) -> list[tuple[str, str, str | None]]:
    return [("model", label, name) for label, name in section.items()]


def _first_rows(section: dict) -> list[tuple[str, str, str | None]]:
    return [("model", label, _as_list(names)[0]) for label, names in section.items()]


def _budgeted_labels(section: dict) -> list[str]:
    return list(section.get("dynamic", {})) + list(section.get("single", {}))


def _budgeted_rows(section: dict) -> list[tuple[str, str, str | None]]:
    out = _first_rows(section.get("dynamic", {}))
    for label, names in section.get("single", {}).items():
        out += ([("model", label, names)] if isinstance(names, str)
                else [("model", n, n) for n in names])
    return out


# -- the figures --------------------------------------------------------------------------------

_ENTRIES = [
    FigureSpec(
        id="anytime", description="anytime prediction: top-1 % against MACs up to each exit",
        tables=(TableSpec("anytime", "msdnet.evaluation.tables:anytime_rows", _values,
                          rows=_label_rows),),
        draw="msdnet.figures.anytime:draw", schema=LABEL_TO_MODEL),
    FigureSpec(
        id="ablation", description="anytime top-1 % of MSDNet and its ablations",
        tables=(TableSpec("ablation", "msdnet.evaluation.tables:anytime_rows", _values,
                          rows=_label_rows),),
        draw="msdnet.figures.ablation:draw", schema=LABEL_TO_MODEL),
    FigureSpec(
        id="budgeted", description="budgeted batch classification: top-1 % against average MACs",
        tables=(TableSpec("budgeted", "msdnet.evaluation.tables:budgeted_rows", _budgeted_names,
                          labels=_budgeted_labels, rows=_budgeted_rows),),
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
        tables=(TableSpec("densenet_star_anytime", "msdnet.evaluation.tables:anytime_rows", _values, "anytime",
                          rows=_label_rows),
                TableSpec("densenet_star_budgeted", "msdnet.evaluation.tables:dynamic_rows", _flat, "budgeted",
                          rows=_first_rows)),
        draw="msdnet.figures.densenet_star:draw",
        schema={"type": "object", "additionalProperties": False, "required": ["anytime", "budgeted"],
                "properties": {"anytime": LABEL_TO_MODEL, "budgeted": LABEL_TO_MODELS}}),
    FigureSpec(
        id="reduction-lazy", description="network reduction and lazy evaluation (budgeted)",
        tables=(TableSpec("reduction_lazy", "msdnet.evaluation.tables:reduction_lazy_rows",
                          lambda s: [n for v in s.values() for n in v["models"]],
                          rows=lambda s: [("model", k, v["models"][0]) for k, v in s.items()]),),
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
        tables=(TableSpec("staircase", "msdnet.evaluation.tables:staircase_rows", _staircase_names,
                          rows=lambda s: [("family", k, None) for k in s]),),
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
        tables=(TableSpec("easy_hard", "msdnet.evaluation.tables:easy_hard_rows", lambda s: [s["model"]],
                          labels=lambda s: []),),
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
