"""Query-parameter parsing shared by the JSON routes.

A bad parameter is answered with a 400 naming the parameter and what it must be, never
silently replaced by a default."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from flask import request

from sleuth.web.errors import ApiError


def parse_time(name: str, text: str) -> float:
    """Epoch seconds (integer or decimal) or an ISO-8601 time; naive times are UTC."""
    try:
        value = float(text)
    except ValueError:
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise ApiError(
                400,
                "invalid_parameter",
                f"{name} must be epoch seconds or an ISO-8601 time, not {text!r}",
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()
    if not math.isfinite(value):
        raise ApiError(400, "invalid_parameter", f"{name} must be a finite number of seconds")
    return value


def time_arg(name: str) -> float | None:
    text = request.args.get(name)
    return None if text is None or text == "" else parse_time(name, text)


def int_arg(name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter within [low, high]."""
    text = request.args.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise ApiError(
            400, "invalid_parameter", f"{name} must be an integer, not {text!r}"
        ) from None
    if not low <= value <= high:
        raise ApiError(
            400, "invalid_parameter", f"{name} must be between {low} and {high}, not {value}"
        )
    return value
