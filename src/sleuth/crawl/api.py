"""`GET /api/<app>/errors`: an app's failed items as JSON, in keyset-paged order (oldest
failure first), for each app's blueprint, built by `errors_blueprint`."""

from __future__ import annotations

import re

from flask import Blueprint, Response, jsonify, request

from sleuth.crawl.failures import FIELDS, page
from sleuth.crawl.runs import run_exists
from sleuth.web.context import current_services
from sleuth.web.errors import ApiError
from sleuth.web.openapi import Param, json_response, operation, schema
from sleuth.web.params import PageLimit

LIMIT = PageLimit(100, 1000, "most items in the page")
MAX_CRAWL = 40
MAX_REASON = 64
_CURSOR = re.compile(r"^[0-9]{1,18}$")

_TIME = {"type": "string", "format": "date-time"}
FAILURE = schema(
    "CrawlFailure",
    {
        "type": "object",
        "required": list(FIELDS),
        "properties": {
            "id": {"type": "integer", "minimum": 1},
            "crawl": {"type": "string", "description": "the crawl (run) id"},
            "item": {"type": "string", "description": "the item's key in its crawl"},
            "target": {"type": "string", "description": "what the item is: a URL, an account"},
            "reason": {"type": "string", "description": "a stable code, e.g. not_image"},
            "message": {"type": "string", "description": "the reason, for people"},
            "http_status": {"type": ["integer", "null"]},
            "attempts": {"type": "integer", "minimum": 1, "description": "failures so far"},
            "first_failed": _TIME,
            "last_failed": _TIME,
        },
    },
)
FAILURE_PAGE = schema(
    "CrawlFailurePage",
    {
        "type": "object",
        "required": ["errors", "next"],
        "properties": {
            "errors": {"type": "array", "items": FAILURE},
            "next": {
                "type": ["string", "null"],
                "description": "pass as `cursor` for the next page; null on the last page",
            },
        },
    },
)


def _text(longest: int) -> dict[str, object]:
    return {"type": "string", "maxLength": longest, "pattern": "^[^\\u0000]*$"}


def _text_arg(name: str, longest: int) -> str | None:
    text = request.args.get(name)
    if text is None or text == "":
        return None
    if len(text) > longest:
        raise ApiError(400, "invalid_parameter", f"{name} is at most {longest} characters")
    if "\x00" in text:  # no database stores it in a string (PostgreSQL refuses it)
        raise ApiError(400, "invalid_parameter", f"{name} must not contain NUL characters")
    return text


def _cursor_arg() -> int:
    text = request.args.get("cursor")
    if text is None:
        return 0
    if not _CURSOR.match(text):
        raise ApiError(400, "invalid_parameter", f"cursor must be a `next` value, not {text!r}")
    return int(text)


def errors_blueprint(app: str) -> Blueprint:
    """The blueprint serving `app`'s failed items at `/api/<app>/errors`."""
    blueprint = Blueprint(f"{app}_errors", __name__)

    @blueprint.get(f"/api/{app}/errors")
    @operation(
        f"Failed {app} items",
        description="Each failed item with its last failure: reason code, message, "
        "attempts, first and last failure time. Resolved items (a retry succeeded) are "
        "not listed. Keyset-paged: follow `next` as `cursor`.",
        tags=(app,),
        params=(
            Param("crawl", "query", _text(MAX_CRAWL), "only this crawl (its id)"),
            Param("reason", "query", _text(MAX_REASON), "only this reason"),
            LIMIT.param,
            Param(
                "cursor",
                "query",
                {"type": "string", "pattern": _CURSOR.pattern},
                "the `next` of the previous page",
            ),
        ),
        responses={200: json_response("one page of failed items", FAILURE_PAGE)},
        errors=(400, 404),
    )
    def errors() -> Response:
        run = _text_arg("crawl", MAX_CRAWL)
        reason = _text_arg("reason", MAX_REASON)
        limit = LIMIT.read()
        after = _cursor_arg()
        with current_services().engine.connect() as conn:
            if run is not None and not run_exists(conn, app, run):
                raise ApiError(404, "crawl_not_found", f"no {app} crawl with id {run!r}")
            rows = page(conn, app, run=run, reason=reason, after=after, limit=limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        return jsonify(
            {
                "errors": [f.as_json() for f in rows],
                "next": str(rows[-1].id) if more else None,
            }
        )

    return blueprint
