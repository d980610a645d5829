"""The graph monitor's figures equal what the database and the queue hold: after a real crawl
of world 0's rate-limited emulators (embedded, and on PostgreSQL with the Redis queue), with
a crawl queued and not yet run, and with a worker running."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from sleuth.apps.graph.app import NAME, QUEUES
from sleuth.apps.graph.cli import crawl_graph, open_graph_run
from sleuth.apps.graph.jobs import F, Plan, item_job, seed_item
from sleuth.apps.graph.models import graph_edges, graph_nodes, graph_posts
from sleuth.apps.graph.monitor import ITEM_OPERATIONS, RATE_WINDOW, snapshot
from sleuth.crawl import runs
from sleuth.crawl.models import QUEUED, crawl_failures, crawl_run_items
from sleuth.emulator import EmulatorServer, create_imagehost_app
from sleuth.emulator.artworld import ArtWorld
from sleuth.observe.registry import list_workers
from sleuth.runner import app_queues, run_worker, shared_budgets
from sleuth.services import Services
from sleuth.timefmt import iso_utc
from sleuth.web.app import create_app
from tests.apps.graph.conftest import graph_settings
from tests.apps.graph.test_crawl import _seed, _seeds
from tests.patience import PATIENCE, wait_for


@pytest.fixture(scope="module")
def limited_url(world: ArtWorld) -> Iterator[str]:
    """World 0's emulators with their real rate limits, so budgets are announced."""
    with EmulatorServer(create_imagehost_app(0, world=world)) as url:
        yield url


@pytest.fixture
def deployed(tmp_path: Path, limited_url: str, deployment: dict[str, str]) -> Iterator[Services]:
    """Graph services on the emulators, embedded or on PostgreSQL and Redis."""
    settings = graph_settings(tmp_path, limited_url)
    settings = dataclasses.replace(
        settings,
        database_url=deployment.get("SLEUTH_DATABASE_URL", ""),
        queue_url=deployment.get("SLEUTH_QUEUE_URL", ""),
    )
    services = Services(settings)
    yield services
    services.close()


def _by_operation(keys: list[str]) -> dict[str, int]:
    counted = Counter(key.split(":", 1)[0] for key in keys)
    return {op: counted.get(op, 0) for op in ITEM_OPERATIONS}


def _items(services: Services) -> list[tuple[str, str, float | None]]:
    i = crawl_run_items.c
    with services.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(i.item_key, i.state, i.finished_at))]


def _count(services: Services, table: sa.Table) -> int:
    with services.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_a_crawl_s_figures_equal_the_database_and_the_queue(
    deployed: Services, world: ArtWorld, tmp_path: Path
) -> None:
    services = deployed
    mastodon, bluesky = _seed(world, "mastodon"), _seed(world, "bluesky")
    seeds = _seeds(tmp_path, mastodon.url, f"@{bluesky.acct}", "not a seed!")
    _, final = crawl_graph(services, seeds, Plan((F,), depth=1))
    assert final.finished

    now = time.time()
    figures = snapshot(services, now)
    items = _items(services)
    assert figures["frontier"]["items"] == 0
    assert figures["frontier"]["by_operation"] == dict.fromkeys(ITEM_OPERATIONS, 0)
    assert figures["frontier"]["queues"] == {
        q: {"ready": 0, "delayed": 0, "in_flight": 0, "dead": 0} for q in QUEUES
    }
    recent = _by_operation([k for k, s, at in items if at is not None and at >= now - RATE_WINDOW])
    assert {op: r["settled"] for op, r in figures["rates"]["by_operation"].items()} == recent
    assert recent["seed"] == 3 and recent["F"] > 2  # the seeds, and their followers read
    for op, rate in figures["rates"]["by_operation"].items():
        assert rate["per_second"] == round(recent[op] / RATE_WINDOW, 3)
    with services.engine.connect() as conn:
        reasons = conn.execute(
            sa.select(crawl_failures.c.reason).where(crawl_failures.c.resolved_at.is_(None))
        ).scalars()
        assert figures["errors_by_reason"] == dict(Counter(reasons))
    assert figures["errors_by_reason"] == {"bad_input": 1}  # "not a seed!"
    assert figures["graph"] == {
        "nodes": _count(services, graph_nodes),
        "edges": _count(services, graph_edges),
        "posts": _count(services, graph_posts),
    }
    assert figures["graph"]["edges"] > 0

    # The budgets the workers shared, as stored (each window still open at `now`).
    stored = shared_budgets(services).listing()
    assert stored and figures["budgets"]
    assert [(b["host"], b["source"]) for b in figures["budgets"]] == [
        (b.host, b.source) for b in stored
    ]
    for shown, budget in zip(figures["budgets"], stored, strict=True):
        assert shown["limit"] == budget.limit and shown["updated_at"] == iso_utc(budget.updated_at)
        if budget.reset_at is not None and budget.reset_at > now:
            assert shown["remaining"] == budget.remaining
            assert shown["reset_at"] == iso_utc(budget.reset_at)
        else:  # a window past its reset is whole again
            assert shown["remaining"] == budget.limit and shown["reset_at"] is None
    assert any(
        b["remaining"] is not None and b["remaining"] < b["limit"] for b in figures["budgets"]
    )

    # The JSON endpoint answers the same figures (read a moment later: rates may only age).
    answer = create_app(services).test_client().get("/api/graph/monitor")
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    body = answer.get_json()
    assert body["frontier"] == figures["frontier"]
    assert body["errors_by_reason"] == figures["errors_by_reason"]
    assert body["graph"] == figures["graph"]


def test_a_queued_crawl_is_the_frontier_and_a_worker_is_shown_with_its_heartbeat(
    deployed: Services, world: ArtWorld, tmp_path: Path
) -> None:
    services = deployed
    seeds = [_seed(world, "mastodon").url, f"@{_seed(world, 'bluesky').acct}"]
    plan = Plan((F,), depth=1)
    run = open_graph_run(services.engine, "queued")
    items = [seed_item(run, n, text, plan) for n, text in enumerate(seeds, start=1)]
    assert runs.add_items(services.engine, services.queue, items, item_job) == 2

    figures = snapshot(services)
    assert figures["frontier"]["items"] == 2
    assert figures["frontier"]["by_operation"]["seed"] == 2
    assert figures["frontier"]["queues"]["graph.analysis"]["ready"] == 2
    assert figures["workers"] == []

    # A worker of the graph's queues runs them: it is listed live, its heartbeat as stored,
    # and the frontier drains as the items are settled.
    stop = threading.Event()
    worker = threading.Thread(
        target=lambda: asyncio.run(
            run_worker(services, queues=app_queues(NAME), until=stop.is_set, handle_signals=False)
        ),
        daemon=True,
    )
    worker.start()
    try:
        shown = wait_for(lambda: snapshot(services)["workers"], "the worker is shown")
        with services.engine.connect() as conn:
            registered = list_workers(conn, include_stopped=False)
        assert [w["consumer"] for w in shown] == [w.consumer for w in registered]
        assert shown[0]["state"] == "live" and set(QUEUES) <= set(shown[0]["queues"])
        assert shown[0]["heartbeat_interval"] == registered[0].interval
        assert shown[0]["heartbeat_age"] >= 0

        def drained() -> bool:
            with services.engine.connect() as conn:
                left = conn.execute(
                    sa.select(sa.func.count()).where(crawl_run_items.c.state == QUEUED)
                ).scalar_one()
            return left == 0 and services.queue.pending(QUEUES) == 0

        wait_for(drained, "the crawl drains")
        figures = snapshot(services)
        assert figures["frontier"]["items"] == 0
        settled = _by_operation([k for k, s, at in _items(services) if s != QUEUED])
        assert figures["rates"]["by_operation"]["seed"]["settled"] == settled["seed"] == 2
    finally:
        stop.set()
        worker.join(PATIENCE)
    assert snapshot(services)["workers"] == []  # stopped: no longer shown
