"""`GET /metrics`: the engine's state in Prometheus text format, for a Prometheus server to scrape.

What it shows: jobs per queue, priority and state; every queue's task outcomes and durations
(the workers' log-bucket histograms, merged, cut at fixed bounds that fall on bucket edges, so
each cumulative count is exact); fetch outcomes by reason; every app's outcome totals (a
per-minute rate is `rate(sleuth_app_outcomes_total[1m]) * 60`); the workers by state; and per
host, when its politeness clock next lets a request start, and its rate-limit budget."""

from __future__ import annotations

import time
from collections import Counter

import sqlalchemy as sa
from flask import Blueprint, Response
from sqlalchemy import Connection

from sleuth.crawl.models import crawl_failures, crawl_run_items, crawl_runs
from sleuth.jobs.redis import RedisQueue
from sleuth.net.clocks import host_clocks
from sleuth.observe.counters import outcome_counts
from sleuth.observe.metrics import MIN_SECONDS, OUTCOMES, merged_stats
from sleuth.observe.prometheus import CONTENT_TYPE, Family, render
from sleuth.observe.registry import list_workers
from sleuth.runner import shared_budgets
from sleuth.services import Services
from sleuth.web.context import current_services
from sleuth.web.openapi import ResponseSpec, operation

blueprint = Blueprint("prometheus", __name__)

# Duration bounds 1 µs · 4^k (1 µs to about 72 min): each is the upper edge of histogram
# bucket 32k (16 buckets per doubling), so the count at or below it is exact.
DURATION_BOUNDS = tuple((MIN_SECONDS * 4.0**k, 32 * k) for k in range(17))
QUEUE_STATES = ("ready", "delayed", "in_flight", "dead")
WORKER_STATES = ("live", "lost", "stopped")


def _queue_families(services: Services) -> list[Family]:
    jobs = Family("sleuth_queue_jobs", "gauge", "Jobs per queue, priority and state.")
    oldest = Family(
        "sleuth_queue_oldest_ready_age_seconds",
        "gauge",
        "How long the oldest ready job of a queue and priority has waited.",
    )
    for stats in services.queue.stats():
        labels = {"queue": stats.queue, "priority": str(stats.priority)}
        for state in QUEUE_STATES:
            jobs.add(getattr(stats, state), **labels, state=state)
        if stats.oldest_ready_age is not None:
            oldest.add(stats.oldest_ready_age, **labels)
    return [jobs, oldest]


def _task_families(conn: Connection) -> list[Family]:
    outcomes = Family(
        "sleuth_task_outcomes",
        "counter",
        "Job outcomes per queue, over every registered worker.",
    )
    durations = Family(
        "sleuth_task_duration_seconds",
        "histogram",
        "Job durations per queue, from start to the outcome being recorded.",
    )
    for queue, (stats, _workers) in merged_stats(conn).items():
        for outcome in OUTCOMES:
            outcomes.add(stats.outcomes[outcome], queue=queue, outcome=outcome)
        histogram = stats.durations
        bounds = [(le, histogram.count_at_most(index)) for le, index in DURATION_BOUNDS]
        durations.add_histogram(bounds, histogram.total, histogram.count, queue=queue)
    return [outcomes, durations]


def fetch_outcomes(conn: Connection) -> list[tuple[str, str, str, int]]:
    """(app, outcome, reason, count) over every crawl item that has an outcome; the reason is
    the open failure record's, "none" for items that did not fail."""
    items, runs, failures = crawl_run_items.c, crawl_runs.c, crawl_failures.c
    reason = sa.func.coalesce(failures.reason, "none")
    rows = conn.execute(
        sa.select(runs.app, items.outcome, reason, sa.func.count())
        .select_from(
            crawl_run_items.join(crawl_runs, runs.id == items.run_id).outerjoin(
                crawl_failures,
                sa.and_(
                    failures.run_id == items.run_id,
                    failures.item_key == items.item_key,
                    failures.resolved_at.is_(None),
                ),
            )
        )
        .where(items.outcome.is_not(None))
        .group_by(runs.app, items.outcome, reason)
        .order_by(runs.app, items.outcome, reason)
    )
    return [(app, outcome, why, int(n)) for app, outcome, why, n in rows]


def _outcome_families(conn: Connection) -> list[Family]:
    fetches = Family(
        "sleuth_fetch_outcomes", "counter", "Crawled items per outcome and failure reason."
    )
    for app, outcome, reason, count in fetch_outcomes(conn):
        fetches.add(count, app=app, outcome=outcome, reason=reason)
    apps = Family(
        "sleuth_app_outcomes",
        "counter",
        "Each app's outcomes, summed over its per-minute counters (the /monitoring data).",
    )
    c = outcome_counts.c
    rows = conn.execute(
        sa.select(c.app, c.outcome, sa.func.sum(c.count))
        .group_by(c.app, c.outcome)
        .order_by(c.app, c.outcome)
    )
    for app, outcome, total in rows:
        apps.add(int(total), app=app, outcome=outcome)
    return [fetches, apps]


def _worker_family(conn: Connection, now: float) -> Family:
    workers = Family("sleuth_workers", "gauge", "Registered workers per state.")
    states = Counter(w.state for w in list_workers(conn, now, include_stopped=True))
    for state in WORKER_STATES:
        workers.add(states[state], state=state)
    return workers


def host_waits(services: Services, conn: Connection, now: float) -> dict[str, float]:
    """host → seconds until its politeness clock lets the next request start, for every host
    whose clock is still running (in the queue's Redis when the queue is there, else in the
    database, as the workers keep them)."""
    queue = services.queue
    if isinstance(queue, RedisQueue):
        client = queue.redis
        prefix = f"{queue.target.prefix}:host:"
        seconds, micros = client.time()
        server_now = seconds * 1_000_000 + micros
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        values = client.mget(keys) if keys else []
        waits = {}
        for key, value in zip(keys, values, strict=True):
            name = key.decode() if isinstance(key, bytes) else key
            if value is not None and int(value) > server_now:
                waits[name[len(prefix) :]] = (int(value) - server_now) / 1e6
        return waits
    rows = conn.execute(
        sa.select(host_clocks.c.host, host_clocks.c.next_at).where(host_clocks.c.next_at > now)
    )
    return {host: float(next_at) - now for host, next_at in rows}


def _host_families(services: Services, conn: Connection, now: float) -> list[Family]:
    waits = Family(
        "sleuth_host_next_start_seconds",
        "gauge",
        "Seconds until a host's politeness clock lets the next request start.",
    )
    for host, wait in sorted(host_waits(services, conn, now).items()):
        waits.add(wait, host=host)
    remaining = Family(
        "sleuth_host_budget_remaining", "gauge", "Requests left in a host's rate-limit window."
    )
    limit = Family("sleuth_host_budget_limit", "gauge", "Requests a host's window allows.")
    reset = Family(
        "sleuth_host_budget_reset_seconds", "gauge", "Seconds until a host's window resets."
    )
    blocked = Family(
        "sleuth_host_blocked_seconds",
        "gauge",
        "Seconds until a host lets requests through again after a 429 or Retry-After.",
    )
    for budget in shared_budgets(services).listing():
        labels = {"host": budget.host, "source": budget.source}
        if budget.blocked_until is not None and budget.blocked_until > now:
            blocked.add(budget.blocked_until - now, **labels)
        if budget.limit is None or budget.remaining is None or budget.reset_at is None:
            continue  # the host announced no window
        remaining.add(budget.remaining, **labels)
        limit.add(budget.limit, **labels)
        reset.add(max(0.0, budget.reset_at - now), **labels)
    return [waits, remaining, limit, reset, blocked]


def collect(services: Services, now: float | None = None) -> list[Family]:
    """Every family `/metrics` shows, read now from the queue and the database."""
    now = time.time() if now is None else now
    families = _queue_families(services)
    with services.engine.connect() as conn:
        families += _task_families(conn)
        families += _outcome_families(conn)
        families.append(_worker_family(conn, now))
        families += _host_families(services, conn, now)
    return families


@blueprint.get("/metrics")
@operation(
    "The engine's state for Prometheus",
    description="Prometheus text exposition format 0.0.4: queue depths, task outcomes and "
    "durations, fetch outcomes by reason, per-app outcome totals, workers, per-host politeness "
    "and rate-limit budgets.",
    tags=("engine",),
    responses={
        200: ResponseSpec(
            "the metrics, one family after another", {CONTENT_TYPE: {"type": "string"}}
        )
    },
)
def metrics() -> Response:
    text = render(collect(current_services()))
    return Response(text, content_type=CONTENT_TYPE, headers={"Cache-Control": "no-store"})
