"""AOTF's HTTP API, served by sleuth, so that AOTF's own web page and Python client work
against it unchanged: `/query`, `/search`, `/stats` and `/config` with AOTF's fields, types
(ids as strings), statuses, error codes and limits.

They are mounted under `/aotf` (point AOTF's client at `http://HOST/aotf/`, as it would be
at `https://HOST/api/` behind AOTF's usual reverse proxy), because sleuth's own `/search`
is the images app's page. Limits, as AOTF had them: one request a second per address on
`/query` and `/search` (a refused one does not restart the second; HTTP 429 with AOTF's text
body), at most `max_processing_per_ip` unfinished requests per address, `/search` only from
`advanced_ips`, URLs up to 256 characters, uploads up to 20 MiB; `unlimited_ips` skip the
per-address limits. The client's address is the one `web.trusted_proxies` vouch for."""

from __future__ import annotations

import threading
import time
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import Blueprint, Response, current_app, jsonify, request

from sleuth.apps.finder import requests as reqs
from sleuth.apps.finder.models import accounts, images, posts
from sleuth.apps.finder.settings import FinderSettings, finder_settings
from sleuth.apps.finder.tasks import LINK, SCAN_QUEUE, SEARCH, RequestJob
from sleuth.web.app import body_limit
from sleuth.web.context import current_services
from sleuth.web.openapi import Param, RequestBody, ResponseSpec, json_response, operation

blueprint = Blueprint("finder_aotf", __name__, url_prefix="/aotf")

QUERY_BLOB = "fquery"  # the uploaded image of a search, kept until the search ends
STATS_CACHE_SECONDS = 3.0  # as AOTF cached /stats

_ID = {"type": "string"}
ANSWER: dict[str, Any] = {
    "type": "object",
    "required": ["status", "has_first_time_scan", "twitter_accounts", "results", "error"],
    "properties": {
        "status": {"type": ["string", "null"], "enum": [*reqs.STATUSES, None]},
        "has_first_time_scan": {"type": "boolean"},
        "twitter_accounts": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["account_name", "account_id"],
                "properties": {
                    "account_name": {"type": "string"},
                    "account_id": _ID,
                    "network": {"type": "string"},
                    "url": {"type": "string"},
                },
            },
        },
        "results": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["tweet_id", "account_id", "image_position", "distance"],
                "properties": {
                    "tweet_id": _ID,
                    "account_id": _ID,
                    "image_position": {"type": "string", "pattern": "^[0-9]+/[0-9]+$"},
                    "distance": {"type": "integer", "minimum": 0, "maximum": 64},
                    "network": {"type": "string"},
                    "post_url": {"type": "string"},
                    "mirrored": {"type": "boolean"},
                    "media_url": {"type": "string"},
                },
            },
        },
        "error": {"type": ["string", "null"], "enum": [*sorted(reqs.ERRORS), None]},
        "identifier": {"type": ["string", "null"]},
    },
}
TOO_MANY = ResponseSpec("more than one request a second from this address", {"text/plain": {}})
STATS: dict[str, Any] = {
    "type": "object",
    "properties": {
        name: {"type": "integer", "minimum": 0}
        for name in (
            "indexed_tweets_count",
            "indexed_accounts_count",
            "processing_user_requests_count",
            "processing_scan_requests_count",
            "pending_tweets_count",
        )
    },
}
CONFIG: dict[str, Any] = {
    "type": "object",
    "properties": {
        "limit_per_ip_address": {"type": "integer"},
        "ip_can_bypass_limit": {"type": "boolean"},
        "ip_can_use_advanced": {"type": "boolean"},
        "update_accounts_frequency": {"type": "number"},
        "max_illust_url_size": {"type": "integer"},
    },
}


@blueprint.after_request
def _cors(response: Response) -> Response:
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


def _client() -> str:
    return request.remote_addr or ""


def _too_many() -> Response:
    return Response("429 Too Many Requests", status=429, mimetype="text/plain")


def _read_posted_url(cfg: FinderSettings) -> tuple[str | None, str | None]:
    """(URL, error code) from a text/plain body. A body over four bytes a character of the
    limit is not decoded; the whole body is read either way (a proxy in front answers 502
    to a server that stops reading)."""
    cap = cfg.max_url_length * 4
    head = request.stream.read(cap + 1)
    while request.stream.read(65536):
        pass
    if len(head) > cap:
        return None, "URL_TOO_LONG"
    try:
        text = head.decode("utf-8").strip()
    except UnicodeDecodeError:
        return None, "NOT_AN_URL"
    return (text, None) if text else (None, "NO_URL_FIELD")


def checked_url(url: str | None, cfg: FinderSettings) -> str | None:
    """The error code of a query URL, or None when it can be looked at."""
    if url is None or not url.strip():
        return "NO_URL_FIELD"
    if len(url) > cfg.max_url_length:
        return "URL_TOO_LONG"
    if any(ord(c) < 0x20 or c == "\x7f" for c in url.strip()):
        return "NOT_AN_URL"  # control characters (a NUL no database would store)
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
    except ValueError:  # an unbalanced [ in the host, a bad port
        return "NOT_AN_URL"
    if parts.scheme not in ("http", "https") or not host:
        return "NOT_AN_URL"
    return None


def start_query(cfg: FinderSettings, ip: str, url: str) -> reqs.FinderRequest | None:
    """The request for `url`, opened now if there is none; None when the address has its
    maximum of unfinished requests. Its link job is sent on every poll until it starts (the
    dedup key keeps one in the queue, and a send lost in a queue outage is made good by the
    next poll)."""
    services = current_services()
    limit = None if ip in cfg.unlimited_ips else cfg.max_processing_per_ip
    found, _ = reqs.open_request(
        services.engine,
        reqs.query_id(url),
        "query",
        ip,
        time.time(),
        url=url,
        max_in_progress=limit,
    )
    if found is not None and found.status == reqs.WAIT_LINK_FINDER:
        services.queue.send(LINK, RequestJob(found.id), dedup_key=f"link:{found.id}")
    return found


def let_through(cfg: FinderSettings, ip: str) -> bool:
    """AOTF's one request a second per address (unlimited addresses skip it)."""
    if ip in cfg.unlimited_ips:
        return True
    return reqs.accept(current_services().engine, ip, time.time(), cfg.request_interval)


@blueprint.route("/query", methods=["GET", "POST"])
@operation(
    "AOTF: find the posts that contain the artwork of this page (start, or poll, a request)",
    description="GET with `?url=`, or POST the URL as a text/plain body. A request is "
    "identified by its URL: asking again returns its progress.",
    tags=("finder",),
    params=(Param("url", "query", {"type": "string"}, "the artwork page (GET)"),),
    body=RequestBody("the artwork page's URL (POST)", {"text/plain": {}}, required=False),
    responses={200: json_response("the request", ANSWER), 429: TOO_MANY},
)
def query() -> Response:
    cfg = finder_settings()
    ip = _client()
    if not let_through(cfg, ip):
        return _too_many()
    if request.method == "POST":
        url, error = _read_posted_url(cfg)
    else:
        url, error = request.args.get("url"), None
    error = error or checked_url(url, cfg)
    if error is not None or url is None:
        return jsonify(reqs.empty_answer(error))
    found = start_query(cfg, ip, url.strip())
    if found is None:
        return jsonify(reqs.empty_answer("YOUR_IP_HAS_MAX_PROCESSING_REQUESTS"))
    return jsonify(found.aotf())


def _upload_limit() -> int:
    return finder_settings().max_upload_bytes * 2


@blueprint.route("/search", methods=["GET", "POST"])
@body_limit(_upload_limit)
@operation(
    "AOTF: search an image among the indexed posts (advanced addresses only)",
    description="POST the image (optionally `?account_name=` to search one account), then "
    "GET `?identifier=` to poll.",
    tags=("finder",),
    params=(
        Param("identifier", "query", {"type": "string"}, "the search to poll (GET)"),
        Param("account_name", "query", {"type": "string"}, "search only this account (POST)"),
    ),
    body=RequestBody("the image (POST)", {"application/octet-stream": {}}, required=False),
    responses={
        200: json_response("the search", ANSWER),
        403: ResponseSpec("this address may not search", {"text/plain": {}}),
        429: TOO_MANY,
    },
    errors=(413,),
)
def search() -> Response:
    cfg = finder_settings()
    ip = _client()
    if ip not in cfg.advanced_ips:
        return Response("403 Forbidden", status=403, mimetype="text/plain")
    if not let_through(cfg, ip):
        return _too_many()
    services = current_services()
    if request.method == "GET":
        identifier = request.args.get("identifier", "").strip()
        if not identifier:
            return jsonify(reqs.empty_answer("IDENTIFIER_MISSING"))
        with services.engine.connect() as conn:
            found = reqs.get(conn, "s" + identifier, time.time())
        if found is None:
            return jsonify(reqs.empty_answer("NO_SUCH_REQUEST"))
        return jsonify(found.aotf())
    size = request.content_length
    if size is not None and size > cfg.max_upload_bytes:
        return jsonify(reqs.empty_answer("QUERY_IMAGE_TOO_BIG"))
    body = request.stream.read(cfg.max_upload_bytes + 1)
    if len(body) > cfg.max_upload_bytes:
        return jsonify(reqs.empty_answer("QUERY_IMAGE_TOO_BIG"))
    if not body:
        return jsonify(reqs.empty_answer("IMAGE_MISSING"))
    request_id, _ = reqs.new_search_id()
    account = (request.args.get("account_name") or "").strip().lower().lstrip("@") or None
    limit = None if ip in cfg.unlimited_ips else cfg.max_processing_per_ip
    services.blobs.put(request_id, QUERY_BLOB, body, overwrite=True)
    found, _ = reqs.open_request(
        services.engine,
        request_id,
        "search",
        ip,
        time.time(),
        account_name=account,
        max_in_progress=limit,
    )
    if found is None:
        services.blobs.delete(request_id, QUERY_BLOB)
        return jsonify(reqs.empty_answer("YOUR_IP_HAS_MAX_PROCESSING_REQUESTS"))
    services.queue.send(SEARCH, RequestJob(found.id), dedup_key=f"search:{found.id}")
    return jsonify(found.aotf())


_stats_lock = threading.Lock()
STATS_CACHE = "sleuth.finder.stats"  # in the Flask app's extensions: one per served app


def _stats() -> dict[str, int]:
    services = current_services()
    with services.engine.connect() as conn:
        n_posts = conn.execute(sa.select(sa.func.count()).select_from(posts)).scalar_one()
        n_accounts = conn.execute(
            sa.select(sa.func.count()).where(accounts.c.scanned_at.is_not(None))
        ).scalar_one()
        pending = conn.execute(
            sa.select(sa.func.count()).where(images.c.state == "pending")
        ).scalar_one()
        open_requests = reqs.counts(conn)
    scans = sum(
        s.ready + s.delayed + s.in_flight for s in services.queue.stats() if s.queue == SCAN_QUEUE
    )
    return {
        "indexed_tweets_count": int(n_posts),
        "indexed_accounts_count": int(n_accounts),
        "processing_user_requests_count": open_requests["query"],
        "processing_scan_requests_count": int(scans),
        "pending_tweets_count": int(pending),
    }


@blueprint.route("/stats")
@operation(
    "AOTF: what the finder holds and is doing (cached 3 s)",
    tags=("finder",),
    responses={200: json_response("the counts", STATS)},
)
def stats() -> Response:
    now = time.monotonic()
    cache: dict[str, Any] = current_app.extensions.setdefault(STATS_CACHE, {})
    with _stats_lock:
        if cache.get("until", 0.0) <= now:
            cache.update(value=_stats(), until=now + STATS_CACHE_SECONDS)
        value = cache["value"]
    return jsonify(value)


@blueprint.route("/config")
@operation(
    "AOTF: the limits that apply to the calling address",
    tags=("finder",),
    responses={200: json_response("the limits", CONFIG)},
)
def config() -> Response:
    cfg = finder_settings()
    ip = _client()
    return jsonify(
        {
            "limit_per_ip_address": cfg.max_processing_per_ip,
            "ip_can_bypass_limit": ip in cfg.unlimited_ips,
            "ip_can_use_advanced": ip in cfg.advanced_ips,
            "update_accounts_frequency": cfg.update_days,
            "max_illust_url_size": cfg.max_url_length,
        }
    )
