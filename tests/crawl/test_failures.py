"""The failure record and retries on SQLite, PostgreSQL and MariaDB: what failed, why, how
often and when; retried items queued once; a success marks the failure resolved."""

from __future__ import annotations

import time

import sqlalchemy as sa
from sqlalchemy import Engine

from sleuth.crawl import runs
from sleuth.crawl.failures import MAX_MESSAGE, by_reason, every_failure, page
from sleuth.crawl.models import QUEUED, crawl_failures, crawl_run_items
from sleuth.crawl.retry import retry_failures
from sleuth.crawl.runs import RunItem
from sleuth.jobs.base import QueueBackend
from tests.crawl.conftest import APP, counted, drain, toy_job

RUN = runs.run_id_for("toy run 1")
OTHER = runs.run_id_for("toy run 2")


def listed(engine: Engine, queue: QueueBackend, run: str, n: int) -> None:
    runs.open_run(engine, run, APP, f"toy {run[:6]}")
    keys = [RunItem(run, str(i), f"https://toy.example/{run[:6]}/{i}") for i in range(n)]
    runs.add_items(engine, queue, keys, toy_job)
    drain(queue)


def fail(engine: Engine, run: str, key: str, reason: str, status: int | None = None) -> bool:
    with engine.begin() as conn:
        return runs.fail(conn, APP, run, key, reason, f"{reason} on {key}", status)


def test_a_failure_says_what_why_how_often_and_when(engine: Engine, queue: QueueBackend) -> None:
    listed(engine, queue, RUN, 3)
    before = time.time()
    assert fail(engine, RUN, "1", "http_status", 404)
    with engine.begin() as conn:
        runs.fail(conn, APP, RUN, "2", "not_image", "x" * 5000)
    (first, second) = every_failure(engine, APP)
    assert (first.run, first.key, first.target) == (RUN, "1", f"https://toy.example/{RUN[:6]}/1")
    assert (first.reason, first.message, first.http_status) == (
        "http_status",
        "http_status on 1",
        404,
    )
    assert first.attempts == 1
    assert before <= first.first_failed_at == first.last_failed_at <= time.time()
    assert (second.reason, len(second.message), second.http_status) == (
        "not_image",
        MAX_MESSAGE,
        None,
    )
    as_json = first.as_json()
    assert as_json["crawl"] == RUN and as_json["item"] == "1"
    assert as_json["first_failed"].endswith("Z") and "T" in as_json["first_failed"]


def test_retry_requeues_once_and_a_second_failure_counts_an_attempt(
    engine: Engine, queue: QueueBackend
) -> None:
    listed(engine, queue, RUN, 4)
    fail(engine, RUN, "0", "timeout")
    fail(engine, RUN, "1", "http_status", 503)
    with engine.begin() as conn:
        runs.resolve(conn, APP, RUN, "2", "success")
    first = {f.key: f for f in every_failure(engine, APP)}

    done = retry_failures(engine, queue, APP, toy_job)
    assert (done.items, done.queued) == (2, 2)
    again = retry_failures(engine, queue, APP, toy_job)  # idempotent: nothing queued twice
    assert (again.items, again.queued) == (0, 0)
    assert sorted(p["key"] for p in drain(queue)) == ["0", "1"]
    assert not runs.is_resolved(engine, RUN, "0")

    # "0" fails again, "1" succeeds this time.
    assert fail(engine, RUN, "0", "http_status", 500)
    with engine.begin() as conn:
        assert runs.resolve(conn, APP, RUN, "1", "success")
    (still,) = every_failure(engine, APP)
    assert (still.key, still.reason, still.http_status, still.attempts) == (
        "0",
        "http_status",
        500,
        2,
    )
    assert still.first_failed_at == first["0"].first_failed_at
    assert still.last_failed_at >= first["0"].last_failed_at
    with engine.connect() as conn:
        resolved = conn.execute(
            sa.select(crawl_failures.c.resolved_at).where(crawl_failures.c.item_key == "1")
        ).scalar_one()
    assert resolved is not None  # kept, and marked
    assert counted(engine) == {"success": 2, "error": 3}


def test_retry_after_a_kill_between_its_two_steps_queues_the_job(
    engine: Engine, queue: QueueBackend
) -> None:
    """The item went back to `queued` but its job was never queued: a second retry queues it."""
    listed(engine, queue, RUN, 1)
    fail(engine, RUN, "0", "timeout")
    with engine.begin() as conn:
        conn.execute(sa.update(crawl_run_items).values(state=QUEUED, outcome=None))
    done = retry_failures(engine, queue, APP, toy_job)
    assert (done.items, done.queued) == (0, 1)
    assert [p["key"] for p in drain(queue)] == ["0"]


def test_retry_by_run_and_reason(engine: Engine, queue: QueueBackend) -> None:
    listed(engine, queue, RUN, 3)
    listed(engine, queue, OTHER, 2)
    fail(engine, RUN, "0", "timeout")
    fail(engine, RUN, "1", "not_image")
    fail(engine, OTHER, "0", "timeout")
    assert retry_failures(engine, queue, APP, toy_job, run=RUN, reason="timeout").queued == 1
    assert drain(queue) == [{"run": RUN, "key": "0"}]
    with engine.begin() as conn:
        runs.resolve(conn, APP, RUN, "0", "success")
    assert retry_failures(engine, queue, APP, toy_job, reason="timeout").queued == 1
    assert drain(queue) == [{"run": OTHER, "key": "0"}]
    assert retry_failures(engine, queue, "other-app", toy_job).queued == 0


def test_pages_by_id_with_filters(engine: Engine, queue: QueueBackend) -> None:
    listed(engine, queue, RUN, 12)
    listed(engine, queue, OTHER, 3)
    for i in range(12):
        fail(engine, RUN, str(i), "timeout" if i % 3 else "not_image")
    fail(engine, OTHER, "2", "timeout")
    with engine.connect() as conn:
        seen: list[tuple[str, str]] = []
        after = 0
        while batch := page(conn, APP, after=after, limit=5):
            seen += [(f.run, f.key) for f in batch]
            after = batch[-1].id
        assert seen == [(RUN, str(i)) for i in range(12)] + [(OTHER, "2")]
        assert [f.key for f in page(conn, APP, run=RUN, reason="not_image")] == ["0", "3", "6", "9"]
        assert [f.run for f in page(conn, APP, run=OTHER)] == [OTHER]
        assert page(conn, "other-app") == []
        assert by_reason(conn, APP) == {"timeout": 9, "not_image": 4}
        assert list(by_reason(conn, APP)) == ["timeout", "not_image"]  # most frequent first
        assert by_reason(conn, APP, OTHER) == {"timeout": 1}
