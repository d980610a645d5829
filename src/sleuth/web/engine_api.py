"""`/api/engine/*`: the job engine as JSON — queues, workers, per-stage timings, dead letters,
and the apps' live events.

The same data as `sleuth queues`, `workers`, `metrics` and `dead-letter list`, read-only: a
web page must not be able to redrive or drop jobs while the API has no authentication."""

from __future__ import annotations

import re
import time
from typing import Any

from flask import Blueprint, Response, jsonify, request

from sleuth.observe.events import START, EventIdError, live_events
from sleuth.observe.metrics import OUTCOMES, merged_stages
from sleuth.observe.registry import (
    dead_job_dict,
    list_workers,
    live_consumers,
    queue_stats_dict,
)
from sleuth.record import TIME
from sleuth.timefmt import iso_utc
from sleuth.web.context import current_services
from sleuth.web.errors import ApiError
from sleuth.web.openapi import Param, json_response, object_schema, operation, schema
from sleuth.web.params import BOOLEAN_SCHEMA, PageLimit, bool_arg

# The Flask name stays "engine": it prefixes endpoint and OpenAPI operation ids
# (`engine_queues`) that clients generated from the document rely on.
engine_api = Blueprint("engine", __name__, url_prefix="/api/engine")

DEAD_LIMIT = PageLimit(100, 1000, "how many of the newest")
EVENT_LIMIT = PageLimit(100, 1000)
CHANNEL = re.compile(r"^[a-z][a-z0-9_]{0,63}$")  # an app's name
_TIME = dict(TIME.schema)
_SECONDS = {"type": ["number", "null"], "description": "seconds; null when nothing was timed"}
_COUNT = {"type": "integer", "minimum": 0}


QUEUE_STATS = schema(
    "EngineQueues",
    object_schema(
        {
            "queues": {
                "type": "array",
                "description": "one entry per (queue, priority), highest priority first",
                "items": object_schema(
                    {
                        "queue": {"type": "string"},
                        "priority": {"type": "integer"},
                        "ready": _COUNT,
                        "delayed": _COUNT,
                        "in_flight": _COUNT,
                        "dead": _COUNT,
                        "oldest_ready_age": {
                            "type": ["number", "null"],
                            "description": "seconds the oldest ready job has waited",
                        },
                        "next_due_in": {
                            "type": ["number", "null"],
                            "description": "seconds until the soonest delayed job is due",
                        },
                        "in_flight_by_consumer": {
                            "type": "object",
                            "additionalProperties": _COUNT,
                            "description": "worker (consumer) name → jobs it holds",
                        },
                    }
                ),
            },
            "generated_at": _TIME,
        }
    ),
)
WORKER = schema(
    "EngineWorker",
    object_schema(
        {
            "consumer": {"type": "string"},
            "state": {"enum": ["live", "lost", "stopped"]},
            "host": {"type": "string"},
            "pid": {"type": "integer"},
            "version": {"type": "string"},
            "queues": {"type": "array", "items": {"type": "string"}},
            "started_at": _TIME,
            "heartbeat_at": _TIME,
            "heartbeat_age": {"type": "number"},
            "heartbeat_interval": {"type": "number"},
            "stopped_at": {"type": ["string", "null"], "format": "date-time"},
            "loop_lag": {
                "type": "number",
                "description": "seconds its event loop had not run at the last heartbeat",
            },
            "loop_blocked": {"type": "boolean"},
            "current": {
                "type": "array",
                "description": "the jobs it runs now, oldest first",
                "items": object_schema(
                    {
                        "job_id": {"type": "string"},
                        "queue": {"type": "string"},
                        "since": _TIME,
                        "running_for": {"type": "number"},
                    }
                ),
            },
        }
    ),
)
WORKERS_ANSWER = schema(
    "EngineWorkers",
    object_schema(
        {
            "workers": {
                "type": "array",
                "description": "live first, then lost, then stopped",
                "items": WORKER,
            },
            "generated_at": _TIME,
        }
    ),
)
METRICS_ANSWER = schema(
    "EngineMetrics",
    object_schema(
        {
            "stages": {
                "type": "array",
                "items": object_schema(
                    {
                        "queue": {"type": "string"},
                        "count": {**_COUNT, "description": "jobs timed"},
                        "errors": {**_COUNT, "description": "retried or dead-lettered"},
                        "p50": _SECONDS,
                        "p90": _SECONDS,
                        "p99": _SECONDS,
                        "max": _SECONDS,
                        "mean": _SECONDS,
                        "outcomes": object_schema({name: _COUNT for name in OUTCOMES}),
                        "workers": {**_COUNT, "description": "workers whose timings merged"},
                    }
                ),
            },
            "generated_at": _TIME,
        }
    ),
)
DEAD_LETTERS_ANSWER = schema(
    "EngineDeadLetters",
    object_schema(
        {
            "dead_letters": {
                "type": "array",
                "description": "newest first",
                "items": object_schema(
                    {
                        "id": {"type": "string"},
                        "queue": {"type": "string"},
                        "attempts": _COUNT,
                        "summary": {"type": "string", "description": "the reason's first line"},
                        "reason": {"type": "string"},
                        "failed_at": _TIME,
                        "payload": {"type": "object"},
                    }
                ),
            },
            "generated_at": _TIME,
        }
    ),
)
QUEUE_PARAM = Param("queue", "query", {"type": "string"}, "only this queue")


def _queue_arg() -> str | None:
    return request.args.get("queue") or None


def _answer(key: str, items: list[Any]) -> Response:
    response = jsonify({key: items, "generated_at": iso_utc(time.time())})
    response.headers["Cache-Control"] = "no-store"
    return response


@engine_api.get("/queues")
@operation(
    "Jobs per queue and priority",
    tags=("engine",),
    responses={
        200: json_response("ready, delayed, in flight per worker, dead, oldest", QUEUE_STATS)
    },
)
def queues() -> Response:
    stats = current_services().queue.stats()
    return _answer("queues", [queue_stats_dict(s) for s in stats])


@engine_api.get("/workers")
@operation(
    "Workers on every machine and what they are doing now",
    tags=("engine",),
    params=(Param("all", "query", BOOLEAN_SCHEMA, "include stopped workers"),),
    responses={200: json_response("the registered workers", WORKERS_ANSWER)},
    errors=(400,),
)
def workers() -> Response:
    include_stopped = bool_arg("all")
    now = time.time()
    with current_services().engine.connect() as conn:
        found = list_workers(conn, now, include_stopped=include_stopped)
    return _answer("workers", [w.to_dict(now) for w in found])


@engine_api.get("/metrics")
@operation(
    "Job durations per stage, merged over the workers",
    description="Durations run from a job's start to its outcome being recorded. Percentiles "
    "come from log-bucket histograms merged exactly; each is within about 2.2% of the true "
    "value (the max is exact).",
    tags=("engine",),
    params=(
        QUEUE_PARAM,
        Param(
            "live",
            "query",
            BOOLEAN_SCHEMA,
            "only workers running now (else every registered worker)",
        ),
    ),
    responses={200: json_response("one entry per queue", METRICS_ANSWER)},
    errors=(400,),
)
def metrics() -> Response:
    live = bool_arg("live")
    with current_services().engine.connect() as conn:
        consumers = live_consumers(conn) if live else None
        stages = merged_stages(conn, _queue_arg(), consumers)
    return _answer("stages", [s.to_dict() for s in stages])


@engine_api.get("/dead-letters")
@operation(
    "Jobs that failed for good",
    tags=("engine",),
    params=(
        QUEUE_PARAM,
        DEAD_LIMIT.param,
    ),
    responses={200: json_response("newest first", DEAD_LETTERS_ANSWER)},
    errors=(400,),
)
def dead_letters() -> Response:
    limit = DEAD_LIMIT.read()
    found = current_services().queue.dead_letters(_queue_arg(), limit)
    return _answer("dead_letters", [dead_job_dict(d) for d in found])


EVENTS_ANSWER = schema(
    "EngineEvents",
    object_schema(
        {
            "channel": {"type": "string"},
            "events": {
                "type": "array",
                "description": "oldest first",
                "items": object_schema({"id": {"type": "string"}, "data": {"type": "object"}}),
            },
            "last": {
                "type": "string",
                "description": "the id to ask `after` next time (`after` itself when none came)",
            },
            "generated_at": _TIME,
        }
    ),
)


@engine_api.get("/events/<channel>")
@operation(
    "Live events of a channel (an app's name): what its jobs have just stored",
    description="The same events other programs read from the Redis Stream when the queue is "
    "on Redis. Poll with `after` set to the last answer's `last`; events older than the newest "
    "10,000 of a channel are gone.",
    tags=("engine",),
    params=(
        Param("channel", "path", {"type": "string", "pattern": CHANNEL.pattern}, "the channel"),
        Param(
            "after",
            "query",
            {"type": "string", "pattern": r"^[0-9]{1,20}(-[0-9]{1,20})?$", "default": START},
            "only the events after this id",
        ),
        EVENT_LIMIT.param,
    ),
    responses={200: json_response("the events after `after`", EVENTS_ANSWER)},
    errors=(400,),
)
def events(channel: str) -> Response:
    if not CHANNEL.fullmatch(channel):
        raise ApiError(400, "invalid_parameter", f"no channel is named {channel!r}")
    after = request.args.get("after", START)
    limit = EVENT_LIMIT.read()
    try:
        found = live_events(current_services().queue).read(channel, after, limit)
    except EventIdError as exc:
        raise ApiError(400, "invalid_parameter", f"after: {exc}") from None
    response = jsonify(
        {
            "channel": channel,
            "events": [{"id": e.id, "data": e.data} for e in found],
            "last": found[-1].id if found else after,
            "generated_at": iso_utc(time.time()),
        }
    )
    response.headers["Cache-Control"] = "no-store"
    return response
