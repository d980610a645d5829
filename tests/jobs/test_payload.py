"""Typed payloads: what the strict checker accepts and refuses, both ways."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from sleuth.jobs.payload import PayloadError, check_payload_type, decode, encode
from sleuth.jobs.tasks import Task


@dataclass(frozen=True)
class Part:
    md5: str
    size: int


@dataclass(frozen=True)
class Everything:
    name: str
    count: int
    ratio: float
    ok: bool
    part: Part
    parts: list[Part]
    tags: tuple[str, ...]
    scores: dict[str, float]
    note: str | None = None
    extra: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Positive:
    n: int

    def __post_init__(self) -> None:
        if self.n <= 0:
            raise ValueError("n must be positive")


def sample() -> Everything:
    return Everything(
        name="a",
        count=2**63 - 1,  # a 64-bit hash fits
        ratio=0.5,
        ok=True,
        part=Part("d41d8cd98f00b204e9800998ecf8427e", 0),
        parts=[Part("x", 1)],
        tags=("t", "u"),
        scores={"a": 1.0},
    )


def test_round_trip_keeps_types() -> None:
    value = sample()
    data = encode(Everything, value)
    assert data["tags"] == ["t", "u"] and data["part"] == {"md5": value.part.md5, "size": 0}
    assert decode(Everything, data) == value
    assert decode(Everything, {**data, "ratio": 1}).ratio == 1.0  # an int is a float
    assert isinstance(decode(Everything, {**data, "ratio": 1}).ratio, float)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"count": True}, "Everything.count: expected int, not True"),
        ({"count": 1.0}, "Everything.count: expected int, not 1.0"),
        ({"ratio": "0.5"}, "Everything.ratio: expected float, not '0.5'"),
        ({"ok": 1}, "Everything.ok: expected bool, not 1"),
        ({"part": {"md5": "x"}}, "Everything.part: missing field 'size'"),
        ({"parts": [{"md5": "x", "size": "1"}]}, r"Everything.parts\[0\].size: expected int"),
        ({"tags": "t"}, "Everything.tags: expected a list, not str"),
        ({"scores": {"a": None}}, r"Everything.scores\['a'\]: expected float, not None"),
        ({"note": 3}, "Everything.note: 3 is none of str | None"),
        ({"surprise": 1}, r"Everything: unknown field\(s\) \['surprise'\]"),
    ],
)
def test_decode_names_the_bad_field(change: dict, message: str) -> None:
    data = {**encode(Everything, sample()), **change}
    with pytest.raises(PayloadError, match=message):
        decode(Everything, data)


def test_decode_refuses_what_is_not_an_object_and_runs_the_type_s_checks() -> None:
    with pytest.raises(PayloadError, match="Part: expected an object, not list"):
        decode(Part, ["x", 1])
    with pytest.raises(PayloadError, match="Positive: n must be positive"):
        decode(Positive, {"n": 0})


def test_encode_refuses_a_wrong_instance_or_field() -> None:
    with pytest.raises(PayloadError, match="payload must be a Part, not dict"):
        encode(Part, {"md5": "x", "size": 1})  # type: ignore[arg-type]
    with pytest.raises(PayloadError, match=r"Part\.size: expected int, not '1'"):
        encode(Part, Part("x", "1"))  # type: ignore[arg-type]
    with pytest.raises(PayloadError, match=r"Everything.ratio: inf is not a finite number"):
        encode(Everything, Everything(**{**sample().__dict__, "ratio": float("inf")}))


def test_unsupported_payload_types_are_refused_when_declared() -> None:
    @dataclass(frozen=True)
    class Bad:
        when: set[int]

    with pytest.raises(TypeError, match=r"Bad\.when: field type set\[int\] cannot be carried"):
        check_payload_type(Bad)
    with pytest.raises(TypeError, match="must be a dataclass"):
        Task("q", dict)
    with pytest.raises(ValueError, match="max_attempts"):
        Task("q", Part, max_attempts=0)
    with pytest.raises(ValueError, match="lease"):
        Task("q", Part, lease=0)
    with pytest.raises(ValueError, match="a Task needs a queue name"):
        Task("", Part)
