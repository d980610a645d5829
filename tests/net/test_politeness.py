"""Per-host politeness: the clock alone (fake time), then limits as a real server sees them."""

from __future__ import annotations

import asyncio
import itertools

import httpx
import pytest

from sleuth.config import NetSettings
from sleuth.net.fetcher import Fetcher, SourceProfile
from sleuth.net.politeness import MemoryHostClock, Politeness, host_key
from tests.net.conftest import LocalServer


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_clock_spaces_claims_by_the_delay() -> None:
    time = FakeTime()
    clock = MemoryHostClock(now=time)
    assert [clock.next_allowed("a", 1.0) for _ in range(3)] == [0.0, 1.0, 2.0]
    assert clock.next_allowed("b", 1.0) == 0.0  # hosts are independent
    assert clock.next_allowed("a", 0.0) == 3.0  # asking claims nothing...
    assert clock.next_allowed("a", 0.0) == 3.0  # ...so asking twice gives the same answer
    time.now += 2.5
    assert clock.next_allowed("a", 0.0) == 0.5
    time.now += 10
    assert clock.next_allowed("a", 1.0) == 0.0


def test_clock_forgets_hosts_that_cooled_down() -> None:
    """A crawl over many hosts keeps only those still cooling, so memory stays bounded."""
    time = FakeTime()
    clock = MemoryHostClock(now=time)
    for n in range(3000):
        clock.next_allowed(f"old{n}", 1.0)
    time.now += 5
    for n in range(3000):
        clock.next_allowed(f"new{n}", 1.0)
    assert len(clock._next) < 4000  # the 3000 old hosts were swept, not all kept
    assert all(clock.next_allowed(f"old{n}", 0.0) == 0.0 for n in range(3000))


def test_politeness_validates_its_limits() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Politeness(concurrency=0)
    with pytest.raises(ValueError, match="negative"):
        Politeness(delay=-1)


def test_host_key_keeps_explicit_ports_apart() -> None:
    assert host_key(httpx.URL("http://Example.COM/a")) == "example.com"
    assert host_key(httpx.URL("https://example.com:443/a")) == "example.com"
    assert host_key(httpx.URL("http://127.0.0.1:8081/")) == "127.0.0.1:8081"


@pytest.mark.anyio
async def test_slot_waits_for_the_gap_and_drops_idle_hosts() -> None:
    politeness = Politeness(concurrency=2, delay=0.2)
    async with politeness.slot("h"):
        assert politeness.active("h") == 1
        assert 0.1 < politeness.wait_time("h") <= 0.2
    assert politeness.active("h") == 0
    assert politeness.wait_time("other") == 0.0


async def _fetch_many(server: LocalServer, settings: NetSettings, n: int, path: str) -> None:
    async with Fetcher(settings, allow_private=True) as fetcher:
        await asyncio.gather(*(fetcher.get(server.url(f"{path}&n={i}")) for i in range(n)))


@pytest.mark.anyio
async def test_concurrency_limit_as_the_server_sees_it(fresh_server: LocalServer) -> None:
    settings = NetSettings(per_host_concurrency=3, retries=0)
    await _fetch_many(fresh_server, settings, 12, "/slow?delay=0.2")
    assert fresh_server.stats.max_active_slow <= 3
    assert fresh_server.stats.max_connections <= 3


@pytest.mark.anyio
async def test_without_the_limit_the_server_sees_more(fresh_server: LocalServer) -> None:
    """Control for the test above: the same load with a high limit overlaps beyond 3."""
    settings = NetSettings(per_host_concurrency=12, retries=0)
    await _fetch_many(fresh_server, settings, 12, "/slow?delay=0.2")
    assert fresh_server.stats.max_active_slow > 3


@pytest.mark.anyio
async def test_delay_between_starts_and_wait_time(fresh_server: LocalServer) -> None:
    settings = NetSettings(per_host_delay=0.3, retries=0)
    async with Fetcher(settings, allow_private=True) as fetcher:
        url = fresh_server.url("/slow?delay=0")
        assert fetcher.wait_time(url) == 0.0
        await asyncio.gather(*(fetcher.get(f"{url}&n={i}") for i in range(3)))
        assert 0 < fetcher.wait_time(url) <= 0.3
        assert fetcher.wait_time(fresh_server.url("/x", host="localhost")) == 0.0
    starts = fresh_server.stats.slow_starts
    assert len(starts) == 3
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert min(gaps) >= 0.25  # a lower bound: a slow machine only widens the gaps


@pytest.mark.anyio
async def test_fetchers_can_share_one_politeness(fresh_server: LocalServer) -> None:
    shared = Politeness(concurrency=2)
    settings = NetSettings(retries=0)
    url = fresh_server.url("/slow?delay=0.2")
    async with (
        Fetcher(settings, allow_private=True, politeness=shared) as one,
        Fetcher(settings, allow_private=True, politeness=shared) as two,
    ):
        await asyncio.gather(
            *(f.get(f"{url}&n={i}&by={id(f)}") for i in range(4) for f in (one, two))
        )
    assert fresh_server.stats.max_active_slow <= 2


@pytest.mark.anyio
async def test_a_profile_paces_its_host_beyond_the_settings(fresh_server: LocalServer) -> None:
    settings = NetSettings(per_host_delay=0.0, retries=0)
    paced = SourceProfile("paced", min_interval=0.3)
    async with Fetcher(settings, allow_private=True) as fetcher:
        url = fresh_server.url("/slow?delay=0")
        await asyncio.gather(*(fetcher.get(f"{url}&n={i}", profile=paced) for i in range(3)))
        assert 0 < fetcher.wait_time(url) <= 0.3
        await fetcher.get(fresh_server.url("/slow?delay=0", host="localhost"))
        assert fetcher.wait_time(fresh_server.url("/x", host="localhost")) == 0.0  # unpaced
    starts = fresh_server.stats.slow_starts
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts[:3])]
    assert min(gaps) >= 0.25  # a lower bound: a slow machine only widens the gaps
    with pytest.raises(ValueError, match="min_interval must not be negative"):
        SourceProfile("bad", min_interval=-1.0)
