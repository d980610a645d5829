"""Periodic jobs: the schedule table on SQLite, PostgreSQL and MariaDB, leader locks in Redis
and in each database, and schedulers that never enqueue one period twice."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa
from sqlalchemy import Engine

from sleuth.jobs import open_queue
from sleuth.jobs.base import QueueBackend
from sleuth.jobs.payload import PayloadError
from sleuth.jobs.redis import RedisQueue
from sleuth.jobs.schedule import (
    DbLease,
    LeaderLock,
    Periodic,
    RedisLock,
    Scheduler,
    declare,
    enqueue_due,
    leader_lock,
    period_of,
    schedules,
)
from sleuth.jobs.tasks import Task
from sleuth.store.db import make_engine, migrate
from tests.jobs.conftest import delete_prefix, redis_queue
from tests.patience import wait_for
from tests.servers import REDIS_URL, require, scratch_database

HOUR = 3600.0
T0 = 1_700_000_000.0  # 800 s into an hour


@dataclass(frozen=True)
class Empty:
    pass


@dataclass(frozen=True)
class Deep:
    deep: bool


@dataclass(frozen=True)
class V:
    v: float


MAINT = Task("maint", Empty)
MAINT_V = Task("maint", V)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[QueueBackend]:
    queue = open_queue(f"sqlite:///{tmp_path / 'queue.db'}")
    yield queue
    queue.close()


def jobs_of(backend: QueueBackend, queue: str) -> list[dict]:
    taken = backend.reserve([queue], 100, 30, "test")
    return [{"payload": j.payload, "key": j.dedup_key, "priority": j.priority} for j in taken]


def test_periods_are_enqueued_once_each(engine: Engine, backend: QueueBackend) -> None:
    hourly = Periodic("sweep", Task("maint", Deep, priority=3), Deep(True), HOUR)
    with engine.begin() as conn:
        declare(conn, hourly, T0)
    period = period_of(T0, HOUR)
    assert enqueue_due(engine, backend, T0) == ["sweep"]  # a new schedule is due at once
    assert enqueue_due(engine, backend, T0 + 10) == []
    assert jobs_of(backend, "maint") == [
        {"payload": {"deep": True}, "key": f"schedule:sweep:{period}", "priority": 3}
    ]
    next_period = (period + 1) * HOUR
    assert enqueue_due(engine, backend, next_period - 0.5) == []
    assert enqueue_due(engine, backend, next_period) == ["sweep"]
    # Five periods missed (no worker ran): one job, not five.
    assert enqueue_due(engine, backend, next_period + 5.5 * HOUR) == ["sweep"]
    assert enqueue_due(engine, backend, next_period + 5.9 * HOUR) == []
    assert [j["key"] for j in jobs_of(backend, "maint")] == [
        f"schedule:sweep:{period + 1}",
        f"schedule:sweep:{period + 6}",
    ]
    with engine.connect() as conn:
        row = conn.execute(sa.select(schedules)).mappings().one()
    assert row["next_due"] == (period + 7) * HOUR and row["last_job_id"] is not None


def test_redeclaring_updates_the_job_and_keeps_its_period(
    engine: Engine, backend: QueueBackend
) -> None:
    with engine.begin() as conn:
        declare(conn, Periodic("daily", MAINT, Empty(), 24 * HOUR), T0)
    assert enqueue_due(engine, backend, T0) == ["daily"]
    with engine.begin() as conn:  # a restart with a new payload: not due again
        declare(conn, Periodic("daily", MAINT_V, V(2), 24 * HOUR), T0 + 60)
    assert enqueue_due(engine, backend, T0 + 60) == []
    with engine.begin() as conn:  # every shrank: due within the new, shorter period
        declare(conn, Periodic("daily", Task("other", V), V(3), HOUR), T0 + 120)
    assert enqueue_due(engine, backend, T0 + 120) == []
    boundary = (period_of(T0 + 120, HOUR) + 1) * HOUR
    assert enqueue_due(engine, backend, boundary) == ["daily"]
    assert [j["payload"] for j in jobs_of(backend, "other")] == [{"v": 3.0}]


def test_racing_schedulers_claim_each_period_once(engine: Engine, backend: QueueBackend) -> None:
    """6 threads, each as its own scheduler with its own connection, all find the same due
    schedule at the same moment: exactly one enqueues it."""
    with engine.begin() as conn:
        declare(conn, Periodic("race", MAINT, Empty(), HOUR), T0)
    url = engine.url.render_as_string(hide_password=False)
    start = threading.Barrier(6)
    claimed: list[list[str]] = []

    def scheduler() -> None:
        own = make_engine(url)
        start.wait(30)
        claimed.append(enqueue_due(own, backend, T0 + 1))
        own.dispose()

    threads = [threading.Thread(target=scheduler) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(claimed) == [[]] * 5 + [["race"]]
    assert len(jobs_of(backend, "maint")) == 1


def test_bad_schedules_are_refused() -> None:
    with pytest.raises(ValueError, match="every must be"):
        Periodic("x", MAINT, Empty(), 0.5)
    with pytest.raises(ValueError, match="name must be"):
        Periodic("", MAINT, Empty(), HOUR)
    with pytest.raises(PayloadError, match="payload must be a V, not dict"):
        Periodic("x", MAINT_V, {"v": 1}, HOUR)
    with pytest.raises(PayloadError, match=r"V\.v: nan is not a finite number"):
        Periodic("x", MAINT_V, V(float("nan")), HOUR)


# -- leader locks ----------------------------------------------------------------------------

LOCK_KINDS = ["redis", "sqlite", "postgresql", "mysql"]


@pytest.fixture(params=LOCK_KINDS)
def make_lock(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[str, float], LeaderLock]]:
    """Makes locks named alike for different holders, each on its own connection."""
    closers: list[Callable[[], None]] = []
    with ExitStack() as stack:
        if request.param == "redis":
            require("redis", REDIS_URL)
            prefix = f"sleuth-test-{uuid.uuid4().hex[:12]}"
            stack.callback(delete_prefix, prefix)

            def make(holder: str, ttl: float) -> LeaderLock:
                client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
                closers.append(client.close)
                return RedisLock(client, f"{prefix}:lock:scheduler", holder, ttl)

        else:
            if request.param == "sqlite":
                url = f"sqlite:///{tmp_path / 'lock.db'}"
            else:
                url = stack.enter_context(scratch_database(request.param))
            first = make_engine(url)
            migrate(first)
            first.dispose()

            def make(holder: str, ttl: float) -> LeaderLock:
                engine = make_engine(url)
                closers.append(engine.dispose)
                return DbLease(engine, "scheduler", holder, ttl)

        try:
            yield make
        finally:
            for close in closers:
                close()


def test_one_holder_at_a_time_renewed_released_and_taken_over(make_lock) -> None:  # type: ignore[no-untyped-def]
    a, b = make_lock("a", 0.4), make_lock("b", 0.4)
    assert a.hold() and not b.hold()
    assert a.hold() and not b.hold()  # renewed
    a.release()
    assert b.hold() and not a.hold()
    a.release()  # not a's to release: b keeps it
    assert not a.hold()
    time.sleep(0.6)  # b stops renewing (a stalled leader): its lease runs out
    assert a.hold()
    assert not b.hold()  # the stalled leader learns it lost the lock


def test_racing_takers_one_wins(make_lock) -> None:  # type: ignore[no-untyped-def]
    locks = [make_lock(f"w{i}", 30.0) for i in range(6)]
    start = threading.Barrier(len(locks))
    won: list[bool] = []

    def take(lock: LeaderLock) -> None:
        start.wait(30)
        won.append(lock.hold())

    threads = [threading.Thread(target=take, args=(lock,)) for lock in locks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(won) == [False] * 5 + [True]


def test_the_lock_lives_with_the_queue(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrate(engine)
    sqlite_queue = open_queue(f"sqlite:///{tmp_path / 'queue.db'}")
    assert isinstance(leader_lock(sqlite_queue, engine, "s", "me", 30), DbLease)
    sqlite_queue.close()
    with redis_queue(tmp_path) as url:
        queue = open_queue(url)
        assert isinstance(queue, RedisQueue)
        lock = leader_lock(queue, engine, "s", "me", 30)
        assert isinstance(lock, RedisLock) and lock.key == f"{queue.target.prefix}:lock:s"
        assert lock.hold() and queue.redis.get(lock.key) == "me"
        queue.close()
    engine.dispose()


# -- schedulers in worker processes -----------------------------------------------------------


def test_two_running_schedulers_one_leads_and_hands_over(
    engine: Engine, backend: QueueBackend
) -> None:
    """Two workers' schedulers tick together: one leads, the job is enqueued once; when the
    leader stops, the other takes over at once (the lock is released, not left to expire)."""
    every = Periodic("often", MAINT, Empty(), HOUR)
    one = Scheduler(engine, backend, "one", [every], tick=0.05, ttl=60.0)
    two = Scheduler(engine, backend, "two", [every], tick=0.05, ttl=60.0)
    stop_one, stop_two = threading.Event(), threading.Event()

    def run(scheduler: Scheduler, stop: threading.Event) -> None:
        async def main() -> None:
            async with scheduler.running():
                await asyncio.to_thread(stop.wait)

        asyncio.run(main())

    threads = [
        threading.Thread(target=run, args=(one, stop_one)),
        threading.Thread(target=run, args=(two, stop_two)),
    ]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: one.leading or two.leading)
        leader, follower = (one, two) if one.leading else (two, one)
        wait_for(lambda: backend.pending(["maint"]) == 1)
        time.sleep(0.3)  # several ticks of both: still one job, still one leader
        assert backend.pending(["maint"]) == 1 and not follower.leading
        (stop_one if leader is one else stop_two).set()
        wait_for(lambda: follower.leading, timeout=5)  # far sooner than the 60 s lease
    finally:
        stop_one.set()
        stop_two.set()
        for thread in threads:
            thread.join(30)
    assert len(jobs_of(backend, "maint")) == 1


def test_scheduler_refuses_a_lease_shorter_than_two_ticks(
    engine: Engine, backend: QueueBackend
) -> None:
    with pytest.raises(ValueError, match="ttl > 2 ticks"):
        Scheduler(engine, backend, "me", tick=5.0, ttl=9.0)
    with pytest.raises(ValueError, match="unique"):
        Scheduler(
            engine,
            backend,
            "me",
            [Periodic("a", MAINT, Empty(), HOUR), Periodic("a", MAINT_V, V(1), HOUR)],
        )
