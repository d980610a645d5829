"""`/monitoring`: the per-minute outcome histogram of an installed app (the outcomes it
declares, in its order and colours) and its failed items by reason, as JSON for API clients
and as a live chart for browsers (the page draws it from the same JSON, polled every 2
seconds). Without `?app=` it shows the first installed app that counts outcomes.

The answer is bounded to the newest `MAX_MINUTES` minutes of data, with empty minutes filled
in so bars line up in time."""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Response, jsonify, render_template, request, url_for
from sqlalchemy import Connection

from sleuth.app import APP_NAME, App, installed_apps
from sleuth.crawl.failures import by_reason
from sleuth.observe.counters import (
    MinuteCounts,
    declared_outcomes,
    histogram,
    minute_of,
    outcome_counts,
)
from sleuth.timefmt import iso_utc
from sleuth.web.context import current_services
from sleuth.web.errors import ApiError, html_page
from sleuth.web.openapi import Param, ResponseSpec, operation, schema
from sleuth.web.params import TIME_SCHEMA, int_arg, time_arg

MAX_MINUTES = 24 * 60

blueprint = Blueprint("monitoring", __name__)

_COUNT = {"type": "integer", "minimum": 0}
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
        "additionalProperties": False,
        "properties": {
            "app": {"type": "string"},
            "minutes": {
                "type": "array",
                "description": "oldest first, from the window's first event to its last; "
                "minutes between without events have zero counts",
                "items": {
                    "type": "object",
                    "description": "and the count of each outcome the app declares (images:"
                    " success, duplicate, error)",
                    "required": ["minute", "epoch"],
                    "properties": {
                        "minute": {"type": "string", "format": "date-time"},
                        "epoch": {"type": "integer", "description": "start of the minute"},
                    },
                    "additionalProperties": _COUNT,
                },
            },
            "totals": {
                "type": "object",
                "description": "sums over the minutes returned, per declared outcome",
                "required": ["total"],
                "properties": {"total": _COUNT},
                "additionalProperties": _COUNT,
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
    totals = {name: found.get(name, 0) for name in declared_outcomes(app)}
    return {**totals, "total": sum(totals.values())}


def monitored_apps() -> list[App]:
    """The installed apps that count outcomes, in their order: the page's choices."""
    return [app for app in installed_apps() if app.outcomes]


def report(conn: Connection, app: str, minutes: int, since: float | None) -> dict[str, Any]:
    rows = window(conn, app, minutes, since)
    names = declared_outcomes(app)
    totals = {name: sum(r.counts[name] for r in rows) for name in names}
    return {
        "app": app,
        "minutes": [{"minute": iso_utc(r.minute), "epoch": r.minute, **r.counts} for r in rows],
        "totals": {**totals, "total": sum(totals.values())},
        "failures_by_reason": by_reason(conn, app),
        "max_minutes": minutes,
        "generated_at": iso_utc(time.time()),
    }


def _wants_json() -> bool:
    fmt = request.args.get("format")
    if fmt not in (None, "json", "html"):
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
        Param(
            "app",
            "query",
            lambda: {"enum": [a.name for a in monitored_apps()]},
            "which installed app's counts (default: the first installed app)",
        ),
        Param("since", "query", TIME_SCHEMA, "earliest minute wanted"),
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
    apps = monitored_apps()
    names = [a.name for a in apps]
    app = request.args.get("app")
    if app is not None and not APP_NAME.fullmatch(app):  # an empty value is refused too
        raise ApiError(400, "invalid_parameter", f"app must be a lower-case app name, not {app!r}")
    app = app if app is not None else (names[0] if names else "")
    if app not in names:
        raise ApiError(
            400,
            "invalid_parameter",
            f"app must be an installed app that counts outcomes, one of {names}, not {app!r}",
        )
    minutes = int_arg("minutes", MAX_MINUTES, 1, MAX_MINUTES)
    since = time_arg("since")
    as_json = _wants_json()
    with current_services().engine.connect() as conn:
        data = report(conn, app, minutes, since)
    if as_json:
        response = jsonify(data)
        response.headers["Cache-Control"] = "no-store"
    else:
        json_url = url_for("monitoring.monitoring", **{**request.args.to_dict(), "format": "json"})
        shown = next(a for a in apps if a.name == app)
        page = render_template(
            "monitoring.html",
            data=data,
            apps=names,
            outcomes=[vars(o) for o in shown.outcomes],
            unit=shown.outcome_unit,
            max_minutes=MAX_MINUTES,
            json_url=json_url,
        )
        response = Response(page, mimetype="text/html")
    response.vary.add("Accept")
    return response
