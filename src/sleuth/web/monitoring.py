"""`/monitoring`: the per-minute outcome histogram of an app and its failed items by reason,
as JSON for API clients and as a live chart for browsers (the page draws it from the same
JSON, polled every 2 seconds).

The seed answered a bare list and drew nothing; here the answer is bounded to the newest
`MAX_MINUTES` minutes of data, with empty minutes filled in so bars line up in time."""

from __future__ import annotations

import re
import time
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Response, jsonify, render_template, request, url_for
from sqlalchemy import Connection

from sleuth.crawl.failures import by_reason
from sleuth.observe.counters import OUTCOMES, MinuteCounts, histogram, minute_of, outcome_counts
from sleuth.web.context import current_services
from sleuth.web.errors import ApiError, html_page
from sleuth.web.openapi import Param, ResponseSpec, operation, schema
from sleuth.web.params import int_arg, iso_utc, time_arg

DEFAULT_APP = "images"
MAX_MINUTES = 24 * 60
_APP_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")

blueprint = Blueprint("monitoring", __name__)

_COUNTS = {name: {"type": "integer", "minimum": 0} for name in (*OUTCOMES, "total")}
MONITORING = schema(
    "Monitoring",
    {
        "type": "object",
        "required": [
            "app",
            "minutes",
            "totals",
            "failures_by_reason",
            "max_minutes",
            "generated_at",
        ],
        "properties": {
            "app": {"type": "string"},
            "minutes": {
                "type": "array",
                "description": "oldest first, from the window's first event to its last; "
                "minutes between without events have zero counts",
                "items": {
                    "type": "object",
                    "required": ["minute", "epoch", *OUTCOMES],
                    "properties": {
                        "minute": {"type": "string", "format": "date-time"},
                        "epoch": {"type": "integer", "description": "start of the minute"},
                        **{name: _COUNTS[name] for name in OUTCOMES},
                    },
                },
            },
            "totals": {
                "type": "object",
                "description": "sums over the minutes returned",
                "required": list(_COUNTS),
                "properties": _COUNTS,
            },
            "failures_by_reason": {
                "type": "object",
                "description": "the app's failed items (all crawls, not yet retried with "
                "success) per reason code; `sleuth <app> errors` lists them",
                "additionalProperties": {"type": "integer", "minimum": 1},
            },
            "max_minutes": {"type": "integer"},
            "generated_at": {"type": "string", "format": "date-time"},
        },
    },
)


def window(
    conn: Connection, app: str, minutes: int, since: float | None = None
) -> list[MinuteCounts]:
    """The newest `minutes` minutes of the app's data (not of the clock: a crawl that ended
    yesterday still shows), starting no earlier than `since`."""
    last = conn.execute(
        sa.select(sa.func.max(outcome_counts.c.minute)).where(outcome_counts.c.app == app)
    ).scalar()
    if last is None:
        return []
    start = int(last) - (minutes - 1) * 60
    if since is not None:
        start = max(start, minute_of(since))
    # A writer may open a newer minute between the two queries: keep the bound anyway.
    return histogram(conn, app, since=start)[-minutes:]


def outcome_totals(conn: Connection, app: str) -> dict[str, int]:
    """All-time counts per outcome, and their sum."""
    rows = conn.execute(
        sa.select(outcome_counts.c.outcome, sa.func.sum(outcome_counts.c.count))
        .where(outcome_counts.c.app == app)
        .group_by(outcome_counts.c.outcome)
    ).all()
    found = {outcome: int(n) for outcome, n in rows}
    totals = {name: found.get(name, 0) for name in OUTCOMES}
    return {**totals, "total": sum(totals.values())}


def known_apps(conn: Connection) -> list[str]:
    names = conn.execute(sa.select(outcome_counts.c.app).distinct()).scalars()
    return sorted({DEFAULT_APP, *names})


def report(conn: Connection, app: str, minutes: int, since: float | None) -> dict[str, Any]:
    rows = window(conn, app, minutes, since)
    totals = {name: sum(getattr(r, name) for r in rows) for name in OUTCOMES}
    return {
        "app": app,
        "minutes": [
            {
                "minute": iso_utc(r.minute),
                "epoch": r.minute,
                **{name: getattr(r, name) for name in OUTCOMES},
            }
            for r in rows
        ],
        "totals": {**totals, "total": sum(totals.values())},
        "failures_by_reason": by_reason(conn, app),
        "max_minutes": minutes,
        "generated_at": iso_utc(time.time()),
    }


def _wants_json() -> bool:
    fmt = request.args.get("format")
    if fmt not in (None, "", "json", "html"):
        raise ApiError(400, "invalid_parameter", f"format must be json or html, not {fmt!r}")
    if fmt:
        return fmt == "json"
    return request.accept_mimetypes.best_match(["application/json", "text/html"]) != "text/html"


@blueprint.get("/monitoring")
@operation(
    "Per-minute outcome histogram",
    description="JSON for API clients (`Accept: application/json` or `?format=json`); "
    "browsers get a page that draws the histogram and updates it live.",
    tags=("monitoring",),
    params=(
        Param("app", "query", {"type": "string", "default": DEFAULT_APP}, "which app's counts"),
        Param(
            "since",
            "query",
            {"type": "string"},
            "earliest minute wanted: epoch seconds or ISO-8601",
        ),
        Param(
            "minutes",
            "query",
            {"type": "integer", "minimum": 1, "maximum": MAX_MINUTES, "default": MAX_MINUTES},
            "how many of the newest minutes of data to return",
        ),
        Param("format", "query", {"enum": ["json", "html"]}, "overrides the Accept header"),
    ),
    responses={
        200: ResponseSpec(
            "the histogram",
            {"application/json": MONITORING, "text/html": {"type": "string"}},
        )
    },
    errors=(400,),
)
@html_page
def monitoring() -> Response:
    app = request.args.get("app") or DEFAULT_APP
    if not _APP_NAME.match(app):
        raise ApiError(400, "invalid_parameter", f"app must be a lower-case app name, not {app!r}")
    minutes = int_arg("minutes", MAX_MINUTES, 1, MAX_MINUTES)
    since = time_arg("since")
    as_json = _wants_json()
    with current_services().engine.connect() as conn:
        data = report(conn, app, minutes, since)
        apps = [] if as_json else known_apps(conn)
    if as_json:
        response = jsonify(data)
        response.headers["Cache-Control"] = "no-store"
    else:
        json_url = url_for("monitoring.monitoring", **{**request.args.to_dict(), "format": "json"})
        page = render_template(
            "monitoring.html", data=data, apps=apps, max_minutes=MAX_MINUTES, json_url=json_url
        )
        response = Response(page, mimetype="text/html")
    response.vary.add("Accept")
    return response
