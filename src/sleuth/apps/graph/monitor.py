"""What the graph crawl's monitor shows, read now from where each figure lives, so that it
equals what the database and the queue hold:

- the frontier: the crawl-layer items of every graph run still waiting for their outcome, per
  operation (the first part of an item's key: `seed`, `A`, `T`, `F`, `following`, `U`), and
  each graph queue's jobs (ready, delayed, in flight, dead) as the queue counts them;
- jobs per second per operation: the items whose outcome was settled in the last
  `RATE_WINDOW` seconds, over that window (the app's per-minute outcome counters have no
  operation; an item has one, and its settling time);
- the workers that serve a graph queue, with their state and heartbeat (`observe.registry`);
- the unresolved failures by reason (`crawl.failures`);
- every rate-limit budget per (host, source address) that the workers share, as it stands now
  (`net.budgets.as_of`: a window past its reset is whole again);
- the accounts, follows and posts stored.
"""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from sleuth.apps.graph.app import NAME, QUEUES
from sleuth.apps.graph.jobs import FOLLOWING_OP, SEED, A, F, T, U
from sleuth.apps.graph.models import graph_edges, graph_nodes, graph_posts
from sleuth.crawl.failures import by_reason
from sleuth.crawl.models import QUEUED, crawl_run_items, crawl_runs
from sleuth.net.budgets import Budget, as_of
from sleuth.observe.registry import list_workers
from sleuth.runner import shared_budgets
from sleuth.services import Services
from sleuth.timefmt import iso_utc

RATE_WINDOW = 60.0  # seconds of settled items a rate is measured over
ITEM_OPERATIONS = (SEED, A, T, F, FOLLOWING_OP, U)
_STORED = (("nodes", graph_nodes), ("edges", graph_edges), ("posts", graph_posts))
_I = crawl_run_items.c
_OPERATION = sa.case(
    *((_I.item_key.like(f"{op}:%"), op) for op in ITEM_OPERATIONS), else_=sa.null()
).label("operation")


def _graph_items() -> sa.Select[Any]:
    return (
        sa.select(_OPERATION, sa.func.count().label("n"))
        .select_from(crawl_run_items)
        .join(crawl_runs, crawl_runs.c.id == _I.run_id)
        .where(crawl_runs.c.app == NAME)
        .group_by(_OPERATION)
    )


def _per_operation(conn: Connection, query: sa.Select[Any]) -> dict[str, int]:
    found = {op: int(n) for op, n in conn.execute(query) if op is not None}
    return {op: found.get(op, 0) for op in ITEM_OPERATIONS}


def frontier(conn: Connection) -> dict[str, int]:
    """Items of every graph run still waiting for their outcome, per operation."""
    return _per_operation(conn, _graph_items().where(_I.state == QUEUED))


def settled(conn: Connection, since: float) -> dict[str, int]:
    """Items of graph runs given their outcome (or failed) at `since` or later, per operation.
    Only runs unfinished or finished since then can hold one, which bounds the scan."""
    runs = crawl_runs.c
    query = _graph_items().where(
        _I.state != QUEUED,
        _I.finished_at >= since,
        sa.or_(runs.finished_at.is_(None), runs.finished_at >= since),
    )
    return _per_operation(conn, query)


def queue_counts(services: Services) -> dict[str, dict[str, int]]:
    """Each graph queue's jobs, summed over its priorities."""
    counts = {q: {"ready": 0, "delayed": 0, "in_flight": 0, "dead": 0} for q in QUEUES}
    for stats in services.queue.stats():
        if stats.queue in counts:
            mine = counts[stats.queue]
            for field in mine:
                mine[field] += int(getattr(stats, field))
    return counts


def budget_dict(budget: Budget, now: float) -> dict[str, Any]:
    current = as_of(budget, now)
    until = current.blocked_until
    return {
        "host": current.host,
        "source": current.source,
        "limit": current.limit,
        "remaining": current.remaining,
        "reset_at": None if current.reset_at is None else iso_utc(current.reset_at),
        "reset_in": None if current.reset_at is None else round(current.reset_at - now, 3),
        "blocked_until": iso_utc(until) if until is not None and until > now else None,
        "updated_at": iso_utc(current.updated_at),
    }


def _count(conn: Connection, table: sa.Table) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def snapshot(services: Services, now: float | None = None) -> dict[str, Any]:
    """Every figure of the monitor, read now (`/api/graph/monitor`, the `/graph` page)."""
    now = time.time() if now is None else now
    budgets = shared_budgets(services).listing()
    queues = queue_counts(services)
    with services.engine.connect() as conn:
        waiting = frontier(conn)
        recent = settled(conn, now - RATE_WINDOW)
        workers = [
            w.to_dict(now)
            for w in list_workers(conn, now, include_stopped=False)
            if set(w.queues) & set(QUEUES)
        ]
        errors = by_reason(conn, NAME)
        graph = {
            name: _count(conn, table)
            for name, table in (
                ("nodes", graph_nodes),
                ("edges", graph_edges),
                ("posts", graph_posts),
            )
        }
    return {
        "frontier": {"items": sum(waiting.values()), "by_operation": waiting, "queues": queues},
        "rates": {
            "window": RATE_WINDOW,
            "by_operation": {
                op: {"settled": n, "per_second": round(n / RATE_WINDOW, 3)}
                for op, n in recent.items()
            },
        },
        "workers": workers,
        "errors_by_reason": errors,
        "budgets": [budget_dict(b, now) for b in budgets],
        "graph": graph,
        "generated_at": iso_utc(now),
    }
