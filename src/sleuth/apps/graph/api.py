"""The lookup service, as Twittomatic's: `GET /lookup/id/<id>` and `GET /lookup/handle/<h>`
answer the crawled accounts with that id or handle (on any network) as JSON, each with the
follows stored from and to it; and `GET /api/graph/posts?q=`, the full-text search of the
collected posts (`search.py`)."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, Response, jsonify, request
from sqlalchemy import Connection

from sleuth.apps.graph.models import graph_edges, graph_nodes
from sleuth.apps.graph.records import Node, nodes_where
from sleuth.apps.graph.search import MAX_WORDS, search_posts, words_of
from sleuth.web.context import current_services
from sleuth.web.errors import ApiError
from sleuth.web.openapi import Param, json_response, operation, schema
from sleuth.web.params import PageLimit

MAX_TEXT = 255
_OPTIONAL_INT = {"type": ["integer", "null"]}
_OPTIONAL_TEXT = {"type": ["string", "null"]}
ACCOUNT = schema(
    "GraphAccount",
    {
        "type": "object",
        "required": [
            "network",
            "account_id",
            "handle",
            "native_id",
            "followers_count",
            "following_count",
            "statuses_count",
            "lang",
            "depth",
            "state",
            "followers_stored",
            "following_stored",
        ],
        "properties": {
            "network": {"type": "string", "enum": ["mastodon", "bluesky", "x"]},
            "account_id": {"type": "string", "description": "Mastodon: user@home"},
            "handle": {"type": "string"},
            "native_id": {**_OPTIONAL_TEXT, "description": "its id on its home server"},
            "followers_count": {**_OPTIONAL_INT, "description": "as the network said"},
            "following_count": _OPTIONAL_INT,
            "statuses_count": _OPTIONAL_INT,
            "lang": {**_OPTIONAL_TEXT, "description": "the most frequent of its posts'"},
            "depth": {"type": "integer", "minimum": 0, "description": "hops from a seed"},
            "state": {"type": "string", "enum": ["seen", "selected", "rejected"]},
            "followers_stored": {"type": "integer", "minimum": 0},
            "following_stored": {"type": "integer", "minimum": 0},
        },
    },
)
ACCOUNTS = schema(
    "GraphAccounts",
    {
        "type": "object",
        "required": ["accounts"],
        "properties": {"accounts": {"type": "array", "items": ACCOUNT}},
    },
)


POSTS = schema(
    "GraphPosts",
    {
        "type": "object",
        "required": ["query", "words", "posts"],
        "additionalProperties": False,
        "properties": {
            "query": {"type": "string"},
            "words": {
                "type": "array",
                "items": {"type": "string"},
                "maxItems": MAX_WORDS,
                "description": "the words every post found holds (lower-cased)",
            },
            "posts": {
                "type": "array",
                "description": "best matches first, then the newest",
                "items": {
                    "type": "object",
                    "required": [
                        "network",
                        "post_id",
                        "account_id",
                        "url",
                        "created_at",
                        "lang",
                        "text",
                    ],
                    "additionalProperties": False,
                    "properties": {
                        "network": {"type": "string", "enum": ["mastodon", "bluesky", "x"]},
                        "post_id": {"type": "string"},
                        "account_id": {"type": "string", "description": "the node's"},
                        "url": _OPTIONAL_TEXT,
                        "created_at": {"type": ["number", "null"], "description": "epoch s"},
                        "lang": _OPTIONAL_TEXT,
                        "text": {"type": "string"},
                    },
                },
            },
        },
    },
)
POSTS_LIMIT = PageLimit(50, 200, "at most this many posts")


def _count(conn: Connection, where: sa.ColumnElement[bool]) -> int:
    query = sa.select(sa.func.count()).select_from(graph_edges).where(where)
    return int(conn.execute(query).scalar_one())


def _answer(conn: Connection, found: list[Node]) -> Response:
    e = graph_edges.c
    accounts = []
    for node in found:
        on = e.network == node.network
        accounts.append(
            vars(node)
            | {
                "followers_stored": _count(conn, on & (e.dst == node.account_id)),
                "following_stored": _count(conn, on & (e.src == node.account_id)),
            }
        )
    if not accounts:
        raise ApiError(404, "account_not_found", "no crawled account has it")
    return jsonify({"accounts": accounts})


def _text(value: str) -> str:
    if len(value) > MAX_TEXT or "\x00" in value:
        raise ApiError(400, "invalid_parameter", f"at most {MAX_TEXT} characters, no NUL")
    return value


def lookup_blueprint() -> Blueprint:
    blueprint = Blueprint("graph_lookup", __name__)
    path = {"type": "string", "maxLength": MAX_TEXT}

    @blueprint.get("/lookup/id/<path:ident>")
    @operation(
        "Crawled accounts by id",
        description="The accounts with this id on any network (an X id, a DID, a Mastodon "
        "user@home or the id on its home server), with the follows stored.",
        tags=("graph",),
        params=(Param("ident", "path", path, "the account id", required=True),),
        responses={200: json_response("the accounts", ACCOUNTS)},
        errors=(400, 404),
    )
    def by_id(ident: str) -> Response:
        ident = _text(ident)
        n = graph_nodes.c
        with current_services().engine.connect() as conn:
            found = nodes_where(conn, (n.account_id == ident) | (n.native_id == ident))
            return _answer(conn, found)

    @blueprint.get("/lookup/handle/<path:handle>")
    @operation(
        "Crawled accounts by handle",
        description="The accounts with this handle (`user@server`, `name.bsky.social`, an X "
        "username; a leading @ is ignored), with the follows stored.",
        tags=("graph",),
        params=(Param("handle", "path", path, "the handle", required=True),),
        responses={200: json_response("the accounts", ACCOUNTS)},
        errors=(400, 404),
    )
    def by_handle(handle: str) -> Response:
        handle = _text(handle).removeprefix("@")
        n = graph_nodes.c
        with current_services().engine.connect() as conn:
            found = nodes_where(conn, sa.func.lower(n.handle) == handle.lower())
            return _answer(conn, found)

    @blueprint.get("/api/graph/posts")
    @operation(
        "Search the collected posts",
        description="The posts of stored timelines holding every word of `q` (case does "
        "not matter, no stemming), from each database's full-text index.",
        tags=("graph",),
        params=(
            Param("q", "query", {**path, "minLength": 1}, "words to find", required=True),
            POSTS_LIMIT.param,
        ),
        responses={200: json_response("the posts found", POSTS)},
        errors=(400,),
    )
    def posts() -> Response:
        query = request.args.get("q")
        if not query:
            raise ApiError(400, "invalid_parameter", "q is required: words to find")
        query = _text(query)
        limit = POSTS_LIMIT.read()
        with current_services().engine.connect() as conn:
            found = search_posts(conn, query, limit)
        return jsonify(
            {"query": query, "words": words_of(query), "posts": [vars(p) for p in found]}
        )

    return blueprint
