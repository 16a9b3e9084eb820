"""Strict, typed configs: YAML in, frozen dataclasses out.

Unknown keys and wrong types are errors that name the key and the file (nanoGPT's habit:
an override that does not exist is a mistake, not a silent default).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from pathlib import Path
from typing import Any, Literal, Mapping, TypeVar

import yaml

from .errors import ConfigError

T = TypeVar("T")


class _NotFinite(ConfigError):
    """A NaN or infinite float: wrong whatever type a union would try next."""


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; a missing, unreadable or non-mapping file is a ConfigError."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file; check the path")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}); save the config file as "
                          "UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror or type(exc).__name__}); check the "
                          "path and its permissions") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ConfigError(f"{path}: not valid YAML{where}; fix the syntax") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys to values, got {type(data).__name__}")
    return data


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        (arg,) = typing.get_args(tp)
        return f"list of {_type_name(arg)}"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against type ``tp``; return it (ints are accepted where floats are)."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin is Literal:
        if value in typing.get_args(tp):
            return value
    elif origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            try:
                return _coerce(value, arg, where)
            except _NotFinite:
                raise
            except ConfigError:
                continue
    elif origin is list:
        (arg,) = typing.get_args(tp)
        if isinstance(value, (list, tuple)):
            return [_coerce(v, arg, where) for v in value]
    elif origin is dict:
        if isinstance(value, dict):
            return dict(value)
    elif tp is type(None):
        if value is None:
            return None
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise _NotFinite(f"{where}: must be a finite number, got {value!r}; give a real value")
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    else:
        raise TypeError(f"unsupported config type {tp!r}")
    raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    """``typing.get_type_hints`` of a config class, evaluated once (the planner parses hundreds)."""
    return typing.get_type_hints(cls)


def from_dict(cls: type[T], data: Mapping[str, Any], source: str = "<config>") -> T:
    """Build dataclass ``cls`` from ``data``; unknown keys, missing keys and wrong types raise."""
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        allowed = ", ".join(sorted(fields))
        raise ConfigError(f"{source}: unknown key '{unknown[0]}' (allowed keys: {allowed})")
    hints = _type_hints(cls)
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = _coerce(data[name], hints[name], f"{source}: key '{name}'")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{source}: missing required key '{name}'")
    obj = cls(**kwargs)
    validate = getattr(obj, "validate", None)
    if validate is not None:
        try:
            validate()
        except ValueError as exc:
            raise ConfigError(f"{source}: {exc}") from None
    return obj


def to_dict(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)


def compact_dict(obj: Any) -> dict[str, Any]:
    """``asdict(obj)`` without the keys named in the class's ``OMIT_AT_DEFAULT`` that hold their
    default: keys added to a config after runs were keyed change no hash, no run key and no
    recorded config until a config sets them (``from_dict`` fills them back in)."""
    out = dataclasses.asdict(obj)
    for f in dataclasses.fields(obj):
        if f.name in getattr(type(obj), "OMIT_AT_DEFAULT", ()):
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            if out[f.name] == default:
                del out[f.name]
    return out
