"""Rate-limit budgets shared by workers, on memory, Redis, SQLite, PostgreSQL and MariaDB: one
contract, atomic claims from separate connections, and two clients (objects, and worker
processes) on one shared store that keep a real server's budget without ever going over it."""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa

from sleuth.net.budgets import (
    ABSENT_TTL,
    STRADDLE,
    Budget,
    BudgetStore,
    MemoryBudgets,
    RedisBudgets,
    SqlBudgets,
    as_of,
    claim,
    observe,
    prune_budgets,
    rate_budgets,
)
from sleuth.net.errors import FetchError
from sleuth.net.fetcher import Fetcher
from sleuth.net.ratelimit import RateLimit
from sleuth.store.db import make_engine, migrate
from tests.net.conftest import (
    LOOPBACK,
    SHARED_KINDS,
    LocalServer,
    SharedStore,
    open_shared_store,
)
from tests.servers import scratch_database

KINDS = ["memory", "redis", "sqlite", "postgresql", "mysql"]
FAR = 10**6  # a reset far beyond any test
BASE = LOOPBACK


@pytest.fixture(params=["memory", *SHARED_KINDS])
def make_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[], BudgetStore]]:
    """Opens budget stores on one shared backend, each with its own connection (as separate
    worker processes would have); the memory store is one object shared in-process."""
    if request.param == "memory":
        memory = MemoryBudgets()
        yield lambda: memory
        return
    with open_shared_store(request.param, tmp_path) as shared:
        yield lambda: budget_store(shared)


def budget_store(shared: SharedStore) -> BudgetStore:
    """A budget store on `shared` with a connection of its own."""
    if shared.kind == "redis":
        return RedisBudgets(shared.redis(), shared.prefix)
    return SqlBudgets(shared.engine())


def test_the_budget_contract(make_store: Callable[[], BudgetStore]) -> None:
    store, other = make_store(), make_store()
    now = time.time()
    assert store.claim("a.example", "", now) == 0.0  # unknown: no budget, no wait
    assert store.listing() == []  # ... and nothing written for it
    store.observe("a.example", "", RateLimit(3, 2, now + FAR), 200, now)
    store.observe("a.example", "127.0.0.2", RateLimit(3, 3, now + FAR), 200, now)
    assert other.peek("a.example", "", now) == 0.0
    assert [other.claim("a.example", "", now) for _ in range(2)] == [0.0, 0.0]
    wait = store.claim("a.example", "", now)
    assert FAR - 1 < wait <= FAR  # spent until the reset, on whichever store asks
    assert other.peek("a.example", "", now) == wait  # peeking claims nothing
    assert other.claim("a.example", "127.0.0.2", now) == 0.0  # addresses are independent
    listed = {(b.host, b.source): b for b in other.listing()}
    assert set(listed) == {("a.example", ""), ("a.example", "127.0.0.2")}
    assert (listed["a.example", ""].limit, listed["a.example", ""].remaining) == (3, 0)
    assert listed["a.example", "127.0.0.2"].remaining == 2
    assert listed["a.example", ""].reset_at == now + FAR


def test_a_host_without_a_budget_costs_no_round_trip_for_a_while(
    make_store: Callable[[], BudgetStore],
) -> None:
    store, other = make_store(), make_store()
    now = time.time()
    assert store.claim("d.example", "", now) == 0.0
    assert store.surely_absent("d.example", "", now)
    other.observe("d.example", "", RateLimit(5, 0, now + FAR), 200, now)
    assert not other.surely_absent("d.example", "", now)  # who wrote it knows at once
    if store is not other:  # another worker sees it once its note of the absence is old
        assert store.surely_absent("d.example", "", now + ABSENT_TTL / 2)
        assert not store.surely_absent("d.example", "", now + ABSENT_TTL)
    assert store.claim("d.example", "", now + ABSENT_TTL) > FAR - 10


def test_a_429_blocks_every_store_until_its_retry_after(
    make_store: Callable[[], BudgetStore],
) -> None:
    store, other = make_store(), make_store()
    now = time.time()
    store.observe("b.example", "", RateLimit(retry_at=now + 500), 429, now)
    assert other.claim("b.example", "", now) == 500.0
    assert other.claim("b.example", "", now + 500) == 0.0
    assert store.claim("b.example", "", now + 501) == 0.0


def test_concurrent_claims_never_take_more_than_remains(
    make_store: Callable[[], BudgetStore],
) -> None:
    stores = [make_store() for _ in range(4)]
    now = time.time()
    stores[0].observe("c.example", "", RateLimit(100, 10, now + FAR), 200, now)
    granted: list[float] = []
    lock = threading.Lock()

    def worker(store: BudgetStore) -> None:
        for _ in range(6):
            wait = store.claim("c.example", "", time.time())
            with lock:
                granted.append(wait)

    threads = [threading.Thread(target=worker, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(1 for w in granted if w == 0.0) == 10 and len(granted) == 24


@pytest.mark.parametrize("kind", ["sqlite", "postgresql", "mysql"])
def test_old_budgets_are_pruned(kind: str, tmp_path: Path) -> None:
    with ExitStack() as stack:
        url = f"sqlite:///{tmp_path / 'p.db'}" if kind == "sqlite" else None
        url = url or stack.enter_context(scratch_database(kind))
        engine = make_engine(url)
        stack.callback(engine.dispose)
        migrate(engine)
        store = SqlBudgets(engine)
        now = time.time()
        store.observe("old.example", "", RateLimit(5, 5, now - 7200), 200, now - 7200)
        store.observe("new.example", "", RateLimit(5, 5, now + 60), 200, now)
        with engine.begin() as conn:
            assert prune_budgets(conn, now, older_than=3600) == 1
            hosts = conn.execute(sa.select(rate_budgets.c.host)).scalars().all()
        assert hosts == ["new.example"]


def fetcher(store: BudgetStore, **changes: object) -> Fetcher:
    return Fetcher(replace(BASE, **changes), allow_private=True, budgets=store, backoff=0.01)


async def crawl_two_clients(
    server: LocalServer, store_a: BudgetStore, store_b: BudgetStore, url: str
) -> list[int]:
    async with fetcher(store_a) as a, fetcher(store_b) as b:
        await a.get(url)  # the first answer tells the budget
        results = await asyncio.gather(*(f.get(url) for _ in range(5) for f in (a, b)))
    return [r.status for r in results]


@pytest.mark.anyio
async def test_two_clients_on_one_store_keep_a_servers_budget(
    make_store: Callable[[], BudgetStore], server: LocalServer
) -> None:
    """Eleven requests against 4 per second: the clients wait for each reset instead of
    being refused, and the server never counts one over its limit."""
    key = uuid.uuid4().hex
    url = server.url(f"/budget/mastodon/{key}?limit=4&window=1")
    statuses = await crawl_two_clients(server, make_store(), make_store(), url)
    assert statuses == [200] * 10
    assert server.stats.refused[key] == 0
    assert len(server.stats.arrivals[key]) == 11  # nothing was refused, so nothing retried


def _crawl_in_a_process(kind: str, url: str, prefix: str, target: str, n: int) -> list[int]:
    """A worker process of its own: its own fetcher and connection to the shared store."""
    store = budget_store(SharedStore(kind, url, prefix))

    async def crawl() -> list[int]:
        async with fetcher(store) as f:
            return [r.status for r in await asyncio.gather(*(f.get(target) for _ in range(n)))]

    return asyncio.run(crawl())


@pytest.mark.parametrize("kind", ["redis", "sqlite"])
def test_two_worker_processes_keep_a_servers_budget(
    kind: str, server: LocalServer, tmp_path: Path
) -> None:
    key = uuid.uuid4().hex
    # 3-second windows, longer than `STRADDLE`: a request claimed in a window's last second
    # is taken from the next window too, in case it reaches the server after the reset
    target = server.url(f"/budget/mastodon/{key}?limit=4&window=3")
    with open_shared_store(kind, tmp_path) as shared:
        store = budget_store(shared)

        async def probe() -> None:
            async with fetcher(store) as f:
                await f.get(target)  # the first answer tells the budget

        asyncio.run(probe())
        context = multiprocessing.get_context("spawn")
        with context.Pool(2) as pool:
            args = [(kind, shared.url, shared.prefix, target, 5)] * 2
            statuses = pool.starmap(_crawl_in_a_process, args)
    assert statuses == [[200] * 5, [200] * 5]
    assert server.stats.refused[key] == 0
    assert len(server.stats.arrivals[key]) == 11


@pytest.mark.anyio
@pytest.mark.parametrize("dialect", ["x", "bluesky"])
async def test_whole_second_resets_are_kept_too(dialect: str, server: LocalServer) -> None:
    key = uuid.uuid4().hex
    url = server.url(f"/budget/{dialect}/{key}?limit=3&window=1")
    store = MemoryBudgets()
    statuses = await crawl_two_clients(server, store, store, url)
    assert statuses == [200] * 10
    assert server.stats.refused[key] == 0


@pytest.mark.anyio
async def test_a_spent_budget_beyond_the_wait_cap_goes_back_as_rate_limited(
    server: LocalServer,
) -> None:
    key = uuid.uuid4().hex
    url = server.url(f"/budget/mastodon/{key}?limit=1&window=3600")
    async with Fetcher(BASE, allow_private=True, max_retry_wait=5.0) as f:
        await f.get(url)
        assert f.wait_time(url) > 3000  # the job layer can postpone instead of holding a slot
        with pytest.raises(Exception) as info:
            await f.get(url)
    error = info.value
    assert (error.reason, error.retryable) == ("rate_limited", True)  # type: ignore[attr-defined]
    assert error.retry_after > 3000  # type: ignore[attr-defined]
    assert len(server.stats.arrivals[key]) == 1  # the spent budget sent nothing


def test_a_late_answer_from_a_window_over_neither_stops_nor_renews_the_next_one() -> None:
    """Answers of the window just over keep arriving after the client started the next one
    (claimed at its reset, in flight meanwhile): the client keeps counting the new window."""
    spent = Budget("h", "", limit=3, remaining=0, reset_at=100.0, updated_at=99.0)
    budget, wait = claim(spent, 100.1)  # a new window, whole, its end unknown
    assert (wait, budget.remaining, budget.reset_at) == (0.0, 2, None)
    for status in (200, 429):
        late = observe(budget, RateLimit(3, 0, 100.0), status, 100.2)
        kept = late or budget
        assert (kept.remaining, kept.reset_at, kept.blocked_until) == (2, None, None)
    budget, _ = claim(budget, 100.3)
    budget, _ = claim(budget, 100.3)
    assert claim(budget, 100.4)[1] > 0  # the new window's 3 are spent: no fourth
    # Once an answer of the new window has told its reset, a late one is ignored too.
    told = observe(budget, RateLimit(3, 0, 103.0), 200, 100.5)
    assert told is not None and told.reset_at == 103.0
    late = observe(replace(told, remaining=2), RateLimit(3, 0, 100.0), 429, 100.6)
    assert late is None or (late.remaining, late.blocked_until) == (2, None)


@pytest.mark.anyio
async def test_a_host_that_counts_endpoints_apart_has_a_budget_for_each(
    server: LocalServer,
) -> None:
    """X counts each endpoint's window apart: a spent endpoint stops only its own requests,
    and a block of the host's own budget (a usage cap) stops every endpoint."""
    spent, other = uuid.uuid4().hex, uuid.uuid4().hex
    urls = {key: server.url(f"/budget/x/{key}?limit=3&window=3600") for key in (spent, other)}
    async with Fetcher(BASE, allow_private=True, max_retry_wait=5.0) as f:
        for _ in range(3):
            await f.get(urls[spent], budget=spent)
        await f.get(urls[other], budget=other)
        with pytest.raises(FetchError) as info:
            await f.get(urls[spent], budget=spent)
        assert info.value.reason == "rate_limited" and info.value.retry_after > 3000
        assert f.wait_time(urls[other], budget=other) == 0.0
        assert (await f.get(urls[other], budget=other)).status == 200
        keys = {budget.host for budget in f.budgets.listing()}
        host = urls[spent].split("/")[2]
        assert keys == {f"{host} {spent}", f"{host} {other}"}

        await f.block(urls[other], time.time() + 3600)
        assert f.wait_time(urls[other], budget=other) > 3000
        with pytest.raises(FetchError) as blocked:
            await f.get(urls[other], budget=other)
        assert blocked.value.reason == "rate_limited"
        with pytest.raises(ValueError, match="budget"):
            await f.get(urls[other], budget="not|a name")
    assert len(server.stats.arrivals[spent]) == 3  # the spent budget sent nothing more
    assert len(server.stats.arrivals[other]) == 2
    assert server.stats.refused[spent] == server.stats.refused[other] == 0


def test_requests_claimed_at_a_windows_end_are_taken_from_the_next_one_too() -> None:
    """A request claimed in a window's last moment may reach the server after the reset and
    count in the next window there: that window starts with it taken, so the client never
    sends one more than the server allows."""
    budget = Budget("h", "", limit=3, remaining=2, reset_at=100.0, updated_at=90.0)
    budget, _ = claim(budget, 50.0)  # early in the window: it arrives in this one
    budget, _ = claim(budget, 100.0 - STRADDLE / 2)
    assert (budget.remaining, budget.straddling) == (0, 1)
    budget, wait = claim(budget, 100.1)
    assert (wait, budget.remaining, budget.straddling) == (0.0, 1, 0)
    assert as_of(replace(budget, reset_at=200.0, straddling=3), 200.0).remaining == 0
    # an answer of a later window than the one counted carries the server's own count
    counted = replace(budget, remaining=0, reset_at=200.0, straddling=2)
    later = observe(counted, RateLimit(3, 2, 300.0), 200, 250.0)
    assert later is not None and (later.remaining, later.straddling) == (2, 0)
