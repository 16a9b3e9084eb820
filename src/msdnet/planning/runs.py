"""What identifies a training run, and where its files live.

A run is its *resolved config*: the model YAML with its overrides, the recipe YAML with its
overrides, and the seed. Two hashes name it:

- the **run key** (:func:`run_key`): the resolved config without the seed and without the keys
  that only say where or how fast a run goes (device, precision, data location, ...). Every seed
  of one configuration shares it.
- the **data key** (:func:`data_key`): the data section alone (without its location), shared
  by every run trained on the same data and splits.

The workflow lays runs out as ``results/<preset>/runs/<model>/<run key>/seed<k>/``, so an edited
knob gives a new directory (a fresh run) and the old run stays where it was. ``msdnet train
--expect-key`` checks that the config it resolves still has the key the workflow planned.

Names that become path components or shell words (presets, models, ensembles, figures, data
sets) must match :data:`NAME_PATTERN`; :func:`check_name` says so in one line.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import yaml

from ..core.config import load_yaml
from ..core.errors import ConfigError
from ..core.io import stable_hash
from ..training.config import EXECUTION_KEYS, make_run_config

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]*$"
_NAME = re.compile(NAME_PATTERN)
# Data keys that say where a data set lives, not what it is.
DATA_LOCATION_KEYS = ("root", "imagenet_dir")
# Places the workflow may write to (relative to the repository root).
OUTPUT_ROOTS = ("results", "figures")


def check_name(name: Any, what: str, source: str = "<preset>") -> str:
    """Return ``name`` if it is a safe path component / shell word, else a one-line ConfigError."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"{source}: {what} {name!r} is not a valid name; use letters, digits, "
                          f"'-' and '_' only, starting with a letter or digit")
    return name


def inside_outputs(path: str | Path, source: str = "<preset>") -> Path:
    """``path`` if it resolves inside ``results/`` or ``figures/`` of the working directory."""
    here = Path.cwd().resolve()
    resolved = (here / path).resolve()
    for root in OUTPUT_ROOTS:
        if resolved.is_relative_to(here / root) and resolved != here / root:
            return Path(path)
    raise ConfigError(f"{source}: output path {path} leaves {' and '.join(OUTPUT_ROOTS)}/; "
                      f"check the preset and model names")


def yaml_scalar(value: Any) -> str:
    """``value`` as one line of YAML (what ``--set KEY=VALUE`` parses back)."""
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()


def apply_overrides(recipe: Mapping[str, Any], overrides: Iterable[str], source: str) -> dict[str, dict]:
    """Apply ``SECTION.KEY=VALUE`` overrides (VALUE parsed as YAML) to a recipe-like mapping."""
    out: dict[str, dict] = {}
    for section, body in recipe.items():
        if body is not None and not isinstance(body, dict):
            raise ConfigError(f"{source}: section '{section}' must be a mapping of keys to values, got "
                              f"{type(body).__name__} {body!r}"[:200] + f"; write it as {section}: {{key: value, ...}}")
        out[section] = dict(body or {})
    for item in overrides:
        key, sep, value = item.partition("=")
        section, dot, name = key.partition(".")
        if not sep or not dot or not name or not section:
            raise ConfigError(f"--set {item!r}: expected SECTION.KEY=VALUE, e.g. train.epochs=5")
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            raise ConfigError(f"--set {item!r}: the value is not valid YAML; quote it or fix it") from None
        out.setdefault(section, {})[name] = parsed
    return out


def resolve(model_file: str | Path, recipe_file: str | Path, overrides: Iterable[str] = (), *,
            load: Callable[[str | Path], dict[str, Any]] = load_yaml):
    """The :class:`msdnet.training.config.RunConfig` of a model YAML, a recipe YAML and ``--set``
    overrides (``model.KEY=...`` goes to the model config, ``data.``/``train.`` to the recipe).
    Torch-free: it validates the model config without building it. ``load`` reads a YAML file
    (the planner passes one that reads each file once)."""
    model = load(model_file)
    recipe = apply_overrides(load(recipe_file), overrides, str(recipe_file))
    model.update(recipe.pop("model", {}))
    return make_run_config(model, recipe, str(model_file), str(recipe_file))


def run_identity(run) -> dict[str, Any]:
    """The part of a RunConfig that determines its weights, minus the seed."""
    d = run.to_dict()
    d["data"] = {k: v for k, v in d["data"].items() if k not in DATA_LOCATION_KEYS}
    d["train"] = {k: v for k, v in d["train"].items() if k not in EXECUTION_KEYS and k != "seed"}
    return d


def run_key(run) -> str:
    """16 hex digits naming a configuration (every seed of it)."""
    return stable_hash(run_identity(run))


def import_key(checkpoint: str | Path, run) -> str:
    """The run key of a model imported from ``checkpoint`` (``msdnet import-authors``; a path as
    the preset gives it) with the resolved config ``run``: a hash of the path and the config,
    not of the file's bytes, so planning needs no file. Replacing the file at the same path does
    not change the key (delete the imported ``model.pt`` to import it again)."""
    return stable_hash({"imported": str(checkpoint), **run_identity(run)})


def data_key(run) -> str:
    """16 hex digits naming the data set and its splits a run trains on."""
    return stable_hash(run_identity(run)["data"])


def run_dir(results: str | Path, model: str, key: str, seed: int) -> Path:
    return Path(results) / "runs" / model / key / f"seed{seed}"


def predictions_dir(results: str | Path, name: str, key: str, seed: int) -> Path:
    return Path(results) / "predictions" / name / key / f"seed{seed}"


def data_summary_path(results: str | Path, dataset: str, key: str) -> Path:
    return Path(results) / "data" / f"{dataset}-{key}.json"


def check_data_summary(path: str | Path, run) -> dict[str, Any]:
    """Read a data summary (``msdnet data --out``) and check it describes ``run``'s data."""
    import json

    path = Path(path)
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
        prepared = {k: v for k, v in summary["config"].items() if k not in DATA_LOCATION_KEYS}
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such data summary; prepare the data first (`msdnet data ... --out {path}`)") from None
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError):
        raise ConfigError(f"{path}: not a data summary; delete it and prepare the data again "
                          f"(`msdnet data ... --out {path}`)") from None
    if prepared != run_identity(run)["data"]:
        diff = sorted(k for k in set(prepared) | set(run_identity(run)["data"])
                      if prepared.get(k) != run_identity(run)["data"].get(k))
        raise ConfigError(f"{path}: prepared for other data (differs in {', '.join(diff)}); "
                          f"prepare this run's data (`msdnet data` with the same --set data.* keys)")
    return summary


# -- key files of the outputs whose names stay fixed (tables, figures, notebooks; docs/workflow.md)

def key_path(directory: str | Path, name: str, spec: Any) -> Path:
    return Path(directory) / ".keys" / f"{check_name(name, 'key name')}.{stable_hash(spec)}.json"


def write_key(path: str | Path, spec: Any) -> Path:
    """Write the key file ``path`` (it must be ``key_path``'s for ``spec``); drop older keys."""
    import json

    from ..core.io import write_text_atomic

    path = Path(path)
    name, _, rest = path.name.partition(".")
    if path.parent.name != ".keys" or rest != f"{stable_hash(spec)}.json":
        raise ConfigError(f"{path}: not the key file of this spec (expected "
                          f"{path.parent / (name + '.' + stable_hash(spec) + '.json')})")
    write_text_atomic(path, json.dumps(spec, indent=1, sort_keys=True) + "\n")
    for other in path.parent.glob(f"{name}.*.json"):
        if other != path:
            other.unlink()
    return path


def read_key(path: str | Path, kind: str, name: str) -> dict[str, Any]:
    """The spec in the key file ``path`` of the ``kind`` (table, figure) ``name``: the one
    channel by which a job learns what to build. Refuses a file that is not valid JSON, not
    that output's key, or whose content no longer hashes to its name (edited by hand)."""
    import json

    path = Path(path)
    rebuild = "it is the workflow's; `snakemake figures` writes it again"
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"--key {path}: no such key file; {rebuild}") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"--key {path}: not a readable key file ({type(exc).__name__}); "
                          f"{rebuild}") from None
    if not isinstance(spec, dict) or spec.get(kind) != name:
        raise ConfigError(f"--key {path}: not the key file of {kind} {name}")
    if path.name != f"{path.name.partition('.')[0]}.{stable_hash(spec)}.json":
        raise ConfigError(f"--key {path}: its content does not match the hash in its name "
                          f"(edited?); {rebuild}")
    return spec
