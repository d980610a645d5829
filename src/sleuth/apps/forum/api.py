"""potstats2's JSON API, over the forum app's statistics: `/api/forum/...`, and the same views
under `/potstats2/api/...` so potstats2's own frontend works when pointed at sleuth.

The endpoints, parameters, defaults and shapes are potstats2's (`/boards`, `/poster-stats` with
keyset paging, `/weekday-stats`, `/hourly-stats`, `/year-over-year-stats`, `/daily-stats`,
`/poster-development` (+ CSV), `/social-graph`, `/user-domains`, `/domains`), as are its errors:
HTTP 400 `{"error": "..."}`, e.g. `Missing request argument uid`. Beyond potstats2: `site` picks
one of several crawled forums (needed only when there are several), `bid`/`year` apply
everywhere, `/thread-stats` gives time to first response and thread lifetimes. Every answer
is cached (`cache.py`; `X-Cache: hit|miss` says which) and carries an ETag; a matching
`If-None-Match` gets a 304.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Response, current_app, request, url_for
from sqlalchemy import Connection

from sleuth.apps.forum import stats
from sleuth.apps.forum.app import NAME
from sleuth.apps.forum.cache import AnswerCache, LocalCache, RedisCache, cache_key, encode, etag
from sleuth.apps.forum.markup import KINDS
from sleuth.apps.forum.models import forum_sites, forum_stats_versions, forum_thread_versions
from sleuth.jobs.redis import RedisQueue
from sleuth.web.context import current_services
from sleuth.web.openapi import Param, ResponseSpec, json_response, operation, schema

CACHE_KEY = "sleuth.forum.cache"
MAX_LIMIT = 99_999
_INTEGER = re.compile(r"-?[0-9]{1,18}")
_NUMBER = re.compile(r"-?[0-9]{1,15}(\.[0-9]{1,15})?")


class BadArgument(Exception):
    """A request argument potstats2 would refuse: its message is the answer's `error`."""

    status = 400


class NoForum(BadArgument):
    """No such crawled forum (or none at all): the answer's `error`, with a 404."""

    status = 404


def create_blueprint(name: str, prefix: str) -> Blueprint:
    """The API's views under `prefix` (registered twice: native and potstats2's paths)."""
    blueprint = Blueprint(name, __name__, url_prefix=prefix)
    blueprint.register_error_handler(BadArgument, _bad_argument)
    blueprint.add_url_rule("/", "index", index)
    for path, view in VIEWS.items():
        blueprint.add_url_rule(path, view.__name__.replace("_", "-"), view)
    return blueprint


def _bad_argument(exc: BadArgument) -> Response:
    response = Response(encode({"error": str(exc)}), exc.status, mimetype="application/json")
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


# -- arguments --------------------------------------------------------------------------------


def _int(name: str, default: int | None = None, *, low: int = 0, high: int = 2**62) -> int | None:
    text = request.args.get(name)
    if text is None:
        return default
    if not _INTEGER.fullmatch(text) or not low <= int(text) <= high:
        raise BadArgument(
            f"Malformed request argument {name}: an integer from {low} to {high}, not {text!r}"
        )
    return int(text)


def _required_int(name: str) -> int:
    value = _int(name)
    if value is None:
        raise BadArgument(f"Missing request argument {name}")
    return value


def _scope(conn: Connection) -> stats.Scope:
    return stats.Scope(_site(conn), _int("year", low=1970, high=9999), _int("bid"))


def _site(conn: Connection) -> int:
    site = _int("site", low=1)
    sites = [
        int(s)
        for s in conn.execute(sa.select(forum_sites.c.id).order_by(forum_sites.c.id)).scalars()
    ]
    if site is None:
        if len(sites) == 1:
            return sites[0]
        if not sites:
            raise NoForum("No forum has been crawled yet: run `sleuth forum crawl URL`")
        raise BadArgument(f"Missing request argument site (one of {sites})")
    if site not in sites:
        raise NoForum(f"No crawled forum {site} (crawled: {sites})")
    return site


def _limit(default: int = 1000) -> int:
    return int(_int("limit", default, low=1, high=MAX_LIMIT) or default)


def _link_type() -> str | None:
    kind = request.args.get("type")
    if kind is not None and kind not in KINDS:
        raise BadArgument(f"Invalid link type '{kind}' (choose from {list(KINDS)})")
    return kind


# -- caching ----------------------------------------------------------------------------------


def _cache() -> AnswerCache:
    app = current_app
    cache: AnswerCache | None = app.extensions.get(CACHE_KEY)
    if cache is None:
        services = current_services()
        queue = services.queue
        if isinstance(queue, RedisQueue):
            cache = RedisCache(queue.redis, queue.target.prefix)
        else:
            cache = LocalCache(services.settings.app(NAME).cache_bytes)
        app.extensions[CACHE_KEY] = cache
    return cache


def _version(conn: Connection, site: int, year: int | None, table: sa.Table) -> int:
    version = conn.execute(
        sa.select(table.c.version).where((table.c.site_id == site) & (table.c.year == (year or 0)))
    ).scalar()
    return int(version or 0)


def _answer(
    compute: Callable[[Connection, stats.Scope], Any],
    *,
    versions: sa.Table = forum_stats_versions,
) -> Response:
    """The view's answer from the cache, or computed and cached (keyed by the `versions` of
    what it read); 304 when the client has it."""
    with current_services().engine.connect() as conn:
        scope = _scope(conn)
        arguments = list(request.args.items(multi=True))
        key = cache_key(
            request.path, arguments, scope.site, _version(conn, scope.site, scope.year, versions)
        )
        cache = _cache()
        body = cache.get(key)
        hit = body is not None
        if body is None:
            body = encode(compute(conn, scope))
            cache.put(key, body)
    tag = etag(body)
    if request.if_none_match.contains_weak(tag):
        response = Response(status=304)
    else:
        response = Response(body, mimetype="application/json")
    response.set_etag(tag)
    response.headers["X-Cache"] = "hit" if hit else "miss"
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


# -- schemas ----------------------------------------------------------------------------------

P2_ERROR = schema(
    "Potstats2Error",
    {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
)
USER = schema(
    "ForumUser",
    {
        "type": "object",
        "required": ["name", "uid"],
        "properties": {"name": {"type": "string"}, "uid": {"type": "integer"}},
    },
)
NUMBERS_PROPERTIES = {
    "post_count": {"type": "integer"},
    "edit_count": {"type": "integer"},
    "avg_post_length": {"type": "number"},
    "threads_created": {"type": "integer"},
}
NUMBERS = schema(
    "ForumNumbers",
    {"type": "object", "required": list(NUMBERS_PROPERTIES), "properties": NUMBERS_PROPERTIES},
)
BY_TIME = schema(
    "ForumNumbersByTime",
    {
        "type": "object",
        "required": ["rows"],
        "properties": {"rows": {"type": "object", "additionalProperties": NUMBERS}},
    },
)
_ID = {"type": "string", "pattern": r"^[0-9]{1,18}$"}
SCOPE = (
    Param(
        "site",
        "query",
        {"type": "string", "pattern": r"^[1-9][0-9]{0,17}$"},
        "the crawled forum (needed only when there are several)",
    ),
    Param(
        "year",
        "query",
        {"type": "string", "pattern": r"^(19[7-9][0-9]|[2-9][0-9]{3})$"},
        "only posts of this year (UTC)",
    ),
    Param("bid", "query", _ID, "only posts in topics of this board"),
)
LIMIT = Param(
    "limit",
    "query",
    {"type": "string", "pattern": r"^[1-9][0-9]{0,4}$"},
    f"at most this many rows, up to {MAX_LIMIT} (default 1000)",
)
LINK_TYPE = Param(
    "type",
    "query",
    {"type": "string", "enum": list(KINDS)},
    "only links of this kind; all if absent",
)
BAD = ResponseSpec("a bad argument", {"application/json": P2_ERROR})
NO_FORUM = ResponseSpec("no such crawled forum, or none yet", {"application/json": P2_ERROR})
NOT_MODIFIED = ResponseSpec("the client's copy (If-None-Match) is current")


def _doc(summary: str, body: Any, params: tuple[Param, ...] = SCOPE) -> Callable[[Any], Any]:
    return operation(
        summary,
        tags=("forum",),
        params=params,
        responses={
            200: json_response("the statistics", body),
            304: NOT_MODIFIED,
            400: BAD,
            404: NO_FORUM,
        },
    )


def _rows(items: Any) -> dict[str, Any]:
    return {"type": "object", "required": ["rows"], "properties": {"rows": items}}


# -- views ------------------------------------------------------------------------------------


@operation(
    "potstats2: the API's endpoints",
    tags=("forum",),
    responses={
        200: json_response(
            "their URLs",
            {
                "type": "object",
                "required": ["apis"],
                "properties": {"apis": {"type": "array", "items": {"type": "string"}}},
            },
        )
    },
)
def index() -> Response:
    endpoint = request.blueprint
    urls = [url_for(f"{endpoint}.{v.__name__.replace('_', '-')}") for v in VIEWS.values()]
    return Response(encode({"apis": urls}), mimetype="application/json")


@_doc(
    "potstats2: the boards with their threads and posts",
    {
        "type": "object",
        "additionalProperties": {
            "type": "object",
            "required": ["name", "description", "thread_count", "post_count"],
            "properties": {
                "name": {"type": "string"},
                "description": {"type": "string"},
                "thread_count": {"type": "integer"},
                "post_count": {"type": "integer"},
            },
        },
    },
    SCOPE[:1],
)
def boards() -> Response:
    return _answer(lambda conn, scope: stats.boards(conn, scope.site))


_ORDER = Param("order_by", "query", {"type": "string", "enum": ["asc", "desc"]}, "default desc")
_COLUMN = Param(
    "order_by_column",
    "query",
    {"type": "string", "enum": list(stats.ORDER_COLUMNS)},
    "default post_count",
)
_AFTER = (
    Param(
        "following_ob",
        "query",
        {"type": "string", "pattern": r"^-?[0-9]{1,15}(\.[0-9]{1,15})?$"},
        "keyset: the sort value of the last row seen (alone: rows past this value)",
    ),
    Param(
        "following_uid",
        "query",
        _ID,
        "keyset: the uid of the last row seen (alone: rows past this user's own row)",
    ),
)


@_doc(
    "potstats2: users by posts, edits, post length or threads started; keyset pages",
    {
        "type": "object",
        "required": ["rows", "next"],
        "properties": {
            "rows": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["user", *NUMBERS_PROPERTIES],
                    "properties": {"user": USER, **NUMBERS_PROPERTIES},
                },
            },
            "next": {
                "description": "the arguments of the next page; null on the last",
                "anyOf": [
                    {"type": "null"},
                    {
                        "type": "object",
                        "required": ["following_ob", "following_uid"],
                        "properties": {
                            "following_ob": {"type": "number"},
                            "following_uid": {"type": "integer"},
                        },
                    },
                ],
            },
        },
    },
    (*SCOPE, LIMIT, _ORDER, _COLUMN, *_AFTER),
)
def poster_stats() -> Response:
    order = request.args.get("order_by", "desc")
    if order not in ("asc", "desc"):
        raise BadArgument(f"Invalid order_by: {order}")
    column = request.args.get("order_by_column", "post_count")
    if column not in stats.ORDER_COLUMNS:
        raise BadArgument(f"Invalid order_by_column: {column}")
    limit = _limit()
    after = _after()

    def compute(conn: Connection, scope: stats.Scope) -> dict[str, Any]:
        rows, following = stats.poster_stats(
            conn, scope, order_by=column, descending=order == "desc", limit=limit, after=after
        )
        nxt = None
        if following is not None:
            nxt = {"following_ob": following.value, "following_uid": following.uid}
        return {"rows": rows, "next": nxt}

    return _answer(compute)


def _after() -> stats.After | None:
    value, uid = request.args.get("following_ob"), _int("following_uid")
    if value is None and uid is None:
        return None
    if value is not None and not _NUMBER.fullmatch(value):
        raise BadArgument(f"Malformed request argument following_ob: a number, not {value!r}")
    return stats.After(None if value is None else float(value), uid)


@_doc("potstats2: posts, edits, length and threads by ISO weekday (1 Monday)", BY_TIME)
def weekday_stats() -> Response:
    return _answer(lambda conn, scope: {"rows": stats.weekday_stats(conn, scope)})


@_doc("potstats2: the same by week of the year, weekday and hour (WW:D:HH, UTC)", BY_TIME)
def hourly_stats() -> Response:
    return _answer(lambda conn, scope: {"rows": stats.hourly_stats(conn, scope)})


@_doc("potstats2: the same by year", BY_TIME)
def year_over_year_stats() -> Response:
    return _answer(lambda conn, scope: {"rows": stats.year_stats(conn, scope)})


@_doc("potstats2: the same by day (YYYY-MM-DD, UTC)", BY_TIME)
def daily_stats() -> Response:
    return _answer(lambda conn, scope: {"rows": stats.daily_stats(conn, scope)})


_UID = Param("uid", "query", _ID, "the user", required=True)
_FORMAT = Param("format", "query", {"type": "string", "enum": ["json", "csv"]}, "json or csv")


@operation(
    "potstats2: one user's posts, edits, length and threads by month (JSON or CSV)",
    tags=("forum",),
    params=(*SCOPE, _UID, _FORMAT),
    responses={
        200: ResponseSpec(
            "the user's months",
            {
                "application/json": {
                    "type": "object",
                    "required": ["user", "rows"],
                    "properties": {
                        "user": USER,
                        "rows": {"type": "object", "additionalProperties": NUMBERS},
                    },
                },
                "text/csv": {"type": "string"},
            },
        ),
        304: NOT_MODIFIED,
        400: BAD,
        404: NO_FORUM,
    },
)
def poster_development() -> Response:
    uid = _required_int("uid")
    form = request.args.get("format", "json")
    if form not in ("json", "csv"):
        raise BadArgument(f"Malformed request argument format: json or csv, not {form!r}")

    def compute(conn: Connection, scope: stats.Scope) -> dict[str, Any]:
        names = stats.names_of(conn, scope.site, [uid])
        months = stats.poster_development(conn, scope, uid)
        return {"user": stats.user(uid, names), "rows": months}

    answer = _answer(compute)
    if form == "csv" and answer.status_code == 200:
        return _as_csv(answer)
    return answer


def _as_csv(answer: Response) -> Response:
    data = answer.get_json()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["month", *NUMBERS_PROPERTIES])
    for month, numbers in data["rows"].items():
        writer.writerow([month, *(numbers[k] for k in NUMBERS_PROPERTIES)])
    response = Response(out.getvalue(), mimetype="text/csv")
    for header in ("ETag", "X-Cache", "Cache-Control", "Access-Control-Allow-Origin"):
        response.headers[header] = answer.headers[header]
    return response


_PAIR_KIND = Param(
    "kind",
    "query",
    {"type": "string", "enum": list(stats.PAIR_KINDS)},
    "only quotes or only replies; both if absent (bB has only quotes)",
)


@_doc(
    "potstats2: who quotes whom (and on Discourse, answers whom), most first",
    _rows(
        {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["from", "to", "count", "intensity"],
                "properties": {
                    "from": USER,
                    "to": USER,
                    "count": {"type": "integer"},
                    "intensity": {"type": "number"},
                },
            },
        }
    ),
    (*SCOPE, LIMIT, _PAIR_KIND),
)
def social_graph() -> Response:
    limit = _limit()
    kind = request.args.get("kind")
    if kind is not None and kind not in stats.PAIR_KINDS:
        raise BadArgument(f"Invalid kind '{kind}' (choose from {list(stats.PAIR_KINDS)})")
    return _answer(
        lambda conn, scope: {"rows": stats.social_graph(conn, scope, limit=limit, kind=kind)}
    )


@_doc(
    "potstats2: how often each user linked each domain, most first",
    _rows(
        {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["user", "domain", "count"],
                "properties": {
                    "user": USER,
                    "domain": {"type": "string"},
                    "count": {"type": "integer"},
                },
            },
        }
    ),
    (*SCOPE, LIMIT, LINK_TYPE),
)
def user_domains() -> Response:
    limit, kind = _limit(), _link_type()
    return _answer(
        lambda conn, scope: {"rows": stats.user_domains(conn, scope, kind=kind, limit=limit)}
    )


@_doc(
    "potstats2: how often each domain was linked, most first",
    _rows(
        {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["count", "domain"],
                "properties": {"count": {"type": "integer"}, "domain": {"type": "string"}},
            },
        }
    ),
    (*SCOPE, LIMIT, LINK_TYPE),
)
def domains() -> Response:
    limit, kind = _limit(), _link_type()
    return _answer(lambda conn, scope: {"rows": stats.domains(conn, scope, kind=kind, limit=limit)})


_SUMMARY = {
    "type": "object",
    "required": ["count", "median_seconds", "mean_seconds"],
    "properties": {
        "count": {"type": "integer"},
        "median_seconds": {"type": ["number", "null"]},
        "mean_seconds": {"type": ["number", "null"]},
    },
}


@_doc(
    "Time to first response and thread lifetime of the threads started in the scope",
    {
        "type": "object",
        "required": ["threads", "first_response", "lifetime"],
        "properties": {
            "threads": {"type": "integer"},
            "first_response": _SUMMARY,
            "lifetime": _SUMMARY,
        },
    },
)
def thread_stats() -> Response:
    return _answer(stats.thread_stats, versions=forum_thread_versions)


VIEWS: dict[str, Callable[[], Response]] = {
    "/boards": boards,
    "/poster-stats": poster_stats,
    "/weekday-stats": weekday_stats,
    "/hourly-stats": hourly_stats,
    "/year-over-year-stats": year_over_year_stats,
    "/daily-stats": daily_stats,
    "/poster-development": poster_development,
    "/social-graph": social_graph,
    "/user-domains": user_domains,
    "/domains": domains,
    "/thread-stats": thread_stats,
}


def blueprints() -> list[Blueprint]:
    return [
        create_blueprint("forum_api", "/api/forum"),
        create_blueprint("potstats2", "/potstats2/api"),
    ]
