"""Full-text search of the collected posts on each database's own index: SQLite FTS5,
PostgreSQL GIN over to_tsvector, MariaDB FULLTEXT; and over loopback, the posts of a crawl's
timelines found through `GET /api/graph/posts` (embedded, and on PostgreSQL with Redis)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from sleuth.app import migration_dirs
from sleuth.apps.graph.cli import crawl_graph
from sleuth.apps.graph.jobs import Plan, T
from sleuth.apps.graph.models import graph_posts
from sleuth.apps.graph.records import add_posts, read_timeline
from sleuth.apps.graph.search import search_posts
from sleuth.emulator.artworld import ArtWorld
from sleuth.services import Services
from sleuth.sources.social import Post
from sleuth.store.db import make_engine, migrate
from sleuth.web.app import create_app
from tests.apps.graph.test_crawl import _seed, _seeds
from tests.apps.graph.test_monitor import deployed, limited_url  # noqa: F401  (fixtures)
from tests.apps.graph.truth import node

TEXTS = {
    "1": "The Quick brown fox jumps over the lazy dog",
    "2": "A quick sketch of a sleeping dog, in pencil",
    "3": "Sunset over the harbour; quick colours",
    "4": "Nothing here but hedgehogs",
    "5": "walrus\x00 " + "longer " * 12_000,  # a NUL, and past TEXT's 64 KiB
}


def _post(ident: str, text: str, day: int) -> Post:
    created = datetime(2024, 1, day, tzinfo=UTC)
    return Post("mastodon", ident, "9", f"https://one.example/@ada/{ident}", created, text)


def _found(conn: sa.Connection, query: str, limit: int = 50) -> list[str]:
    return [p.post_id for p in search_posts(conn, query, limit)]


def test_every_word_is_found_case_aside_and_no_query_fails(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate(engine, migration_dirs())
    posts = [_post(i, text, int(i)) for i, text in TEXTS.items()]
    for _ in range(2):  # stored twice: one row each
        with engine.begin() as conn:
            add_posts(conn, "ada@one.example", posts)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(graph_posts)).scalar() == 5
        assert sorted(_found(conn, "quick")) == ["1", "2", "3"]
        assert sorted(_found(conn, "QUICK DOG")) == ["1", "2"]  # every word, any case
        assert _found(conn, "dog quick sleeping") == ["2"]
        assert _found(conn, "hedgehogs") == ["4"] and _found(conn, "hedgehog") == []
        assert _found(conn, "giraffe") == [] and _found(conn, "  ;;; ") == []
        (long,) = search_posts(conn, "walrus longer")
        assert long.text == TEXTS["5"].replace("\x00", "")
        # The engines' own syntax is no syntax here: every one of these is just its words.
        for query in ('"quick', "quick OR giraffe", "quick -dog", "NEAR(quick dog)", "quick*"):
            found = set(_found(conn, query))
            assert found <= {"1", "2", "3"}, query
        assert _found(conn, 'quick" OR "giraffe') == []
        assert len(_found(conn, "quick", limit=2)) == 2
        (hit,) = search_posts(conn, "harbour")
        assert (hit.network, hit.account_id, hit.text) == (
            "mastodon",
            "ada@one.example",
            TEXTS["3"],
        )
        assert hit.created_at == datetime(2024, 1, 3, tzinfo=UTC).timestamp()
    engine.dispose()


def _words(text: str) -> set[str]:
    return set(re.findall(r"[^\W_]+", text.lower()))


def test_a_crawl_s_timelines_are_searchable_over_http(
    deployed: Services,  # noqa: F811
    world: ArtWorld,
    tmp_path: Path,
) -> None:
    services = deployed
    accounts = [_seed(world, "mastodon"), _seed(world, "bluesky")]
    seeds = _seeds(tmp_path, accounts[0].url, f"@{accounts[1].acct}")
    assert crawl_graph(services, seeds, Plan((T,), depth=0))[1].finished
    stored = {
        (a.network, line["id"]): line["text"]
        for a in accounts
        for line in read_timeline(services.blobs, a.network, node(a))
    }
    with services.engine.connect() as conn:
        p = graph_posts.c
        rows = conn.execute(sa.select(p.network, p.post_id, p.text)).all()
    assert {(net, ident): text for net, ident, text in rows} == stored  # one row per post
    client = create_app(services).test_client()
    some = next(iter(stored.values()))
    query = " ".join(sorted(_words(some))[:2])
    answer = client.get("/api/graph/posts", query_string={"q": query, "limit": 200})
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["words"] == query.split()
    found = {(post["network"], post["post_id"]) for post in body["posts"]}
    expected = {key for key, text in stored.items() if set(query.split()) <= _words(text)}
    assert found == expected and found
    assert client.get("/api/graph/posts").status_code == 400
    assert client.get("/api/graph/posts", query_string={"q": "x" * 300}).status_code == 400
