"""What `run_worker` wires around the app's handlers: the politeness clock every worker shares,
and the scheduler whose periodic cleanup removes what unfinished work left behind."""

from __future__ import annotations

import asyncio
import os
import time
from contextlib import ExitStack
from pathlib import Path

import pytest
import sqlalchemy as sa

from sleuth.cleanup import CLEANUP_QUEUE
from sleuth.config import NetSettings, Settings
from sleuth.jobs.schedule import schedules
from sleuth.net.budgets import RedisBudgets, SqlBudgets
from sleuth.net.clocks import RedisHostClock, SqlHostClock, host_clocks
from sleuth.net.politeness import MemoryHostClock
from sleuth.runner import run_worker, shared_budgets, shared_politeness
from sleuth.services import Services
from tests.jobs.conftest import redis_queue

CLEANUP_JOB = sa.select(schedules.c.last_job_id).where(schedules.c.name == "cleanup")


def test_cleanup_runs_once_per_period_in_the_workers(services: Services) -> None:
    blobs = services.blobs
    stale = blobs.put("crawl-1", "orig", b"abandoned")  # an in-flight original never stored
    fresh = blobs.put("crawl-2", "orig", b"in flight now")
    kept = blobs.put("0123456789abcdef", "gray", b"a result")
    killed = stale.parent / ".tmp-x.orig"  # a blob write whose process was killed
    killed.write_bytes(b"half")
    week_ago = time.time() - 7 * 86400
    for path in (stale, killed, kept):
        os.utime(path, (week_ago, week_ago))
    with services.engine.begin() as conn:
        conn.execute(
            sa.insert(host_clocks),
            [
                {"host": "old.example", "next_at": week_ago},
                {"host": "now.example", "next_at": 1e12},
            ],
        )

    def cleaned() -> bool:
        with services.engine.connect() as conn:
            job = conn.execute(CLEANUP_JOB).scalar()
        return job is not None and services.queue.pending([CLEANUP_QUEUE]) == 0

    asyncio.run(run_worker(services, until=cleaned, handle_signals=False))
    assert not stale.exists() and not killed.exists()
    assert fresh.exists() and kept.exists()
    with services.engine.connect() as conn:
        assert list(conn.execute(sa.select(host_clocks.c.host)).scalars()) == ["now.example"]
        (first,) = conn.execute(CLEANUP_JOB).scalars()
    # Another worker starting within the hour schedules nothing more.
    started = time.monotonic()
    asyncio.run(
        run_worker(services, until=lambda: time.monotonic() > started + 1, handle_signals=False)
    )
    with services.engine.connect() as conn:
        assert list(conn.execute(CLEANUP_JOB).scalars()) == [first]
    [stats] = [s for s in services.queue.stats() if s.queue == CLEANUP_QUEUE]
    assert (stats.ready, stats.delayed, stats.in_flight, stats.dead) == (0, 0, 0, 0)


@pytest.mark.parametrize("queue", ["sqlite", "redis"])
def test_the_politeness_clock_and_budgets_are_shared_where_the_queue_is(
    queue: str, tmp_path: Path
) -> None:
    shared = RedisHostClock if queue == "redis" else SqlHostClock
    with ExitStack() as stack:
        url = stack.enter_context(redis_queue(tmp_path)) if queue == "redis" else ""
        for delay, expected in ((0.0, MemoryHostClock), (0.5, shared)):
            settings = Settings(
                data_dir=tmp_path / "data", queue_url=url, net=NetSettings(per_host_delay=delay)
            )
            services = Services(settings)
            stack.callback(services.close)
            politeness = shared_politeness(services)
            assert isinstance(politeness.clock, expected) and politeness.delay == delay
            budgets = shared_budgets(services)
            assert isinstance(budgets, RedisBudgets if queue == "redis" else SqlBudgets)
