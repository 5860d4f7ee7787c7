"""Reading JSON that comes from outside (mirror indexes, metadata, spec and install records).

Every value is checked against the type its reader expects; a bad file raises RecordError
naming the file and the field (`index.json: archives[3].sha256: expected a string, got 12`).
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from relocpy.core.errors import RelocpyError

T = TypeVar("T")


class RecordError(RelocpyError):
    """An external JSON file that is malformed or does not have the expected shape."""


def parse_json(text: str | bytes, source: str) -> object:
    """`text` parsed, or RecordError naming `source` and where the JSON breaks."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise RecordError(
            f"{source}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from exc
    except UnicodeDecodeError as exc:
        raise RecordError(f"{source}: not UTF-8 text ({exc.reason})") from exc


def read_json(path: Path, source: str | None = None) -> object:
    """The JSON file at `path` (named `source` in errors; default its path)."""
    name = source or str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RecordError(f"{name}: cannot read it: {exc.strerror}") from exc
    return parse_json(data, name)


def _describe(value: object) -> str:
    shown = json.dumps(value) if not isinstance(value, (dict, list)) else type(value).__name__
    return shown if len(shown) < 60 else shown[:57] + "..."


def _check(value: object, hint: Any, where: str, source: str) -> object:
    """`value` if it has type `hint` (str, int, float, bool, None, X | None, list[X],
    tuple[X, ...], dict[str, X], a dataclass, Any), converted where JSON differs (list ->
    tuple, dict -> dataclass); else RecordError."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return value
    if origin in (types.UnionType, typing.Union):
        errors = []
        for option in typing.get_args(hint):
            try:
                return _check(value, option, where, source)
            except RecordError as exc:
                errors.append(exc)
        names = " or ".join(_name(option) for option in typing.get_args(hint))
        raise RecordError(f"{source}: {where}: expected {names}, got {_describe(value)}")
    if hint is type(None):
        if value is None:
            return None
        raise RecordError(f"{source}: {where}: expected null, got {_describe(value)}")
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return from_dict(hint, value, source, where)
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise RecordError(f"{source}: {where}: expected a list, got {_describe(value)}")
        args = typing.get_args(hint)
        item = args[0] if args else Any
        items = [_check(v, item, f"{where}[{i}]", source) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise RecordError(f"{source}: {where}: expected an object, got {_describe(value)}")
        _, item = typing.get_args(hint) or (str, Any)
        return {str(k): _check(v, item, f"{where}.{k}", source) for k, v in value.items()}
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float) and isinstance(value, bool):
        raise RecordError(f"{source}: {where}: expected {_name(hint)}, got {_describe(value)}")
    if isinstance(hint, type) and isinstance(value, hint):
        return value
    raise RecordError(f"{source}: {where}: expected {_name(hint)}, got {_describe(value)}")


def _name(hint: Any) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
    names.update({list: "a list", dict: "an object"})
    return names.get(hint, "null" if hint is type(None) else getattr(hint, "__name__", str(hint)))


def expect(value: object, hint: Any, source: str, where: str = "the top level") -> Any:
    """`value` checked against the type `hint` (see `_check`)."""
    return _check(value, hint, where, source)


def from_dict(cls: type[T], data: object, source: str, where: str = "the top level") -> T:
    """An instance of the dataclass `cls` from the JSON object `data`: every field without a
    default must be there, every value must have its field's type; unknown keys are ignored
    (newer writers may add fields)."""
    if not isinstance(data, dict):
        raise RecordError(f"{source}: {where}: expected an object, got {_describe(data)}")
    hints = typing.get_type_hints(cls)
    values: dict[str, object] = {}
    prefix = "" if where == "the top level" else f"{where}."
    for spec in dataclasses.fields(cls):  # type: ignore[arg-type]
        if not spec.init:
            continue
        if spec.name not in data:
            has_default = (
                spec.default is not dataclasses.MISSING
                or spec.default_factory is not dataclasses.MISSING
            )
            if has_default:
                continue
            raise RecordError(f"{source}: {prefix}{spec.name}: missing")
        values[spec.name] = _check(data[spec.name], hints[spec.name], prefix + spec.name, source)
    return cls(**values)


def require_format(data: dict[str, object], supported: int, source: str) -> None:
    """The record's `format` must be one this relocpy reads (1..supported)."""
    fmt = data.get("format")
    if not isinstance(fmt, int) or isinstance(fmt, bool) or not 1 <= fmt <= supported:
        raise RecordError(
            f"{source}: format: this relocpy reads format 1 to {supported}, not {_describe(fmt)}",
            hint="upgrade relocpy, or rewrite the file with this version",
        )
