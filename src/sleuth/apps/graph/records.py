"""Idempotent writes of the graph: node upserts, edges inserted once, cursor rows, timelines.

Every write here runs in the caller's transaction, so a page's accounts, its edges, its
cursor and the crawl-layer items it gives rise to commit together. A timeline is a blob of
gzip JSON lines, one post a line, newest first, under its account's id-prefix path."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from sleuth.apps.graph.models import (
    FOLLOW,
    RUNNING,
    SEEN,
    SELECTED,
    graph_cursors,
    graph_edges,
    graph_nodes,
)
from sleuth.apps.graph.networks import FOLLOWERS, node_id
from sleuth.sources.social import Account, Post, newer
from sleuth.store.blobs import BlobStore
from sleuth.store.upsert import insert_ignore_many, insert_or_update
from sleuth.timefmt import iso_utc

TIMELINE_EXT = "jsonlgz"
_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
_N = graph_nodes.c


def upsert_node(
    conn: Connection, account: Account, depth: int, state: str = SEEN, native: bool = True
) -> None:
    """Insert the account as a node, or refresh it: the counts the network gave (a list
    without counts keeps the stored ones), the fewest hops seen, SELECTED once chosen.
    `native`: `account.id` is its home server's (Mastodon lists remote accounts by the id
    the listing server gave them)."""
    now = time.time()
    row: dict[str, Any] = {
        "network": account.network,
        "account_id": node_id(account),
        "handle": account.acct,
        "native_id": account.id if native else None,
        "followers_count": account.followers_count,
        "following_count": account.following_count,
        "statuses_count": account.posts_count,
        "lang": None,
        "depth": depth,
        "state": state,
        "first_seen": now,
        "updated_at": now,
    }
    updates: dict[str, Any] = {"handle": account.acct, "updated_at": now}
    updates["depth"] = sa.case((_N.depth > depth, depth), else_=_N.depth)
    if native:
        updates["native_id"] = account.id
    for column in ("followers_count", "following_count", "statuses_count"):
        if row[column] is not None:
            updates[column] = row[column]
    if state != SEEN:
        updates["state"] = sa.case((_N.state == SELECTED, SELECTED), else_=state)
    insert_or_update(conn, graph_nodes, row, updates)


def set_lang(conn: Connection, network: str, account: str, lang: str | None) -> None:
    where = (_N.network == network) & (_N.account_id == account)
    conn.execute(graph_nodes.update().where(where).values(lang=lang))


def set_state(conn: Connection, network: str, account: str, state: str) -> None:
    """The analysis's verdict on a node not selected yet (a selection sticks)."""
    where = (_N.network == network) & (_N.account_id == account) & (_N.state != SELECTED)
    conn.execute(graph_nodes.update().where(where).values(state=state))


@dataclass(frozen=True)
class Node:
    network: str
    account_id: str
    handle: str
    native_id: str | None
    followers_count: int | None
    following_count: int | None
    statuses_count: int | None
    lang: str | None
    depth: int
    state: str


def nodes_where(conn: Connection, where: sa.ColumnElement[bool]) -> list[Node]:
    query = sa.select(*(_N[f] for f in Node.__dataclass_fields__)).where(where)
    return [Node(**row._mapping) for row in conn.execute(query.order_by(_N.network))]


def nodes(conn: Connection, network: str, ids: Sequence[str]) -> dict[str, Node]:
    """The stored nodes among `ids` of `network`, by id."""
    found: dict[str, Node] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        where = (_N.network == network) & _N.account_id.in_(chunk)
        found.update({node.account_id: node for node in nodes_where(conn, where)})
    return found


def add_edges(conn: Connection, network: str, pairs: Iterable[tuple[str, str]]) -> None:
    """Edges follower -> followed; those stored already are left as they are."""
    now = time.time()
    rows = [
        {"network": network, "src": src, "dst": dst, "kind": FOLLOW, "seen_at": now}
        for src, dst in dict.fromkeys(pairs)
    ]
    if rows:
        insert_ignore_many(conn, graph_edges, rows)


def neighbours(conn: Connection, network: str, account: str, kind: str) -> list[str]:
    """The stored followers of the account (`kind` "followers") or the accounts it follows."""
    e = graph_edges.c
    mine, other = (e.dst, e.src) if kind == FOLLOWERS else (e.src, e.dst)
    query = sa.select(other).where(e.network == network, mine == account).order_by(other)
    return list(conn.execute(query).scalars())


def reach(
    conn: Connection, network: str, ids: Sequence[str], depth: int, state: str | None = None
) -> None:
    """The nodes `ids` are `depth` hops from a seed, or fewer; with `state`, in that state."""
    for start in range(0, len(ids), 500):
        chunk = (_N.network == network) & _N.account_id.in_(ids[start : start + 500])
        closer = sa.update(graph_nodes).where(chunk & (_N.depth > depth)).values(depth=depth)
        conn.execute(closer)
        if state is not None:
            conn.execute(sa.update(graph_nodes).where(chunk).values(state=state))


@dataclass(frozen=True)
class Cursor:
    """Where a paged operation on one account stands (a fresh one: the first page next)."""

    cursor: str | None = None
    pages: int = 0
    found: int = 0
    state: str = RUNNING
    newest: str | None = None


_C = graph_cursors.c


def read_cursor(conn: Connection, network: str, account: str, operation: str) -> Cursor:
    query = sa.select(_C.cursor, _C.pages, _C.found, _C.state, _C.newest).where(
        _C.network == network, _C.account_id == account, _C.operation == operation
    )
    row = conn.execute(query).first()
    return Cursor(**row._mapping) if row is not None else Cursor()


def save_cursor(
    conn: Connection, network: str, account: str, operation: str, cursor: Cursor
) -> None:
    key = {"network": network, "account_id": account, "operation": operation}
    values = {**vars(cursor), "updated_at": time.time()}
    insert_or_update(conn, graph_cursors, key | values, values)


def timeline_key(network: str, account: str) -> str:
    """The blob key of an account's timeline: its id first, so the blob store's two-level
    prefix folders hold accounts by id prefix as Twittomatic's files did (an id with other
    characters, a DID or `user@server`, by its SHA-1)."""
    ident = account if _SAFE_ID.match(account) else hashlib.sha1(account.encode()).hexdigest()
    return f"{ident.zfill(4)}_{network}"


def post_line(post: Post) -> dict[str, Any]:
    return {
        "network": post.network,
        "id": post.id,
        "account_id": post.account_id,
        "url": post.url,
        "created_at": iso_utc(post.created_at.timestamp()) if post.created_at else None,
        "lang": post.lang,
        "text": post.text,
        "images": [{"url": i.url, "width": i.width, "height": i.height} for i in post.images],
        "is_repost": post.is_repost,
        "is_reply": post.is_reply,
    }


def read_timeline(blobs: BlobStore, network: str, account: str) -> list[dict[str, Any]]:
    """The stored posts of the account, newest first ([] when none are stored)."""
    key = timeline_key(network, account)
    if not blobs.exists(key, TIMELINE_EXT):
        return []
    text = gzip.decompress(blobs.get(key, TIMELINE_EXT)).decode()
    return [json.loads(line) for line in text.splitlines() if line]


def merge_timeline(blobs: BlobStore, network: str, account: str, posts: Sequence[Post]) -> int:
    """Add the posts to the account's stored timeline, atomically (a post stored already is
    replaced by its newer copy); returns the posts it holds."""
    by_id = {p["id"]: p for p in read_timeline(blobs, network, account)}
    by_id.update({p.id: post_line(p) for p in posts})
    ordered = sorted(by_id.values(), key=_Newest, reverse=True)
    body = "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in ordered)
    blobs.put(
        timeline_key(network, account), TIMELINE_EXT, gzip.compress(body.encode()), overwrite=True
    )
    return len(ordered)


class _Newest:
    """Sorts post lines by id, newest last, as `newer` orders them."""

    def __init__(self, line: dict[str, Any]) -> None:
        self.id = str(line["id"])

    def __lt__(self, other: _Newest) -> bool:
        return newer(other.id, self.id)
