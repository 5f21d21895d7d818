"""Typed configs from JSON objects, strictly: unknown keys, missing keys and wrong types are errors.

A process config written by a launcher (or by hand, for a robot on its own computer) is read with
:func:`from_mapping` / :func:`from_json_file`: every key must be a field of the dataclass (a typo such
as ``robot_factroy`` is an error that names the closest field, never a silent default), every field
without a default must be present, and each value must have the field's type (nested dataclasses are
read the same way; lists become tuples). :func:`to_json_dict` is the inverse.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from lwd.utils.errors import ConfigError

T = TypeVar("T")


def to_json_dict(obj: Any) -> dict[str, Any]:
    """A config dataclass as a JSON-ready dict (nested dataclasses included; tuples stay lists in JSON)."""
    return dataclasses.asdict(obj)


def from_json_file(cls: type[T], path: str | os.PathLike, what: str) -> T:
    """The ``cls`` config in the JSON file ``path`` (``what`` names it in errors)."""
    from lwd.configs.checks import load_json_object

    return from_mapping(cls, load_json_object(path, what), f"{what} {path}")


def from_mapping(cls: type[T], data: Mapping[str, Any], what: str) -> T:
    """``cls(**data)`` with every key, presence and type checked; ``ConfigError`` names the key."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{what}: must be a JSON object, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = [k for k in data if k not in fields]
    if unknown:
        k = unknown[0]
        close = difflib.get_close_matches(str(k), list(fields), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else f"; known keys: {', '.join(sorted(fields))}"
        raise ConfigError(f"{what}: unknown key {k!r}{hint}")
    missing = [
        n for n, f in fields.items()
        if n not in data and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]  # fmt: skip
    if missing:
        raise ConfigError(f"{what} lacks required keys: {', '.join(missing)}")
    hints = typing.get_type_hints(cls)
    values = {k: _coerce(hints[k], v, f"{what}: {k}") for k, v in data.items()}
    try:
        return cls(**values)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{what}: {e}") from e


def _coerce(hint: Any, value: Any, where: str) -> Any:
    """``value`` checked against the type ``hint`` (lists -> tuples, ints -> floats, dataclasses
    recursively); ``ConfigError`` on a mismatch."""
    if hint is Any:
        return value
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in (a for a in args if a is not type(None)):
            try:
                return _coerce(a, value, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{where}: {value!r} matches none of {hint}")
    if dataclasses.is_dataclass(hint):
        return from_mapping(hint, value, where)  # type: ignore[arg-type]
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list, got {type(value).__name__}")
        item = args[0] if args else Any
        return tuple(_coerce(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict or hint is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where} must be a JSON object, got {type(value).__name__}")
        if len(args) == 2:
            return {_coerce(args[0], k, where): _coerce(args[1], v, f"{where}.{k}") for k, v in value.items()}
        return dict(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return value
    return value
