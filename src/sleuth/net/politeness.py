"""Per-host politeness: at most N requests at once to a host, and a minimum gap between starts.

Two parts with different reach. The concurrency limit is a semaphore per host, shared by the
coroutines of one process (one `Politeness` per worker process). The gap between starts is kept
by a `HostClock`, a tiny protocol so that a clock shared by all workers (`net.clocks`: Redis or
the database) can replace the in-memory one without touching the fetcher. Because the clock
can be asked how long a host is still cooling down without claiming anything, the job layer
can delay a job for that host instead of holding a worker slot while it sleeps.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol

import httpx


class HostClock(Protocol):
    """When each host may next be sent a request.

    Only durations cross this interface, so an implementation shared between machines can keep
    wall-clock times in SQLite or Redis while the in-memory one uses a monotonic clock."""

    def next_allowed(self, host: str, delay: float) -> float:
        """Claim the next start for `host`; return the seconds to wait before starting.

        The claim pushes the host's next allowed start `delay` seconds past this one. With
        `delay == 0` nothing is pushed, so that call only asks how long the host is cooling."""
        ...


class MemoryHostClock:
    """A `HostClock` for one process; `now` is injectable so tests need not sleep."""

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self._now = now
        self._next: dict[str, float] = {}
        self._sweep_at = 1024

    def next_allowed(self, host: str, delay: float) -> float:
        now = self._now()
        start = max(now, self._next.get(host, now))
        if delay > 0:
            self._next[host] = start + delay
            if len(self._next) > self._sweep_at:
                self._sweep(now)
        return start - now

    def _sweep(self, now: float) -> None:
        """Forget hosts whose cooling is over, so a crawl of many hosts does not grow forever."""
        self._next = {host: at for host, at in self._next.items() if at > now}
        self._sweep_at = max(1024, 2 * len(self._next))


def host_key(url: httpx.URL) -> str:
    """The politeness key of a URL: its host, with the port when one is given explicitly."""
    host = url.host.lower()
    return host if url.port is None else f"{host}:{url.port}"


@dataclass
class _Gate:
    semaphore: asyncio.Semaphore
    users: int = field(default=0)


class Politeness:
    """Per-host concurrency limit and start gap for every request of one process."""

    def __init__(
        self, concurrency: int = 8, delay: float = 0.0, clock: HostClock | None = None
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"per-host concurrency must be at least 1, not {concurrency}")
        if delay < 0:
            raise ValueError(f"per-host delay must not be negative, not {delay}")
        self.concurrency = concurrency
        self.delay = delay
        self.clock: HostClock = clock or MemoryHostClock()
        self._gates: dict[str, _Gate] = {}

    def wait_time(self, host: str) -> float:
        """Seconds until `host`'s start gap has passed (0 when now); claims nothing.

        Busy concurrency slots are not counted: how long they stay busy is unknown."""
        return max(0.0, self.clock.next_allowed(host, 0.0))

    def active(self, host: str) -> int:
        """How many coroutines hold or wait for a slot of `host` now."""
        gate = self._gates.get(host)
        return 0 if gate is None else gate.users

    @asynccontextmanager
    async def slot(self, host: str, delay: float = 0.0) -> AsyncIterator[None]:
        """Hold one of `host`'s concurrent slots, entered only once its start gap has passed;
        `delay` lengthens the gap this start claims (a source's own pace) beyond `self.delay`."""
        delay = max(self.delay, delay)
        gate = self._gates.get(host)
        if gate is None:
            gate = self._gates[host] = _Gate(asyncio.Semaphore(self.concurrency))
        gate.users += 1
        try:
            async with gate.semaphore:
                if isinstance(self.clock, MemoryHostClock):
                    wait = self.clock.next_allowed(host, delay)
                else:  # a shared clock is a round trip to Redis or the database
                    wait = await asyncio.to_thread(self.clock.next_allowed, host, delay)
                if wait > 0:
                    await asyncio.sleep(wait)
                yield
        finally:
            gate.users -= 1
            if gate.users == 0:
                del self._gates[host]
