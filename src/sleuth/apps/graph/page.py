"""The graph crawl's live monitor, as Twittomatic's: `GET /api/graph/monitor` (the figures of
`monitor.snapshot` as JSON) and `GET /graph`, a page rendered with the same figures whose
script asks the JSON again every `REFRESH_MS` and redraws them, without reloading; its form
searches the collected posts through `GET /api/graph/posts`."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, render_template, url_for

from sleuth.apps.graph.app import QUEUES
from sleuth.apps.graph.monitor import ITEM_OPERATIONS, snapshot
from sleuth.record import TIME
from sleuth.web.context import current_services
from sleuth.web.engine_api import WORKER
from sleuth.web.openapi import ResponseSpec, json_response, object_schema, operation, schema

REFRESH_MS = 2000
_TIME = dict(TIME.schema)
_COUNT = {"type": "integer", "minimum": 0}
_OPTIONAL_TIME = {"type": ["string", "null"], "format": "date-time"}
_OPTIONAL_INT = {"type": ["integer", "null"]}


def _per_operation(value: dict[str, Any], description: str) -> dict[str, Any]:
    return object_schema(dict.fromkeys(ITEM_OPERATIONS, value), description)


MONITOR = schema(
    "GraphMonitor",
    object_schema(
        {
            "frontier": object_schema(
                {
                    "items": {
                        **_COUNT,
                        "description": "items of graph runs waiting for their "
                        "outcome: accounts found and not yet expanded, and lists to analyse",
                    },
                    "by_operation": _per_operation(_COUNT, "those items per operation"),
                    "queues": object_schema(
                        {
                            q: object_schema(
                                {
                                    "ready": _COUNT,
                                    "delayed": _COUNT,
                                    "in_flight": _COUNT,
                                    "dead": _COUNT,
                                }
                            )
                            for q in QUEUES
                        },
                        "each graph queue's jobs, summed over priorities",
                    ),
                }
            ),
            "rates": object_schema(
                {
                    "window": {"type": "number", "description": "seconds measured over"},
                    "by_operation": _per_operation(
                        object_schema({"settled": _COUNT, "per_second": {"type": "number"}}),
                        "items given their outcome (or failed) in the window, and per second",
                    ),
                }
            ),
            "workers": {
                "type": "array",
                "description": "workers serving a graph queue, not stopped: live, then lost",
                "items": WORKER,
            },
            "errors_by_reason": {
                "type": "object",
                "description": "unresolved failed items of graph runs per reason code",
                "additionalProperties": {"type": "integer", "minimum": 1},
            },
            "budgets": {
                "type": "array",
                "description": "each rate-limit budget the workers share, by host and source",
                "items": object_schema(
                    {
                        "host": {"type": "string"},
                        "source": {"type": "string", "description": "local address; '' default"},
                        "limit": _OPTIONAL_INT,
                        "remaining": {
                            **_OPTIONAL_INT,
                            "description": "now (a window past its reset is whole again)",
                        },
                        "reset_at": {**_OPTIONAL_TIME, "description": "the window's end"},
                        "reset_in": {"type": ["number", "null"], "description": "seconds"},
                        "blocked_until": {**_OPTIONAL_TIME, "description": "a 429's wait"},
                        "updated_at": _TIME,
                    }
                ),
            },
            "graph": object_schema({"nodes": _COUNT, "edges": _COUNT, "posts": _COUNT}),
            "generated_at": _TIME,
        }
    ),
)


def monitor_blueprint() -> Blueprint:
    blueprint = Blueprint(
        "graph_monitor",
        __name__,
        template_folder="templates",
        static_folder="static",
        static_url_path="/graph/static",
    )

    @blueprint.get("/api/graph/monitor")
    @operation(
        "The graph crawl's live figures",
        description="Frontier size, jobs per second per operation, workers and their "
        "heartbeats, failures by reason and rate-limit budgets, read now from the database "
        "and the queue.",
        tags=("graph",),
        responses={200: json_response("the figures", MONITOR)},
    )
    def monitor_json() -> Response:
        response = jsonify(snapshot(current_services()))
        response.headers["Cache-Control"] = "no-store"
        return response

    @blueprint.get("/graph")
    @operation(
        "The graph crawl's live monitor page",
        description=f"An HTML page of `/api/graph/monitor`'s figures, asked again every "
        f"{REFRESH_MS / 1000:g} s, and a search of the collected posts (`/api/graph/posts`).",
        tags=("graph",),
        responses={200: ResponseSpec("the page", {"text/html": {"type": "string"}})},
    )
    def monitor_page() -> Response:
        page = render_template(
            "graph.html",
            data=snapshot(current_services()),
            operations=ITEM_OPERATIONS,
            json_url=url_for("graph_monitor.monitor_json"),
            posts_url=url_for("graph_lookup.posts"),
            refresh=REFRESH_MS,
            script=url_for("graph_monitor.static", filename="graph.js"),
        )
        return Response(page, mimetype="text/html")

    return blueprint
