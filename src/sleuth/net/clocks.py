"""`HostClock`s shared by every worker process: one next-allowed start time per host, in Redis
or in the database, so that a per-host delay holds however many workers fetch from the host.

Each claim is atomic (one Lua script in Redis; one upsert that locks the row in SQL), so two workers
never get the same start. The Redis clock reads the Redis server's clock, as the Redis queue
does; the SQL clock uses each worker's own clock, which is assumed in step (NTP) to well within
the delays asked. Both are blocking calls: `Politeness` runs them off the event loop.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import redis
import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from sleuth.jobs.scripts import lua
from sleuth.store.schema import metadata
from sleuth.store.upsert import insert_or_update

host_clocks = sa.Table(
    "host_clocks",
    metadata,
    sa.Column("host", sa.String(255), primary_key=True),
    sa.Column("next_at", sa.Double, nullable=False, index=True),
)


def _check_delay(delay: float) -> None:
    if not math.isfinite(delay) or delay < 0:
        raise ValueError(f"delay must be a finite number of seconds >= 0, not {delay!r}")


def _check_host(host: str) -> None:
    if not host or len(host) > 255:
        raise ValueError(f"host key must be 1 to 255 characters, not {host!r}")


class RedisHostClock:
    """Next allowed starts in Redis keys `<prefix>:host:<host>` (the queue's prefix and
    connection when the queue is on Redis)."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._claim = client.register_script(lua("host_claim", "sleuth.net"))
        self.key_prefix = f"{prefix}:host:"

    def next_allowed(self, host: str, delay: float) -> float:
        _check_host(host)
        _check_delay(delay)
        waited = self._claim(keys=[self.key_prefix + host], args=[round(delay * 1e6)])
        return int(waited) / 1e6


class SqlHostClock:
    """Next allowed starts in the `host_clocks` table of the application database."""

    def __init__(self, engine: Engine, now: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self._now = now

    def next_allowed(self, host: str, delay: float) -> float:
        _check_host(host)
        _check_delay(delay)
        now = self._now()
        row = host_clocks.c.host == host
        if delay == 0:
            with self.engine.connect() as conn:
                next_at = conn.execute(sa.select(host_clocks.c.next_at).where(row)).scalar()
            return 0.0 if next_at is None else max(0.0, next_at - now)
        # next_at = max(next_at, now) + delay in one upsert that locks the row, so that
        # concurrent claims queue up behind each other instead of reading the same value.
        start = sa.case((host_clocks.c.next_at > now, host_clocks.c.next_at), else_=now)
        with self.engine.begin() as conn:
            insert_or_update(
                conn,
                host_clocks,
                {"host": host, "next_at": now + delay},
                {"next_at": start + delay},
            )
            next_at = conn.execute(sa.select(host_clocks.c.next_at).where(row)).scalar_one()
        return max(0.0, float(next_at) - delay - now)


def prune_host_clocks(conn: Connection, now: float, older_than: float = 3600.0) -> int:
    """Delete the clocks of hosts that cooled down `older_than` seconds ago; returns how many."""
    return conn.execute(
        sa.delete(host_clocks).where(host_clocks.c.next_at < now - older_than)
    ).rowcount
