"""The graph's idempotent writes on SQLite, PostgreSQL and MariaDB: node upserts keep the
fewest hops, the counts a list did not give and a selection; an edge is stored once."""

from __future__ import annotations

import sqlalchemy as sa

from sleuth.app import migration_dirs
from sleuth.apps.graph.models import REJECTED, SEEN, SELECTED, graph_edges
from sleuth.apps.graph.records import (
    Cursor,
    add_edges,
    nodes,
    read_cursor,
    save_cursor,
    set_state,
    timeline_key,
    upsert_node,
)
from sleuth.sources.social import Account
from sleuth.store.db import make_engine, migrate


def _account(ident: str, followers: int | None = None, network: str = "x") -> Account:
    return Account(network, ident, f"u{ident}", "x.com", f"u{ident}", "", "", followers)


def test_upserts_edges_and_cursors(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate(engine, migration_dirs())
    try:
        with engine.begin() as conn:
            upsert_node(conn, _account("1", 10), 2)
            upsert_node(conn, _account("1"), 1, SELECTED)  # fewer hops, no counts
            upsert_node(conn, _account("1", 12), 3, REJECTED)  # a selection sticks
            upsert_node(conn, _account("2", 5), 1)
            set_state(conn, "x", "2", REJECTED)
            set_state(conn, "x", "2", SELECTED)  # judged again by another rule...
            set_state(conn, "x", "2", REJECTED)  # ...but a selection sticks
            upsert_node(conn, _account("3", 1), 1)
            set_state(conn, "x", "3", REJECTED)
            pairs = [("1", "2"), ("2", "1"), ("1", "2")]
            add_edges(conn, "x", pairs)
            add_edges(conn, "x", pairs)
            save_cursor(conn, "x", "1", "followers", Cursor("abc", 1, 80))
            save_cursor(conn, "x", "1", "followers", Cursor("def", 2, 160))
        with engine.connect() as conn:
            stored = nodes(conn, "x", ["1", "2", "3", "4"])
            edges = conn.execute(sa.select(graph_edges.c.src, graph_edges.c.dst)).all()
            cursor = read_cursor(conn, "x", "1", "followers")
            fresh = read_cursor(conn, "x", "2", "followers")
        one, two = stored["1"], stored["2"]
        assert (one.depth, one.followers_count, one.state) == (1, 12, SELECTED)
        assert (two.depth, two.state) == (1, SELECTED) and stored["3"].state == REJECTED
        assert sorted(edges) == [("1", "2"), ("2", "1")]
        assert cursor == Cursor("def", 2, 160) and fresh == Cursor() and "4" not in stored
        assert SEEN == "seen"
    finally:
        engine.dispose()


def test_timeline_keys_lay_out_by_id_prefix() -> None:
    assert timeline_key("x", "1234567") == "1234567_x"
    assert timeline_key("x", "7") == "0007_x"
    did = timeline_key("bluesky", "did:plc:abc")
    assert did.endswith("_bluesky") and len(did) == 40 + len("_bluesky")
