"""Records: a value's fields declared once, as a frozen dataclass, from which its table
columns, its JSON form and its exact JSON Schema all come.

A field's Python type gives its JSON type (`int` → integer, `str` → string, `X | None` →
nullable, `tuple[R, ...]` → array, a record → object); `record_field()` adds what the type
cannot say: schema keywords (`pattern`, `minimum`, `description`), a `Codec` for values whose
JSON or database form differs from the Python one (epoch seconds written as RFC 3339 times),
a table column, a field kept out of JSON (`in_json=False`), or a record whose fields are
written in place (`flatten=True`). Because the JSON and its schema come from one walk over
the same fields, an answer can never carry a field its schema does not declare, or miss one
it requires."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from sleuth.timefmt import iso_utc

_SPEC = "sleuth.record"
_JSON_TYPES: dict[type, str] = {bool: "boolean", int: "integer", float: "number", str: "string"}


def _same(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class Codec:
    """How a field's value is written where its Python form is not the one wanted: `schema`
    is its whole JSON Schema, `to_json` makes that JSON, `to_db`/`from_db` convert to and
    from the column's value."""

    schema: Mapping[str, Any]
    to_json: Callable[[Any], Any] = _same
    to_db: Callable[[Any], Any] = _same
    from_db: Callable[[Any], Any] = _same


TIME = Codec(
    {"type": "string", "format": "date-time", "description": "UTC, RFC 3339"}, to_json=iso_utc
)


@dataclass(frozen=True)
class FieldSpec:
    description: str = ""
    keywords: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    codec: Codec | None = None
    in_json: bool = True
    flatten: bool = False
    column: Any = None  # a SQLAlchemy type (class or instance); None: not a column
    primary_key: bool = False


def record_field(
    description: str = "",
    *,
    codec: Codec | None = None,
    in_json: bool = True,
    flatten: bool = False,
    column: Any = None,
    primary_key: bool = False,
    **keywords: Any,
) -> Any:
    """Declare a record's field (the dataclass `field` with what its type does not say);
    `keywords` are JSON Schema keywords added to the type's schema."""
    spec = FieldSpec(description, keywords, codec, in_json, flatten, column, primary_key)
    return dataclasses.field(metadata={_SPEC: spec})


@dataclass(frozen=True)
class _Field:
    name: str
    hint: Any
    spec: FieldSpec


_FIELDS: dict[type, tuple[_Field, ...]] = {}


def _fields(cls: type) -> tuple[_Field, ...]:
    """The fields of a record class with their resolved types (worked out once per class)."""
    found = _FIELDS.get(cls)
    if found is None:
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"{cls.__name__} is not a record (a dataclass)")
        hints = typing.get_type_hints(cls)
        found = tuple(
            _Field(f.name, hints[f.name], f.metadata.get(_SPEC, FieldSpec()))
            for f in dataclasses.fields(cls)
        )
        _FIELDS[cls] = found
    return found


def _optional(hint: Any) -> tuple[Any, bool]:
    """`X | None` → (X, True); anything else → (hint, False)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(hint)) == 2:
            return args[0], True
    return hint, False


def _is_record(hint: Any) -> bool:
    return isinstance(hint, type) and dataclasses.is_dataclass(hint)


def _type_schema(hint: Any) -> dict[str, Any]:
    """The JSON Schema of a Python type, as `to_json` writes it."""
    inner, nullable = _optional(hint)
    if nullable:
        schema = _type_schema(inner)
        if isinstance(schema.get("type"), str):
            return {**schema, "type": [schema["type"], "null"]}
        return {"anyOf": [schema, {"type": "null"}]}
    if _is_record(hint):
        return json_schema(hint)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if (origin is tuple and len(args) == 2 and args[1] is Ellipsis) or origin is list:
        return {"type": "array", "items": _type_schema(args[0])}
    if origin is dict and args[0] is str:
        return {"type": "object", "additionalProperties": _type_schema(args[1])}
    if origin is typing.Literal:
        return {"enum": list(args)}
    if hint in _JSON_TYPES:
        return {"type": _JSON_TYPES[hint]}
    raise TypeError(f"no JSON Schema for the type {hint!r}")


def _field_schema(field: _Field) -> dict[str, Any]:
    spec = field.spec
    if spec.codec is not None:
        schema = dict(spec.codec.schema)
        if _optional(field.hint)[1]:
            schema = {"anyOf": [schema, {"type": "null"}]}
    else:
        schema = _type_schema(field.hint)
    schema.update(spec.keywords)
    if spec.description:
        schema["description"] = spec.description
    return schema


def _json_properties(cls: type) -> dict[str, dict[str, Any]]:
    properties: dict[str, dict[str, Any]] = {}
    for field in _fields(cls):
        if not field.spec.in_json:
            continue
        if field.spec.flatten:
            inner = _json_properties(field.hint)
        else:
            inner = {field.name: _field_schema(field)}
        clash = properties.keys() & inner.keys()
        if clash:
            raise TypeError(f"{cls.__name__} writes {sorted(clash)} twice in its JSON")
        properties.update(inner)
    return properties


def json_schema(cls: type) -> dict[str, Any]:
    """The exact JSON Schema of `to_json` of a `cls`: every field required, no other."""
    properties = _json_properties(cls)
    schema: dict[str, Any] = {
        "type": "object",
        "required": list(properties),
        "properties": properties,
        "additionalProperties": False,
    }
    doc = (cls.__doc__ or "").strip()
    if doc and not doc.startswith(f"{cls.__name__}("):  # not dataclass's generated one
        schema["description"] = " ".join(doc.split())
    return schema


def _encode(value: Any, hint: Any, codec: Codec | None) -> Any:
    if value is None:
        return None
    if codec is not None:
        return codec.to_json(value)
    inner, _ = _optional(hint)
    if _is_record(inner):
        return to_json(value)
    origin, args = typing.get_origin(inner), typing.get_args(inner)
    if origin in (tuple, list):
        return [_encode(v, args[0], None) for v in value]
    if origin is dict:
        return {k: _encode(v, args[1], None) for k, v in value.items()}
    return value


def to_json(record: object) -> dict[str, Any]:
    """The record as a JSON object, fields in declaration order."""
    out: dict[str, Any] = {}
    for field in _fields(type(record)):
        if not field.spec.in_json:
            continue
        value = getattr(record, field.name)
        if field.spec.flatten:
            out.update(to_json(value))
        else:
            out[field.name] = _encode(value, field.hint, field.spec.codec)
    return out


def _column_fields(cls: type) -> list[_Field]:
    return [f for f in _fields(cls) if f.spec.column is not None]


def columns(cls: type) -> list[sa.Column[Any]]:
    """The table columns of `cls`'s fields that declare one; `X | None` is nullable."""
    return [
        sa.Column(
            f.name,
            f.spec.column,
            primary_key=f.spec.primary_key,
            nullable=_optional(f.hint)[1],
        )
        for f in _column_fields(cls)
    ]


def to_row(record: object) -> dict[str, Any]:
    """The column values of a record, as its table stores them."""
    out = {}
    for f in _column_fields(type(record)):
        value = getattr(record, f.name)
        codec = f.spec.codec
        out[f.name] = value if codec is None or value is None else codec.to_db(value)
    return out


def from_row(cls: type, row: Any) -> Any:
    """A record of `cls` from a database row (any mapping or SQLAlchemy `Row` holding at
    least its columns)."""
    values = row._mapping if hasattr(row, "_mapping") else row
    kwargs = {}
    for f in _column_fields(cls):
        value = values[f.name]
        codec = f.spec.codec
        kwargs[f.name] = value if codec is None or value is None else codec.from_db(value)
    return cls(**kwargs)
