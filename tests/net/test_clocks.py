"""Host clocks shared by workers, on Redis, SQLite, PostgreSQL and MariaDB: the same contract
as the in-memory clock, atomic under concurrent claims from separate connections, and what a
server sees when two worker "processes" (separate politeness, one shared clock) fetch from it."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

from sleuth.config import NetSettings
from sleuth.net.clocks import RedisHostClock, SqlHostClock, host_clocks, prune_host_clocks
from sleuth.net.fetcher import Fetcher
from sleuth.net.politeness import HostClock, Politeness
from sleuth.store.db import make_engine, migrate
from tests.jobs.conftest import delete_prefix
from tests.net.conftest import LocalServer, SharedStore
from tests.servers import REDIS_URL, require

KINDS = ["redis", "sqlite", "postgresql", "mysql"]
DAY = 86400.0  # a delay far longer than any test: a claim's slot number is its wait / DAY
DELAY = 0.4  # the per-host delay of the fetching test


@pytest.fixture
def make_clock(shared_store: SharedStore) -> Callable[[], HostClock]:
    """Opens clocks on one shared store, each with its own connection (as separate worker
    processes would have)."""

    def make() -> HostClock:
        if shared_store.kind == "redis":
            return RedisHostClock(shared_store.redis(), shared_store.prefix)
        return SqlHostClock(shared_store.engine())

    return make


def slots(waits: list[float]) -> list[int]:
    return [round(w / DAY) for w in waits]


def test_claims_are_spaced_and_asking_claims_nothing(make_clock) -> None:  # type: ignore[no-untyped-def]
    clock = make_clock()
    assert slots([clock.next_allowed("a", DAY) for _ in range(3)]) == [0, 1, 2]
    assert clock.next_allowed("b", DAY) == 0.0  # hosts are independent
    asked = clock.next_allowed("a", 0.0)
    assert round(asked / DAY) == 3 and asked <= 3 * DAY  # asking claims nothing...
    assert clock.next_allowed("a", 0.0) <= asked  # ...so asking again gives no later time
    assert make_clock().next_allowed("c", 0.0) == 0.0  # an unknown host may start now
    assert slots([make_clock().next_allowed("a", DAY)]) == [3]  # shared by every handle


def test_a_passed_start_does_not_delay_the_next(make_clock) -> None:  # type: ignore[no-untyped-def]
    clock = make_clock()
    assert clock.next_allowed("h", 0.05) == 0.0
    time.sleep(0.1)
    assert clock.next_allowed("h", 0.0) == 0.0
    assert clock.next_allowed("h", 0.05) == 0.0


def test_concurrent_claims_never_share_a_start(make_clock) -> None:  # type: ignore[no-untyped-def]
    """4 threads with a connection each claim 10 starts of one host: 40 distinct slots."""
    clocks = [make_clock() for _ in range(4)]
    got: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(len(clocks))

    def claim(clock: HostClock) -> None:
        start.wait(30)
        for _ in range(10):
            wait = clock.next_allowed("busy.example", DAY)
            with lock:
                got.append(wait)

    threads = [threading.Thread(target=claim, args=(c,)) for c in clocks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(slots(got)) == list(range(40))


def test_bad_arguments_are_refused(make_clock) -> None:  # type: ignore[no-untyped-def]
    clock = make_clock()
    with pytest.raises(ValueError, match="delay must be"):
        clock.next_allowed("h", -1.0)
    with pytest.raises(ValueError, match="delay must be"):
        clock.next_allowed("h", float("inf"))
    with pytest.raises(ValueError, match="host key"):
        clock.next_allowed("", 1.0)


def test_redis_keys_expire_once_the_host_cooled_down() -> None:
    require("redis", REDIS_URL)
    prefix = f"sleuth-test-{uuid.uuid4().hex[:12]}"
    client = redis.Redis.from_url(REDIS_URL)
    try:
        RedisHostClock(client, prefix).next_allowed("h", 2.0)
        ttl = client.pttl(f"{prefix}:host:h")
        assert 2000 < ttl <= 3000  # the start gap, plus a second's margin
    finally:
        client.close()
        delete_prefix(prefix)


def test_sql_clocks_of_cooled_hosts_are_pruned(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate(engine)
    now = [1_000_000.0]
    clock = SqlHostClock(engine, now=lambda: now[0])
    clock.next_allowed("old", 1.0)
    now[0] += 5000
    clock.next_allowed("new", 1.0)
    with engine.begin() as conn:
        assert prune_host_clocks(conn, now[0], older_than=3600) == 1
        assert list(conn.execute(sa.select(host_clocks.c.host)).scalars()) == ["new"]
    engine.dispose()


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["redis", "sqlite"])
async def test_two_workers_keep_the_delay_as_the_server_sees_it(
    kind: str, fresh_server: LocalServer, tmp_path: Path
) -> None:
    """Two fetchers with their own politeness (two worker processes) but one shared clock:
    the server sees the 6 requests spread over 5 delays, none two together. (Each start reaches
    the server a little after its slot, by more or less on a loaded machine, so single gaps
    are only bounded by half the delay; without a shared clock pairs come at once.)"""
    if kind == "redis":
        require("redis", REDIS_URL)
        prefix = f"sleuth-test-{uuid.uuid4().hex[:12]}"
        client = redis.Redis.from_url(REDIS_URL)
        clocks: list[HostClock] = [RedisHostClock(client, prefix) for _ in range(2)]
    else:
        engine = make_engine(f"sqlite:///{tmp_path / 'clock.db'}")
        migrate(engine)
        clocks = [SqlHostClock(engine) for _ in range(2)]
    settings = NetSettings(per_host_delay=DELAY, retries=0)
    url = fresh_server.url("/slow?delay=0")
    try:
        one, two = (
            Fetcher(settings, allow_private=True, politeness=Politeness(delay=DELAY, clock=c))
            for c in clocks
        )
        async with one, two:
            await asyncio.gather(
                *(f.get(f"{url}&n={i}&by={n}") for i in range(3) for n, f in enumerate((one, two)))
            )
    finally:
        if kind == "redis":
            client.close()
            delete_prefix(prefix)
        else:
            engine.dispose()
    starts = sorted(fresh_server.stats.slow_starts)
    assert len(starts) == 6
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert min(gaps) >= DELAY / 2
    assert starts[-1] - starts[0] >= 5 * DELAY - DELAY / 2
