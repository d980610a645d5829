"""Query-parameter parsing shared by the JSON routes, and the schemas that declare it.

A parameter is either absent (its default) or given, and then it must be what its schema
says: a bad value (an empty one too) is answered with a 400 naming the parameter and what
it must be, never silently replaced by a default. Each parser here accepts exactly the
texts its schema describes, so the OpenAPI document promises what the server does."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import request

from sleuth.web.errors import ApiError
from sleuth.web.openapi import Param

EPOCH_PATTERN = r"^[0-9]{1,12}(\.[0-9]{1,9})?$"
# RFC 3339 date-time, the JSON Schema `date-time` format: a time zone is required.
_DATE_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_EPOCH = re.compile(EPOCH_PATTERN)
_INTEGER = re.compile(r"-?[0-9]{1,18}")

TIME_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "pattern": EPOCH_PATTERN, "description": "epoch seconds"},
        {"type": "string", "format": "date-time", "description": "RFC 3339, with a time zone"},
    ]
}
_TRUE, _FALSE = ("true", "1"), ("false", "0")
BOOLEAN_SCHEMA: dict[str, Any] = {"type": "string", "enum": [*_TRUE, *_FALSE], "default": "false"}


def parse_time(name: str, text: str) -> float:
    """Epoch seconds (`1700000000`, `1700000000.5`) or an RFC 3339 date-time
    (`2023-11-14T22:13:20Z`, `2023-11-14T23:13:20+01:00`)."""
    if _EPOCH.fullmatch(text):
        return float(text)
    if _DATE_TIME.fullmatch(text):
        try:
            moment = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
        except ValueError:
            moment = None
        if moment is not None:
            return moment.timestamp()
    raise ApiError(
        400,
        "invalid_parameter",
        f"{name} must be epoch seconds or an RFC 3339 time with a time zone "
        f"(2023-11-14T22:13:20Z), not {text!r}",
    )


def time_arg(name: str) -> float | None:
    text = request.args.get(name)
    return None if text is None else parse_time(name, text)


def int_arg(name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter within [low, high]."""
    text = request.args.get(name)
    if text is None:
        return default
    if not _INTEGER.fullmatch(text):
        raise ApiError(400, "invalid_parameter", f"{name} must be an integer, not {text!r}")
    value = int(text)
    if not low <= value <= high:
        raise ApiError(
            400, "invalid_parameter", f"{name} must be between {low} and {high}, not {value}"
        )
    return value


@dataclass(frozen=True)
class PageLimit:
    """A route's `limit` query parameter (1 to `maximum`, else `default`): its declaration
    and its reader come from the same numbers, so they cannot disagree."""

    default: int
    maximum: int
    description: str = "how many at most"

    @property
    def param(self) -> Param:
        bounds = {"type": "integer", "minimum": 1, "maximum": self.maximum}
        return Param("limit", "query", {**bounds, "default": self.default}, self.description)

    def read(self) -> int:
        return int_arg("limit", self.default, 1, self.maximum)


def bool_arg(name: str) -> bool:
    """A boolean query parameter: `true` or `1`, `false` or `0`; absent is false."""
    text = request.args.get(name)
    if text is None or text in _FALSE:
        return False
    if text not in _TRUE:
        raise ApiError(400, "invalid_parameter", f"{name} must be true or false, not {text!r}")
    return True
