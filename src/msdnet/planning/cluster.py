"""Which Snakemake plugins a workflow profile needs, and whether they are installed.

A profile, ``profiles/<name>/config.yaml``, names its executor (``executor: slurm``) and
may name a default storage provider (``default-storage-provider: s3``); the command line may
replace either. Every executor but Snakemake's own (local, dryrun, touch) and every storage
provider is a plugin package, named by convention: executor X is the module
``snakemake_executor_plugin_X`` (``pip install snakemake-executor-plugin-X``), storage X is
``snakemake_storage_plugin_X`` (``pip install snakemake-storage-plugin-X``). Without it Snakemake
rejects ``--executor X`` with a page of usage before it reads the workflow; ``msdnet cluster``
says instead, in one line, what to install.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..core.errors import ConfigError
from .runs import NAME_PATTERN

PROFILES = Path("profiles")
NAME = re.compile(NAME_PATTERN)                         # a profile: a folder under PROFILES
PLUGIN_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")      # an executor or storage plugin's name
BUILTIN_EXECUTORS = frozenset({"local", "dryrun", "touch"})


@dataclass(frozen=True)
class Plugin:
    kind: str   # "executor" or "storage"
    name: str   # e.g. slurm, kubernetes, s3

    @property
    def module(self) -> str:
        return f"snakemake_{self.kind}_plugin_{self.name.replace('-', '_')}"

    @property
    def pip(self) -> str:
        return f"snakemake-{self.kind}-plugin-{self.name}"

    def installed(self) -> bool:
        return importlib.util.find_spec(self.module) is not None


def profile_dir(name: str, root: Path | str = ".") -> Path:
    """profiles/<name> (relative to root), checked: a plain name, a folder with a config.yaml."""
    base = Path(root) / PROFILES
    if not NAME.match(name or ""):
        raise ConfigError(f"profile {name!r}: not a profile name (letters, digits, '-' and '_'; "
                          f"one of {_available(base)})")
    path = base / name / "config.yaml"
    if not path.is_file():
        if not base.is_dir():
            raise ConfigError(f"no {PROFILES}/ here: run from the repository root")
        raise ConfigError(f"{PROFILES / name}: no such profile (no config.yaml); one of {_available(base)}")
    return PROFILES / name


def _available(base: Path) -> str:
    names = sorted(p.parent.name for p in base.glob("*/config.yaml")) if base.is_dir() else []
    return ", ".join(names) or "none found"


def _last_value(args: list[str], *flags: str) -> str | None:
    """The value of the last ``--flag VALUE`` or ``--flag=VALUE`` in args (Snakemake's own rule)."""
    value = None
    for i, a in enumerate(args):
        for flag in flags:
            if a == flag and i + 1 < len(args):
                value = args[i + 1]
            elif a.startswith(flag + "="):
                value = a.split("=", 1)[1]
    return value


def required_plugins(profile: Path | str, args: list[str] | tuple[str, ...] = (), root: Path | str = ".") -> list[Plugin]:
    """The plugins that running Snakemake with this profile (and these arguments) needs."""
    doc = _profile_doc(profile, root)
    args = list(args)
    wanted = [("executor", _last_value(args, "--executor", "-e") or doc.get("executor")),
              ("storage", _last_value(args, "--default-storage-provider") or doc.get("default-storage-provider"))]
    plugins = []
    for kind, name in wanted:
        if name is None or (kind == "executor" and name in BUILTIN_EXECUTORS):
            continue
        if not isinstance(name, str) or not PLUGIN_NAME.match(name):
            raise ConfigError(f"{Path(profile) / 'config.yaml'}: {kind} {name!r} is not a plugin name "
                              "(lower-case letters, digits and '-')")
        plugins.append(Plugin(kind, name))
    return plugins


def missing_message(profile: Path | str, missing: list[Plugin]) -> str:
    """One line: what the profile needs and the pip install that brings it."""
    names = [p.pip for p in missing]
    verb = "is" if len(names) == 1 else "are"
    return (f"error: {Path(profile).as_posix()} needs {' and '.join(names)}, which {verb} not installed: "
            f"pip install {' '.join(names)}")


# The commands an executor submits with, which must be on PATH where Snakemake runs (else the
# plugin fails job after job, or waits on jobs that were never submitted).
EXECUTOR_COMMANDS = {"slurm": ("sbatch",)}
_ENV_REF = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")


def _profile_doc(profile: Path | str, root: Path | str = ".") -> dict:
    path = Path(root) / profile / "config.yaml"
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{Path(profile) / 'config.yaml'}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{Path(profile) / 'config.yaml'}: not a mapping of Snakemake options")
    return doc


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def missing_environment(profile: Path | str, args: list[str] | tuple[str, ...] = (),
                        root: Path | str = ".", env: dict | None = None) -> list[str]:
    """Environment variables the profile's options name (``$MSDNET_IMAGE``), unset or empty:
    Snakemake would expand them to nothing (an image ``""``, a bucket ``s3://``)."""
    env = os.environ if env is None else env
    names = {m for text in _strings(_profile_doc(profile, root)) for m in _ENV_REF.findall(text)}
    return sorted(n for n in names if not env.get(n))


def missing_commands(profile: Path | str, args: list[str] | tuple[str, ...] = (),
                     root: Path | str = ".") -> list[str]:
    """The submit commands of the profile's executor that are not on PATH (none on a dry run)."""
    args = list(args)
    if any(a in ("-n", "--dry-run", "--dryrun") for a in args):
        return []
    executor = _last_value(args, "--executor", "-e") or _profile_doc(profile, root).get("executor")
    return [c for c in EXECUTOR_COMMANDS.get(str(executor), ()) if shutil.which(c) is None]


def environment_message(profile: Path | str, missing: list[str]) -> str:
    names = " and ".join(missing)
    return (f"error: {Path(profile).as_posix()} needs {names} set (it names "
            f"{', '.join('$' + m for m in missing)}; see the comments at the top of "
            f"{Path(profile).as_posix()}/config.yaml): export {missing[0]}=...")


def commands_message(profile: Path | str, missing: list[str]) -> str:
    return (f"error: {Path(profile).as_posix()} submits jobs with {' and '.join(missing)}, which "
            f"{'is' if len(missing) == 1 else 'are'} not on PATH: run from a login node of the "
            f"cluster (or put its commands on PATH)")
