"""Typed job payloads: frozen dataclasses checked field by field against their annotations on
the way into the queue and on the way out.

Stdlib dataclasses and this small strict checker, not msgspec or pydantic: payloads are a few
short fields, the check costs microseconds per job beside a queue round trip of a millisecond,
and the dataclass stays an ordinary Python type for readers, mypy and pickling. The checker
is strict where JSON is loose: no unknown or missing fields, `bool` is not an `int`, an `int`
is accepted for a `float`, numbers must be finite, tuples come back as tuples.

Supported field types: `str`, `int`, `float`, `bool`, `None`, unions of them (`X | None`),
`list[T]`, `tuple[T, ...]`, `dict[str, T]` and nested payload dataclasses.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, TypeVar

from sleuth.jobs.base import JSON

P = TypeVar("P")


class PayloadError(ValueError):
    """A payload does not match its declared type; the message says which field and why."""


_FIELDS: dict[type, tuple[tuple[str, Any, bool], ...]] = {}


def _fields(cls: type) -> tuple[tuple[str, Any, bool], ...]:
    """(name, resolved type, required) of each field of a payload dataclass (resolved once
    per type: annotations are strings until then)."""
    found = _FIELDS.get(cls)
    if found is not None:
        return found
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise TypeError(f"a payload type must be a dataclass, not {cls!r}")
    hints = typing.get_type_hints(cls)
    found = _FIELDS[cls] = tuple(
        (
            f.name,
            hints[f.name],
            f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
        )
        for f in dataclasses.fields(cls)
    )
    return found


def check_payload_type(cls: type) -> None:
    """Refuse, at declaration time, a payload type this module cannot check."""
    for name, kind, _ in _fields(cls):
        _check_kind(kind, f"{cls.__name__}.{name}")


def _check_kind(kind: Any, where: str) -> None:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if kind in (str, int, float, bool, type(None)):
        return
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        check_payload_type(kind)
    elif origin in (types.UnionType, typing.Union, list):
        for arg in args:
            _check_kind(arg, where)
    elif origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        _check_kind(args[0], where)
    elif origin is dict and args and args[0] is str:
        _check_kind(args[1], where)
    else:
        raise TypeError(f"{where}: field type {kind!r} cannot be carried in a job payload")


def encode(cls: type[P], value: P) -> JSON:
    """The JSON object of a payload; raises PayloadError if `value` is not a valid `cls`."""
    if type(value) is not cls:
        raise PayloadError(f"payload must be a {cls.__name__}, not {type(value).__name__}")
    return _encode_record(value, cls.__name__)


def decode(cls: type[P], data: object) -> P:
    """The payload that the JSON object `data` holds; raises PayloadError, naming the field,
    when it does not match `cls`."""
    return typing.cast(P, _decode(cls, data, cls.__name__))


def _encode_record(value: Any, where: str) -> JSON:
    out: JSON = {}
    for name, kind, _ in _fields(type(value)):
        out[name] = _encode(kind, getattr(value, name), f"{where}.{name}")
    return out


def _encode(kind: Any, value: Any, where: str) -> Any:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (types.UnionType, typing.Union):
        for arg in args:
            try:
                return _encode(arg, value, where)
            except PayloadError:
                continue
        raise PayloadError(f"{where}: {value!r} is none of {_name(kind)}")
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        if type(value) is not kind:
            raise PayloadError(f"{where}: expected a {kind.__name__}, not {type(value).__name__}")
        return _encode_record(value, where)
    if origin is list or origin is tuple:
        if not isinstance(value, list | tuple):
            raise PayloadError(f"{where}: expected a {_name(kind)}, not {type(value).__name__}")
        return [_encode(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise PayloadError(f"{where}: expected a {_name(kind)}, not {value!r}")
        return {k: _encode(args[1], v, f"{where}[{k!r}]") for k, v in value.items()}
    return _scalar(kind, value, where)


def _decode(kind: Any, data: Any, where: str) -> Any:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (types.UnionType, typing.Union):
        for arg in args:
            try:
                return _decode(arg, data, where)
            except PayloadError:
                continue
        raise PayloadError(f"{where}: {data!r} is none of {_name(kind)}")
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        if not isinstance(data, dict):
            raise PayloadError(f"{where}: expected an object, not {type(data).__name__}")
        fields = _fields(kind)
        unknown = sorted(set(data) - {name for name, _, _ in fields})
        if unknown:
            raise PayloadError(f"{where}: unknown field(s) {unknown}")
        values = {}
        for name, field_kind, required in fields:
            if name in data:
                values[name] = _decode(field_kind, data[name], f"{where}.{name}")
            elif required:
                raise PayloadError(f"{where}: missing field {name!r}")
        try:
            return kind(**values)
        except (TypeError, ValueError) as exc:  # the type's own checks (__post_init__)
            raise PayloadError(f"{where}: {exc}") from None
    if origin is list or origin is tuple:
        if not isinstance(data, list):
            raise PayloadError(f"{where}: expected a list, not {type(data).__name__}")
        items = [_decode(args[0], v, f"{where}[{i}]") for i, v in enumerate(data)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(data, dict):
            raise PayloadError(f"{where}: expected an object, not {type(data).__name__}")
        return {k: _decode(args[1], v, f"{where}[{k!r}]") for k, v in data.items()}
    return _scalar(kind, data, where)


def _scalar(kind: Any, value: Any, where: str) -> Any:
    if kind is type(None):
        if value is None:
            return None
    elif kind is bool:
        if isinstance(value, bool):
            return value
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif kind is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise PayloadError(f"{where}: {value!r} is not a finite number")
            return float(value)
    elif kind is str and isinstance(value, str):
        return value
    raise PayloadError(f"{where}: expected {_name(kind)}, not {value!r}")


def _name(kind: Any) -> str:
    return kind.__name__ if isinstance(kind, type) else str(kind)
