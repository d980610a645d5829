"""The graph's live events: every page of followers and of a timeline a crawl stores is told
once on the `graph` channel, in the SQLite queue's file embedded and in Redis Streams with the
Redis queue (on PostgreSQL); a crawl run again stores nothing and tells nothing."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import sqlalchemy as sa

from sleuth.apps.graph.app import NAME
from sleuth.apps.graph.cli import crawl_graph
from sleuth.apps.graph.jobs import F, Plan, T
from sleuth.apps.graph.models import graph_cursors
from sleuth.emulator.artworld import ArtWorld
from sleuth.observe.events import START, Event, live_events
from sleuth.services import Services
from tests.apps.graph.test_crawl import _seed, _seeds
from tests.apps.graph.test_monitor import deployed, limited_url  # noqa: F401  (fixtures)


def _everything(services: Services, after: str) -> list[Event]:
    events = live_events(services.queue)
    found: list[Event] = []
    while batch := events.read(NAME, after, 500):
        found += batch
        after = batch[-1].id
    return found


def _last(services: Services) -> str:
    found = _everything(services, START)
    return found[-1].id if found else START


def test_each_stored_page_is_told_once(
    deployed: Services,  # noqa: F811
    world: ArtWorld,
    tmp_path: Path,
) -> None:
    services = deployed
    before = _last(services)
    seeds = _seeds(tmp_path, _seed(world, "mastodon").url, f"@{_seed(world, 'bluesky').acct}")
    assert crawl_graph(services, seeds, Plan((T, F), depth=1))[1].finished
    told = [e.data for e in _everything(services, before)]

    c = graph_cursors.c
    with services.engine.connect() as conn:
        cursors = conn.execute(
            sa.select(c.network, c.account_id, c.operation, c.pages, c.found, c.state)
        ).all()
    pages = {
        (op, net, account, page)
        for net, account, op, n, _, _ in cursors
        for page in range(1, n + 1)
    }
    keys = [(e["type"], e["network"], e["account"], e["page"]) for e in told]
    assert Counter(keys).most_common(1)[0][1] == 1  # none told twice
    assert set(keys) == pages and len(pages) > len(cursors) / 2
    for net, account, op, _, found, state in cursors:
        mine = [e for e in told if (e["type"], e["network"], e["account"]) == (op, net, account)]
        assert max(mine, key=lambda e: e["page"])["state"] == state
        if op == "followers":
            assert sum(e["items"] for e in mine) == found

    # The same crawl again: every operation is stored already, so nothing is told.
    last = _last(services)
    assert crawl_graph(services, seeds, Plan((T, F), depth=1))[1].finished
    assert _everything(services, last) == []
