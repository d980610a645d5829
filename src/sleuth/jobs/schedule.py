"""Periodic jobs: a schedule table in the database, and one scheduler at a time enqueueing the
jobs that are due.

Every worker process (`sleuth worker`, `sleuth serve`) runs a `Scheduler` thread. They elect a
leader with a renewable lock: Redis `SET NX PX`, renewed by a compare-and-pexpire script, when
the queue is on Redis; else a lease row in the database. Only the leader looks for due
schedules, and a stopping leader lets go at once so another takes over without waiting.

Leadership is an economy, not the guarantee. A leader that stalls past its lease may wake up
still believing it leads, so each period of a schedule is first claimed in the schedule table
by a conditional update (`next_due <= now` → the next period), which only one scheduler can
win, and then enqueued with the dedup key `schedule:<name>:<period>`, so that an enqueue
retried after a dropped connection adds nothing. A scheduler that dies between claiming a
period and enqueueing its job skips that period; the next one runs as usual (periodic jobs are
housekeeping: a late run does what the missed one would have).

Periods are aligned on multiples of `every` since the epoch, so schedulers agree on them
whenever they started; a new schedule is due at once. Schedules come from code
(`Periodic`, declared when a scheduler starts) or from rows other code adds to the table; the
scheduler runs every row. Times are the workers' clocks, assumed in step (NTP) to well within
a lease.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import redis
import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from sleuth.jobs.base import JSON, QueueBackend
from sleuth.jobs.checks import dump_payload
from sleuth.jobs.redis import RedisQueue
from sleuth.jobs.scripts import lua
from sleuth.jobs.tasks import Task
from sleuth.store.schema import metadata
from sleuth.store.upsert import insert_ignore, insert_or_update

log = logging.getLogger(__name__)

SCHEDULER_LOCK = "scheduler"

schedules = sa.Table(
    "schedules",
    metadata,
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("queue", sa.String(255), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),  # JSON object
    sa.Column("priority", sa.Integer, nullable=False),
    sa.Column("every", sa.Double, nullable=False),  # seconds between periods
    sa.Column("next_due", sa.Double, nullable=False),  # epoch time the next period starts
    sa.Column("last_enqueued_at", sa.Double, nullable=True),
    sa.Column("last_job_id", sa.String(64), nullable=True),
)

leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("holder", sa.String(255), nullable=False),
    sa.Column("expires_at", sa.Double, nullable=False),
)


@dataclass(frozen=True)
class Periodic:
    """A job of `task` with `payload`, sent once every `every` seconds at the task's priority
    (the payload is checked against the task's type here, when the schedule is declared)."""

    name: str
    task: Task[Any]
    payload: Any
    every: float

    def __post_init__(self) -> None:
        if not self.name or len(self.name) > 200:
            raise ValueError(f"schedule name must be 1 to 200 characters, not {self.name!r}")
        if len(self.task.queue) > 255:
            raise ValueError(f"schedule {self.name!r}: queue must be 1 to 255 characters")
        if not math.isfinite(self.every) or self.every < 1:
            raise ValueError(
                f"schedule {self.name!r}: every must be >= 1 second, not {self.every!r}"
            )
        dump_payload(self.task.encode(self.payload))  # refuses what could not be stored

    @property
    def queue(self) -> str:
        return self.task.queue

    def stored_payload(self) -> JSON:
        """The payload as the schedule table keeps it."""
        return self.task.encode(self.payload)


def period_of(now: float, every: float) -> int:
    """The number of the period `now` falls in (periods start at multiples of `every`)."""
    return math.floor(now / every)


def declare(conn: Connection, periodic: Periodic, now: float) -> None:
    """Add the schedule, due now; or bring an existing row to this definition, keeping when it
    is next due (brought forward if `every` shrank, so it is never due later than a period)."""
    values = {
        "queue": periodic.queue,
        "payload": dump_payload(periodic.stored_payload()),
        "priority": periodic.task.priority,
        "every": periodic.every,
    }
    bound = (period_of(now, periodic.every) + 1) * periodic.every
    next_due = sa.case((schedules.c.next_due > bound, bound), else_=schedules.c.next_due)
    row = {"name": periodic.name, **values, "next_due": now}
    insert_or_update(conn, schedules, row, {**values, "next_due": next_due})


def enqueue_due(engine: Engine, backend: QueueBackend, now: float | None = None) -> list[str]:
    """Enqueue one job for each schedule that is due, claiming its period first; returns the
    names of the schedules whose period this call claimed."""
    now = time.time() if now is None else now
    with engine.connect() as conn:
        due = conn.execute(sa.select(schedules).where(schedules.c.next_due <= now)).mappings().all()
    claimed = []
    for row in due:
        period = period_of(now, row["every"])
        with engine.begin() as conn:
            won = conn.execute(
                sa.update(schedules)
                .where(schedules.c.name == row["name"], schedules.c.next_due <= now)
                .values(next_due=(period + 1) * row["every"], last_enqueued_at=now)
            ).rowcount
        if not won:
            continue  # another scheduler claimed this period
        claimed.append(row["name"])
        job_id = backend.enqueue(
            row["queue"],
            json.loads(row["payload"]),
            priority=row["priority"],
            dedup_key=f"schedule:{row['name']}:{period}",
        )
        if job_id is not None:
            with engine.begin() as conn:
                conn.execute(
                    sa.update(schedules)
                    .where(schedules.c.name == row["name"])
                    .values(last_job_id=job_id)
                )
    return claimed


# -- leader locks -----------------------------------------------------------------------------


class LeaderLock(Protocol):
    """A lock one holder at a time keeps by renewing it before `ttl` seconds run out."""

    holder: str
    ttl: float

    def hold(self) -> bool:
        """Take the lock if it is free or expired, or renew it if this holder has it, for
        `ttl` seconds from now; True when this holder has it now."""
        ...

    def release(self) -> None:
        """Let go at once, if this holder has it."""
        ...


class RedisLock:
    """A leader lock in the Redis key `key` (expiring on the Redis server's clock)."""

    def __init__(self, client: redis.Redis, key: str, holder: str, ttl: float) -> None:
        _check_lock(holder, ttl)
        self.client = client
        self.key = key
        self.holder = holder
        self.ttl = ttl
        self._renew = client.register_script(lua("lock_renew"))
        self._release = client.register_script(lua("lock_release"))

    def hold(self) -> bool:
        ttl_ms = max(1, round(self.ttl * 1000))
        if self._renew(keys=[self.key], args=[self.holder, ttl_ms]) == 1:
            return True
        return bool(self.client.set(self.key, self.holder, nx=True, px=ttl_ms))

    def release(self) -> None:
        self._release(keys=[self.key], args=[self.holder])


class DbLease:
    """A leader lock as a row of the `leases` table, taken over once `expires_at` passed."""

    def __init__(
        self,
        engine: Engine,
        name: str,
        holder: str,
        ttl: float,
        now: Callable[[], float] = time.time,
    ) -> None:
        _check_lock(holder, ttl)
        self.engine = engine
        self.name = name
        self.holder = holder
        self.ttl = ttl
        self._now = now

    def hold(self) -> bool:
        now = self._now()
        # Two short transactions, not one: on MariaDB an update of a missing row followed by
        # an insert deadlocks against another process doing the same.
        with self.engine.begin() as conn:
            renewed = conn.execute(
                sa.update(leases)
                .where(
                    leases.c.name == self.name,
                    sa.or_(leases.c.holder == self.holder, leases.c.expires_at < now),
                )
                .values(holder=self.holder, expires_at=now + self.ttl)
            ).rowcount
        if renewed:
            return True
        with self.engine.begin() as conn:
            row = {"name": self.name, "holder": self.holder, "expires_at": now + self.ttl}
            return insert_ignore(conn, leases, row)

    def release(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(leases)
                .where(leases.c.name == self.name, leases.c.holder == self.holder)
                .values(expires_at=0.0)
            )


def _check_lock(holder: str, ttl: float) -> None:
    if not holder or len(holder) > 255:
        raise ValueError(f"lock holder must be 1 to 255 characters, not {holder!r}")
    if not math.isfinite(ttl) or ttl <= 0:
        raise ValueError(f"lock ttl must be a positive number of seconds, not {ttl!r}")


def leader_lock(
    backend: QueueBackend, engine: Engine, name: str, holder: str, ttl: float
) -> LeaderLock:
    """The lock `name` where the deployment shares state: in the queue's Redis (under its
    prefix) when the queue is on Redis, else in the database."""
    if isinstance(backend, RedisQueue):
        key = f"{backend.target.prefix}:lock:{name}"
        return RedisLock(backend.redis, key, holder, ttl)
    return DbLease(engine, name, holder, ttl)


# -- the scheduler ----------------------------------------------------------------------------


class Scheduler:
    """Declares `declared` schedules, then, while `running()`, tries every `tick` seconds to
    lead and, when leading, enqueues the due jobs. `lock` defaults to `leader_lock(...)` for
    `holder` with a lease of `ttl` seconds (renewed every tick, so ttl must exceed 2 ticks)."""

    def __init__(
        self,
        engine: Engine,
        backend: QueueBackend,
        holder: str,
        declared: Sequence[Periodic] = (),
        *,
        tick: float = 2.0,
        ttl: float = 30.0,
        lock: LeaderLock | None = None,
    ) -> None:
        if not tick > 0 or not ttl > 2 * tick:
            raise ValueError(f"need tick > 0 and ttl > 2 ticks, not tick={tick!r}, ttl={ttl!r}")
        names = [p.name for p in declared]
        if len(set(names)) != len(names):
            raise ValueError(f"schedule names must be unique, not {names}")
        self.engine = engine
        self.backend = backend
        self.declared = list(declared)
        self.tick = tick
        self.lock = lock or leader_lock(backend, engine, SCHEDULER_LOCK, holder, ttl)
        self.leading = False
        self._done = threading.Event()
        self._failing = False

    def declare(self) -> None:
        now = time.time()
        with self.engine.begin() as conn:
            for periodic in self.declared:
                declare(conn, periodic, now)

    def step(self) -> list[str]:
        """One tick: lead if possible; when leading, enqueue what is due (names returned)."""
        self.leading = self.lock.hold()
        return enqueue_due(self.engine, self.backend) if self.leading else []

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Declare the schedules (errors propagate: a worker that cannot reach its database
        should not start), schedule in a thread while inside, let go of the lock on the way out."""
        await asyncio.to_thread(self.declare)
        thread = threading.Thread(target=self._thread_main, name="sleuth-scheduler", daemon=True)
        thread.start()
        try:
            yield
        finally:
            self._done.set()
            await asyncio.to_thread(thread.join)
            if self.leading:
                try:
                    await asyncio.to_thread(self.lock.release)
                except Exception:
                    log.exception("scheduler: could not release the leader lock")

    def _thread_main(self) -> None:
        while True:
            try:
                self.step()
            except Exception:
                self.leading = False
                if not self._failing:  # once per outage, not once per tick
                    log.exception("scheduler: step failed; retrying every %g s", self.tick)
                self._failing = True
            else:
                if self._failing:
                    log.warning("scheduler: working again")
                self._failing = False
            if self._done.wait(self.tick):
                return
