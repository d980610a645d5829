"""`GET /metrics` on a real worker, parsed whole with prometheus_client's parser: every value
equals what the queue and the database hold."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable

import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from sleuth.crawl.models import (
    DONE,
    FAILED,
    QUEUED,
    crawl_failures,
    crawl_run_items,
    crawl_runs,
)
from sleuth.jobs.redis import RedisQueue
from sleuth.net.clocks import RedisHostClock, SqlHostClock
from sleuth.net.ratelimit import RateLimit
from sleuth.observe.counters import count_outcome
from sleuth.observe.metrics import MIN_SECONDS, OUTCOMES, bucket_value, merged_stats
from sleuth.observe.prometheus import Family, render
from sleuth.runner import shared_budgets
from sleuth.services import Services
from sleuth.web.app import create_app
from sleuth.web.metrics import DURATION_BOUNDS
from tests.observe.helpers import FAIL, GATES, SLOW, TIMED, running_worker, wait_for

LATER = "test.later"  # a queue no worker serves: its job stays delayed
HOST_DELAY = 3600.0


def scrape(services: Services) -> dict[str, list[Sample]]:
    response = create_app(services).test_client().get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    assert families["sleuth_task_duration_seconds"].type == "histogram"
    assert families["sleuth_task_outcomes"].type == "counter"
    assert families["sleuth_queue_jobs"].type == "gauge"
    return {name: family.samples for name, family in families.items()}


def values(samples: Iterable[Sample], name: str, *keys: str) -> dict[tuple[str, ...], float]:
    return {tuple(s.labels[k] for k in keys): s.value for s in samples if s.name == name}


def put_crawl_items(services: Services) -> dict[tuple[str, str, str], int]:
    """Items of one images run written as the crawl layer keeps them (their outcome counts
    are put separately, so the app totals below stay exact)."""
    rows = [
        ("success", None),
        ("error", "not_image"),
        ("error", "not_image"),
        ("error", "http_status"),
    ]
    now = time.time()
    with services.engine.begin() as conn:
        conn.execute(
            sa.insert(crawl_runs).values(id="m", app="images", name="tests", created_at=now)
        )
        for i, (outcome, reason) in enumerate([*rows, (None, None)]):  # the last one is queued
            state = QUEUED if outcome is None else FAILED if reason else DONE
            conn.execute(
                sa.insert(crawl_run_items).values(
                    run_id="m",
                    item_key=str(i),
                    target=f"http://127.0.0.1/{i}",
                    state=state,
                    outcome=outcome,
                )
            )
            if reason:
                conn.execute(
                    sa.insert(crawl_failures).values(
                        run_id="m",
                        item_key=str(i),
                        reason=reason,
                        message="-",
                        attempts=1,
                        first_failed_at=now,
                        last_failed_at=now,
                    )
                )
    return {
        ("images", "success", "none"): 1,
        ("images", "error", "not_image"): 2,
        ("images", "error", "http_status"): 1,
    }


def test_metrics_equal_the_queue_and_the_database(deployed_services: Services) -> None:
    """Embedded (SQLite) and distributed (Redis + PostgreSQL) alike."""
    services = deployed_services
    engine, queue = services.engine, services.queue
    fetches = put_crawl_items(services)
    with engine.begin() as conn:
        for app, outcome, n in [
            ("images", "success", 3),
            ("images", "error", 2),
            ("images", "duplicate", 1),
        ]:
            for i in range(n):
                count_outcome(conn, app, outcome, at=time.time() - 120 * i)
    if isinstance(queue, RedisQueue):
        clock = RedisHostClock(queue.redis, queue.target.prefix)
    else:
        clock = SqlHostClock(engine)
    clock.next_allowed("cooling.example", HOST_DELAY)  # claims now: the next start is in an hour
    budgets = shared_budgets(services)
    window = RateLimit(limit=300, remaining=299, reset_at=time.time() + 300)
    budgets.observe("api.example", "127.0.0.2", window, 200, time.time())
    budgets.observe("busy.example", "", RateLimit(retry_at=time.time() + 600), 429, time.time())

    queue.enqueue_many(TIMED, [({"seconds": 0.01}, None) for _ in range(5)])
    queue.enqueue(FAIL, {"key": "prom", "always": True})
    queue.enqueue(LATER, {}, delay=3600)
    GATES["prom"] = gate = threading.Event()
    queue.enqueue(SLOW, {"gate": "prom"}, priority=3)
    with running_worker(engine, queue, "prom:1"):

        def settled() -> bool:
            with engine.connect() as conn:
                merged = merged_stats(conn)
            timed = merged.get(TIMED)
            held = [s for s in queue.stats() if s.queue == SLOW and s.in_flight == 1]
            return bool(held and timed and timed[0].durations.count == 5 and FAIL in merged)

        wait_for(settled, timeout=60)
        samples = scrape(services)
        stats = queue.stats()
        with engine.connect() as conn:
            merged = merged_stats(conn)
        gate.set()

    jobs = values(samples["sleuth_queue_jobs"], "sleuth_queue_jobs", "queue", "priority", "state")
    expected = {
        (s.queue, str(s.priority), state): getattr(s, state)
        for s in stats
        for state in ("ready", "delayed", "in_flight", "dead")
    }
    assert jobs == expected
    assert jobs[(SLOW, "3", "in_flight")] == 1
    assert jobs[(LATER, "0", "delayed")] == 1
    assert jobs[(FAIL, "0", "dead")] == 1

    outcomes = values(
        samples["sleuth_task_outcomes"], "sleuth_task_outcomes_total", "queue", "outcome"
    )
    assert outcomes == {
        (queue_name, outcome): stage.outcomes[outcome]
        for queue_name, (stage, _) in merged.items()
        for outcome in OUTCOMES
    }
    assert outcomes[(TIMED, "acked")] == 5 and outcomes[(FAIL, "dead")] == 1

    durations = samples["sleuth_task_duration_seconds"]
    for queue_name, (stage, _) in merged.items():
        histogram = stage.durations
        mine = [s for s in durations if s.labels["queue"] == queue_name]
        buckets = [(float(s.labels["le"]), s.value) for s in mine if s.name.endswith("_bucket")]
        assert [le for le, _ in buckets] == [*(le for le, _ in DURATION_BOUNDS), math.inf]
        for le, cumulative in buckets:  # counted here from the raw buckets' middles
            assert cumulative == sum(
                n for i, n in histogram.buckets.items() if bucket_value(i) <= le
            )
        [total] = [s.value for s in mine if s.name.endswith("_sum")]
        [count] = [s.value for s in mine if s.name.endswith("_count")]
        assert (total, count) == (pytest.approx(histogram.total), histogram.count)
    assert DURATION_BOUNDS[0][0] == MIN_SECONDS

    assert (
        values(
            samples["sleuth_fetch_outcomes"],
            "sleuth_fetch_outcomes_total",
            "app",
            "outcome",
            "reason",
        )
        == fetches
    )
    assert values(
        samples["sleuth_app_outcomes"], "sleuth_app_outcomes_total", "app", "outcome"
    ) == {("images", "success"): 3, ("images", "error"): 2, ("images", "duplicate"): 1}
    assert values(samples["sleuth_workers"], "sleuth_workers", "state") == {
        ("live",): 1,
        ("lost",): 0,
        ("stopped",): 0,
    }
    waits = values(
        samples["sleuth_host_next_start_seconds"], "sleuth_host_next_start_seconds", "host"
    )
    assert list(waits) == [("cooling.example",)]
    assert 0 < waits[("cooling.example",)] <= HOST_DELAY
    where = ("api.example", "127.0.0.2")
    budget = "sleuth_host_budget_"
    assert values(samples[budget + "remaining"], budget + "remaining", "host", "source") == {
        where: 299
    }
    assert values(samples[budget + "limit"], budget + "limit", "host", "source") == {where: 300}
    [reset] = values(samples[budget + "reset_seconds"], budget + "reset_seconds").values()
    assert 0 < reset <= 301
    blocked = values(
        samples["sleuth_host_blocked_seconds"], "sleuth_host_blocked_seconds", "host", "source"
    )
    assert list(blocked) == [("busy.example", "")]
    assert 0 < blocked[("busy.example", "")] <= 600


def test_metrics_is_in_the_openapi_document(services: Services) -> None:
    doc = create_app(services).test_client().get("/openapi.json").get_json()
    content = doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(content) == ["text/plain; version=0.0.4; charset=utf-8"]


def test_label_values_and_help_are_escaped() -> None:
    family = Family("t_odd", "gauge", "help with \\ and\na newline")
    family.add(1.5, path='a "quoted" \\ back\nslash')
    family.add(2, path="")
    [parsed] = text_string_to_metric_families(render([family]))
    assert parsed.documentation == "help with \\ and\na newline"
    assert [(s.labels["path"], s.value) for s in parsed.samples] == [
        ('a "quoted" \\ back\nslash', 1.5),
        ("", 2.0),
    ]
    with pytest.raises(ValueError, match="no sample suffix"):
        family.add(1, "_bucket")
