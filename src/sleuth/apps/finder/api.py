"""The finder's own JSON API under `/api/finder/`: a query and its progress with each
account's network and each post's URL, the indexed accounts, and an account's posts.

It shares AOTF's limits and request store with `/aotf/query`; unlike AOTF's, its errors are
HTTP errors (`{"error": {"code", "message"}}`): a bad URL is a 400 with AOTF's code in lower
case, a limit a 429."""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Response, jsonify, request

from sleuth.apps.finder import requests as reqs
from sleuth.apps.finder.aotf import checked_url, let_through, start_query
from sleuth.apps.finder.models import accounts, images, posts
from sleuth.apps.finder.networks import NETWORKS
from sleuth.apps.finder.settings import finder_settings
from sleuth.timefmt import iso_utc
from sleuth.web.context import current_services
from sleuth.web.errors import ApiError
from sleuth.web.openapi import Param, json_response, operation
from sleuth.web.params import PageLimit

blueprint = Blueprint("finder_api", __name__, url_prefix="/api/finder")

MAX_PAGE = 200
DEFAULT_PAGE = 50
CURSOR_PATTERN = r"^(x|mastodon|bluesky):[A-Za-z0-9:._-]{1,96}$"
_CURSOR = re.compile(CURSOR_PATTERN)
_TIME = {"type": ["string", "null"], "format": "date-time"}
# What `aotf.checked_url` takes: an http(s) URL with a host, at most AOTF's 256 characters.
URL_SCHEMA = {
    "type": "string",
    "maxLength": 256,
    "pattern": r"^[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9._~-]+(:[0-9]{1,5})?([/?#][^\s\x00-\x1f\x7f]*)?$",
}
_STRING = {"type": "string"}

ACCOUNT: dict[str, Any] = {
    "type": "object",
    "required": ["network", "account_id", "account_name", "url", "scanned_at"],
    "properties": {
        "network": {"type": "string", "enum": list(NETWORKS)},
        "account_id": _STRING,
        "account_name": _STRING,
        "url": _STRING,
        "scanned_at": _TIME,
    },
}
REQUEST: dict[str, Any] = {
    "type": "object",
    "required": ["url", "status", "error", "first_time_scan", "accounts", "results"],
    "properties": {
        "url": _STRING,
        "status": {"type": "string", "enum": list(reqs.STATUSES)},
        "error": {"type": ["string", "null"]},
        "first_time_scan": {"type": "boolean"},
        "accounts": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["network", "account_id", "account_name", "url"],
                "properties": {
                    "network": _STRING,
                    "account_id": _STRING,
                    "account_name": _STRING,
                    "url": _STRING,
                },
            },
        },
        "results": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["network", "post_id", "post_url", "account_id", "image", "distance"],
                "properties": {
                    "network": _STRING,
                    "post_id": _STRING,
                    "post_url": _STRING,
                    "account_id": _STRING,
                    "image": {"type": "string", "pattern": "^[0-9]+/[0-9]+$"},
                    "distance": {"type": "integer", "minimum": 0, "maximum": 64},
                    "mirrored": {"type": "boolean"},
                },
            },
        },
        "created_at": {"type": "string", "format": "date-time"},
        "finished_at": _TIME,
    },
}
ACCOUNT_PAGE: dict[str, Any] = {
    "type": "object",
    "required": ["accounts", "next"],
    "properties": {
        "accounts": {"type": "array", "items": ACCOUNT},
        "next": {"type": ["string", "null"], "pattern": CURSOR_PATTERN},
    },
}
POST_PAGE: dict[str, Any] = {
    "type": "object",
    "required": ["account", "posts", "next"],
    "properties": {
        "account": ACCOUNT,
        "posts": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["post_id", "url", "created_at", "images"],
                "properties": {
                    "post_id": _STRING,
                    "url": _STRING,
                    "created_at": {"type": "string", "format": "date-time"},
                    "images": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["position", "media_url", "state"],
                            "properties": {
                                "position": {"type": "integer", "minimum": 1},
                                "media_url": _STRING,
                                "state": {
                                    "type": "string",
                                    "enum": ["pending", "indexed", "gone", "failed"],
                                },
                            },
                        },
                    },
                },
            },
        },
        "next": {"type": ["string", "null"]},
    },
}
PAGE_LIMIT = PageLimit(DEFAULT_PAGE, MAX_PAGE, "page size")


def _native(found: reqs.FinderRequest) -> dict[str, Any]:
    return {
        "url": found.url or "",
        "status": reqs.STATUSES[found.status],
        "error": found.error,
        "first_time_scan": found.has_first_time_scan,
        "accounts": [
            {k: a[k] for k in ("network", "account_id", "account_name", "url")}
            for a in found.accounts
        ],
        "results": [
            {
                "network": r["network"],
                "post_id": r["tweet_id"],
                "post_url": r["post_url"],
                "account_id": r["account_id"],
                "image": r["image_position"],
                "distance": r["distance"],
                "mirrored": r["mirrored"],
            }
            for r in found.results
        ],
        "created_at": iso_utc(found.created_at),
        "finished_at": None if found.finished_at is None else iso_utc(found.finished_at),
    }


@blueprint.route("/query")
@operation(
    "Find the posts that contain the artwork at `url` (start, or poll, its request)",
    description="The same request as AOTF's /aotf/query, in sleuth's shape: every account "
    "with its network, every post with its URL.",
    tags=("finder",),
    params=(Param("url", "query", URL_SCHEMA, "the artwork page", required=True),),
    responses={200: json_response("the request", REQUEST)},
    errors=(400, 429),
)
def query() -> Response:
    cfg = finder_settings()
    ip = request.remote_addr or ""
    if not let_through(cfg, ip):
        raise ApiError(429, "too_many_requests", "one request a second per address")
    url = request.args.get("url")
    error = checked_url(url, cfg)
    if error is not None or url is None:
        raise ApiError(400, (error or "NO_URL_FIELD").lower(), f"url: {error}")
    found = start_query(cfg, ip, url.strip())
    if found is None:
        raise ApiError(
            429,
            "too_many_requests_in_progress",
            f"this address has {cfg.max_processing_per_ip} unfinished requests",
        )
    return jsonify(_native(found))


def _cursor() -> tuple[str, str] | None:
    text = request.args.get("after")
    if text is None:
        return None
    if not _CURSOR.fullmatch(text):
        raise ApiError(400, "invalid_parameter", f"after must be a `next` value, not {text!r}")
    network, account_id = text.split(":", 1)
    return network, account_id


def _account_json(row: Any) -> dict[str, Any]:
    return {
        "network": row.network,
        "account_id": row.account_id,
        "account_name": row.username,
        "url": row.url,
        "scanned_at": None if row.scanned_at is None else iso_utc(row.scanned_at),
    }


@blueprint.route("/accounts")
@operation(
    "The accounts the finder knows, by network and id",
    tags=("finder",),
    params=(
        PAGE_LIMIT.param,
        Param(
            "after",
            "query",
            {"type": "string", "pattern": CURSOR_PATTERN},
            "the `next` of the page before",
        ),
    ),
    responses={200: json_response("one page", ACCOUNT_PAGE)},
    errors=(400,),
)
def account_list() -> Response:
    limit = PAGE_LIMIT.read()
    after = _cursor()
    key = sa.tuple_(accounts.c.network, accounts.c.account_id)
    stmt = sa.select(accounts).order_by(accounts.c.network, accounts.c.account_id).limit(limit + 1)
    if after is not None:
        stmt = stmt.where(key > sa.tuple_(*after))
    with current_services().engine.connect() as conn:
        rows = conn.execute(stmt).all()
    page = rows[:limit]
    following = f"{page[-1].network}:{page[-1].account_id}" if len(rows) > limit else None
    if following is not None and not _CURSOR.fullmatch(following):
        following = None  # an id no cursor can carry ends the listing rather than lie
    return jsonify({"accounts": [_account_json(r) for r in page], "next": following})


@blueprint.route("/accounts/<network>/<account_id>/posts")
@operation(
    "An account's indexed posts, newest first, with each image's state",
    tags=("finder",),
    params=(
        Param(
            "network",
            "path",
            {"type": "string", "enum": list(NETWORKS)},
            "the network",
            required=True,
        ),
        Param("account_id", "path", {"type": "string"}, "the network's id", required=True),
        PAGE_LIMIT.param,
        Param("before", "query", {"type": "string"}, "the `next` of the page before"),
    ),
    responses={200: json_response("one page", POST_PAGE)},
    errors=(400, 404),
)
def account_posts(network: str, account_id: str) -> Response:
    if network not in NETWORKS:
        raise ApiError(404, "not_found", f"no network {network!r}")
    limit = PAGE_LIMIT.read()
    before = request.args.get("before")
    engine = current_services().engine
    with engine.connect() as conn:
        account = conn.execute(
            sa.select(accounts).where(
                accounts.c.network == network, accounts.c.account_id == account_id
            )
        ).first()
        if account is None:
            raise ApiError(404, "not_found", f"no {network} account {account_id!r} is indexed")
        stmt = (
            sa.select(posts)
            .where(posts.c.network == network, posts.c.account_id == account_id)
            .order_by(posts.c.created_at.desc(), posts.c.post_id.desc())
            .limit(limit + 1)
        )
        if before is not None:
            anchor = conn.execute(
                sa.select(posts.c.created_at, posts.c.post_id).where(
                    posts.c.network == network, posts.c.post_id == before
                )
            ).first()
            if anchor is None:
                raise ApiError(400, "invalid_parameter", f"before: no post {before!r}")
            stmt = stmt.where(
                sa.tuple_(posts.c.created_at, posts.c.post_id)
                < sa.tuple_(anchor.created_at, anchor.post_id)
            )
        rows = conn.execute(stmt).all()
        page = rows[:limit]
        ids = [r.post_id for r in page]
        found = (
            conn.execute(
                sa.select(images.c.post_id, images.c.position, images.c.media_url, images.c.state)
                .where(images.c.network == network, images.c.post_id.in_(ids))
                .order_by(images.c.post_id, images.c.position)
            ).all()
            if ids
            else []
        )
    by_post: dict[str, list[dict[str, Any]]] = {}
    for image in found:
        by_post.setdefault(image.post_id, []).append(
            {"position": image.position, "media_url": image.media_url, "state": image.state}
        )
    return jsonify(
        {
            "account": _account_json(account),
            "posts": [
                {
                    "post_id": r.post_id,
                    "url": r.url,
                    "created_at": iso_utc(r.created_at),
                    "images": by_post.get(r.post_id, []),
                }
                for r in page
            ],
            "next": page[-1].post_id if len(rows) > limit else None,
        }
    )
