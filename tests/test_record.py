"""Records: one dataclass gives a value's columns, JSON and exact JSON Schema."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from jsonschema import Draft202012Validator, FormatChecker

from sleuth.record import TIME, Codec, columns, from_row, json_schema, record_field, to_json, to_row

HEX = Codec(
    {"type": "string", "pattern": "^[0-9a-f]+$"}, to_json=lambda v: f"{v:x}", to_db=str, from_db=int
)


@dataclass(frozen=True)
class Tag:
    """A label."""

    name: str = record_field("its text", minLength=1)


@dataclass(frozen=True)
class Thing:
    """Something stored."""

    key: str = record_field(column=sa.String(8), primary_key=True)
    code: int = record_field(codec=HEX, column=sa.Text)
    seen: float = record_field(codec=TIME, column=sa.Double)
    note: str | None = record_field(column=sa.Text)
    secret: str = record_field(in_json=False, column=sa.Text)
    tags: tuple[Tag, ...] = record_field("newest first")


@dataclass(frozen=True)
class Where:
    url: str


@dataclass(frozen=True)
class Placed:
    thing: Thing = record_field(flatten=True)
    where: Where = record_field(flatten=True)


THING = Thing("k1", 255, 1_700_000_000.5, None, "hidden", (Tag("a"), Tag("b")))


def test_json_follows_the_declaration() -> None:
    assert to_json(THING) == {
        "key": "k1",
        "code": "ff",
        "seen": "2023-11-14T22:13:20.500Z",
        "note": None,
        "tags": [{"name": "a"}, {"name": "b"}],
    }
    assert to_json(Placed(THING, Where("http://127.0.0.1/x")))["url"] == "http://127.0.0.1/x"


def test_the_schema_is_exact_for_what_to_json_writes() -> None:
    schema = json_schema(Thing)
    assert schema["required"] == ["key", "code", "seen", "note", "tags"]
    assert schema["additionalProperties"] is False and schema["description"] == "Something stored."
    assert schema["properties"]["note"] == {"type": ["string", "null"]}
    assert schema["properties"]["tags"]["items"]["properties"]["name"]["minLength"] == 1
    validator = Draft202012Validator(schema, format_checker=FormatChecker())
    validator.validate(to_json(THING))
    for wrong in ({**to_json(THING), "secret": "x"}, {**to_json(THING), "code": 255}):
        assert not validator.is_valid(wrong)
    assert set(json_schema(Placed)["required"]) == {*schema["required"], "url"}


@dataclass(frozen=True)
class Stored:
    key: str = record_field(column=sa.String(8), primary_key=True)
    code: int = record_field(codec=HEX, column=sa.Text)
    note: str | None = record_field(column=sa.Text)
    secret: str = record_field(in_json=False, column=sa.Text)


def test_columns_and_rows_round_trip() -> None:
    cols = {c.name: c for c in columns(Thing)}
    assert list(cols) == ["key", "code", "seen", "note", "secret"]
    assert cols["key"].primary_key and cols["note"].nullable and not cols["code"].nullable
    assert "tags" not in to_row(THING)
    stored = Stored("k1", 255, None, "hidden")
    row = to_row(stored)
    assert row == {"key": "k1", "code": "255", "note": None, "secret": "hidden"}
    assert from_row(Stored, row) == stored


def test_a_field_written_twice_is_refused() -> None:
    @dataclass(frozen=True)
    class Twice:
        a: Where = record_field(flatten=True)
        b: Where = record_field(flatten=True)

    with pytest.raises(TypeError, match="twice"):
        json_schema(Twice)
