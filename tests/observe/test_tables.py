"""Registry, timings and stack-request tables on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from sleuth.app import migration_dirs
from sleuth.observe.metrics import StageStats, merged_stages, worker_metrics
from sleuth.observe.registry import LOST_AFTER, list_workers, prune_workers, put_row, workers
from sleuth.observe.stacks import (
    MAX_DUMP_CHARS,
    REQUEST_TTL,
    answers,
    open_requests,
    prune_requests,
    request_stacks,
    save_dump,
)
from sleuth.store.db import make_engine, migrate

T0 = 1_700_000_000.0


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    migrate(engine, migration_dirs())
    yield engine
    engine.dispose()


def _worker_row(heartbeat_at: float, stopped_at: float | None = None, jobs: int = 0) -> dict:
    running = [{"job": str(i), "queue": "q", "since": T0 + i} for i in range(jobs)]
    return {
        "host": "h",
        "pid": 7,
        "version": "0.1.0",
        "queues": json.dumps(["q", "r"]),
        "started_at": T0,
        "heartbeat_at": heartbeat_at,
        "beat_every": 5.0,
        "stopped_at": stopped_at,
        "loop_lag": 0.0,
        "running_jobs": json.dumps(running),
    }


def _stats(*durations: float) -> str:
    stats = StageStats()
    for d in durations:
        stats.durations.add(d)
        stats.outcomes["acked"] += 1
    return stats.to_json()


def test_migrations_create_the_tables(engine: Engine) -> None:
    names = set(sa.inspect(engine).get_table_names())
    assert {"workers", "worker_metrics", "stack_requests", "stack_dumps"} <= names


def test_states_rewrites_and_pruning(engine: Engine) -> None:
    with engine.begin() as conn:
        put_row(conn, workers, {"consumer": "a"}, _worker_row(T0))
        put_row(conn, workers, {"consumer": "a"}, _worker_row(T0 + 10, jobs=2000))  # rewrite
        put_row(conn, workers, {"consumer": "b"}, _worker_row(T0 - 100))
        put_row(conn, workers, {"consumer": "c"}, _worker_row(T0 + 5, stopped_at=T0 + 5))
        for consumer in "abc":
            key = {"consumer": consumer, "queue": "q"}
            put_row(conn, worker_metrics, key, {"data": _stats(0.1), "updated_at": T0})
    with engine.connect() as conn:
        found = list_workers(conn, now=T0 + 11)
        assert [(w.consumer, w.state) for w in found] == [
            ("a", "live"),
            ("b", "lost"),
            ("c", "stopped"),
        ]
        a = found[0]
        # 2000 running jobs (over MySQL's 64 KiB TEXT) come back whole and oldest first.
        assert len(a.current) == 2000 and a.current[0].job_id == "0"
        assert a.queues == ["q", "r"] and a.heartbeat_at == T0 + 10
        assert list_workers(conn, now=T0 + 10 + LOST_AFTER * 5 + 1)[0].state == "lost"
        assert [w.consumer for w in list_workers(conn, T0, include_stopped=False)] == ["a", "b"]
    with engine.begin() as conn:
        assert prune_workers(conn, now=T0 + 50, prune_after=120.0) == 1  # b: no beat for 150 s
    with engine.connect() as conn:
        assert sorted(w.consumer for w in list_workers(conn, T0)) == ["a", "c"]
        kept = conn.execute(sa.select(worker_metrics.c.consumer)).scalars()
        assert sorted(kept) == ["a", "c"]  # b's timings went with it


def test_timings_merge_over_workers(engine: Engine) -> None:
    with engine.begin() as conn:
        rows = [("w1", "q", (0.1, 0.2)), ("w2", "q", (0.3,)), ("w2", "r", (1.0, 2.0, 4.0))]
        for consumer, queue, durations in rows:
            key = {"consumer": consumer, "queue": queue}
            put_row(conn, worker_metrics, key, {"data": _stats(*durations), "updated_at": T0})
    with engine.connect() as conn:
        q, r = merged_stages(conn)
        assert (q.queue, q.count, q.workers, q.max) == ("q", 3, 2, 0.3)
        assert (r.queue, r.count, r.workers, r.max) == ("r", 3, 1, 4.0)
        assert r.p50 == pytest.approx(2.0, rel=0.03)
        (only,) = merged_stages(conn, queue="q", consumers=["w2"])
        assert (only.count, only.max) == (1, 0.3)
        assert merged_stages(conn, consumers=[]) == []


def test_stack_requests_and_answers(engine: Engine) -> None:
    big = "x" * 300_000  # well over MySQL's 64 KiB TEXT
    with engine.begin() as conn:
        first = request_stacks(conn, at=T0)
        second = request_stacks(conn, at=T0 + 1)
    with engine.connect() as conn:
        assert sorted(open_requests(conn, "w1", now=T0 + 2)) == sorted([first, second])
        assert open_requests(conn, "w1", now=T0 + REQUEST_TTL + 2) == []  # nobody waits now
    with engine.begin() as conn:
        save_dump(conn, first, "w1", big, T0 + 2)
        save_dump(conn, first, "w1", "again", T0 + 3)  # a repeated answer changes nothing
        save_dump(conn, first, "w2", "other", T0 + 2)
    with engine.connect() as conn:
        assert open_requests(conn, "w1", now=T0 + 3) == [second]
        assert answers(conn, first) == {"w1": big, "w2": "other"}
    with engine.begin() as conn:
        prune_requests(conn, now=T0 + 2 + REQUEST_TTL + 1)
    with engine.connect() as conn:
        assert answers(conn, first) == {} and open_requests(conn, "w1", now=T0) == []
    assert MAX_DUMP_CHARS * 4 < 16 * 1024 * 1024  # a cut dump fits MEDIUMTEXT in utf8mb4
