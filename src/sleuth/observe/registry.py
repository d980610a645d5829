"""The worker registry: which workers exist, where, and what each is doing now.

Every worker registers a row in the `workers` table (consumer name, host, pid, version, queues
served) and rewrites it every few seconds from a monitor thread with its running jobs (from
`Worker.current`), while also flushing its per-queue timings (`observe.metrics`) and answering
stack requests (`observe.stacks`). The table lives in the application database, which every
worker reaches in both ways of running (the embedded SQLite file, or the PostgreSQL/MariaDB
server of a distributed deployment), so one registry serves both; it does not depend on
which queue backend is used. A worker whose heartbeat is older than `LOST_AFTER` of its
intervals is shown as lost; a clean stop marks it stopped; rows not refreshed for
`prune_after` seconds are deleted, with their timings.

Heartbeats carry the worker's own clock: the machines' clocks are assumed in step (NTP) to
well within `LOST_AFTER` intervals.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine, Table

from sleuth import __version__
from sleuth.jobs.base import DeadJob, QueueStats
from sleuth.jobs.worker import Worker, WorkerEvent
from sleuth.observe.metrics import WorkerMetrics, worker_metrics
from sleuth.observe.stacks import (
    LONG_TEXT,
    format_stacks,
    open_requests,
    prune_requests,
    save_dump,
)
from sleuth.store.schema import metadata
from sleuth.store.upsert import insert_ignore
from sleuth.timefmt import iso_utc

log = logging.getLogger(__name__)

LOST_AFTER = 3.0  # heartbeat intervals without a heartbeat before a worker counts as lost
LOOP_BLOCKED_AFTER = 1.0  # seconds without an event-loop tick reported as a blocked loop
PRUNE_EVERY = 600.0
_TICK = 0.25  # how often the event loop proves it is running

workers = sa.Table(
    "workers",
    metadata,
    sa.Column("consumer", sa.String(255), primary_key=True),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("version", sa.String(32), nullable=False),
    sa.Column("queues", sa.Text, nullable=False),  # JSON list of queue names
    sa.Column("started_at", sa.Double, nullable=False),
    sa.Column("heartbeat_at", sa.Double, nullable=False, index=True),
    sa.Column("beat_every", sa.Double, nullable=False),
    sa.Column("stopped_at", sa.Double, nullable=True),
    sa.Column("loop_lag", sa.Double, nullable=False),
    sa.Column("running_jobs", LONG_TEXT, nullable=False),  # JSON list of {job, queue, since}
)


def put_row(
    conn: Connection, table: Table, key: Mapping[str, Any], values: Mapping[str, Any]
) -> None:
    """Insert the row with primary key `key`, or update it to `values` if it exists."""
    where = [table.c[name] == value for name, value in key.items()]
    if conn.execute(sa.update(table).where(*where).values(dict(values))).rowcount:
        return
    if not insert_ignore(conn, table, {**key, **values}):
        # Another writer inserted it between our two statements: ours is the newer value.
        conn.execute(sa.update(table).where(*where).values(dict(values)))


# -- reading the registry ---------------------------------------------------------------------


@dataclass(frozen=True)
class CurrentJob:
    job_id: str
    queue: str
    since: float


@dataclass(frozen=True)
class WorkerInfo:
    consumer: str
    host: str
    pid: int
    version: str
    queues: list[str]
    started_at: float
    heartbeat_at: float
    interval: float
    stopped_at: float | None
    loop_lag: float
    current: list[CurrentJob]
    state: str  # "live", "lost" (no heartbeat for LOST_AFTER intervals) or "stopped"

    @property
    def loop_blocked(self) -> bool:
        return self.state == "live" and self.loop_lag >= LOOP_BLOCKED_AFTER

    def to_dict(self, now: float) -> dict[str, Any]:
        """JSON form: epoch times, their ISO-8601 form, and ages in seconds at `now`."""
        return {
            "consumer": self.consumer,
            "state": self.state,
            "host": self.host,
            "pid": self.pid,
            "version": self.version,
            "queues": self.queues,
            "started_at": iso_utc(self.started_at),
            "heartbeat_at": iso_utc(self.heartbeat_at),
            "heartbeat_age": round(now - self.heartbeat_at, 3),
            "heartbeat_interval": self.interval,
            "stopped_at": None if self.stopped_at is None else iso_utc(self.stopped_at),
            "loop_lag": round(self.loop_lag, 3),
            "loop_blocked": self.loop_blocked,
            "current": [
                {
                    "job_id": job.job_id,
                    "queue": job.queue,
                    "since": iso_utc(job.since),
                    "running_for": round(now - job.since, 3),
                }
                for job in self.current
            ],
        }


def state_of(heartbeat_at: float, interval: float, stopped_at: float | None, now: float) -> str:
    if stopped_at is not None:
        return "stopped"
    return "lost" if now - heartbeat_at > LOST_AFTER * interval else "live"


_STATE_ORDER = {"live": 0, "lost": 1, "stopped": 2}


def list_workers(
    conn: Connection, now: float | None = None, *, include_stopped: bool = True
) -> list[WorkerInfo]:
    """Registered workers, live first, then lost, then stopped; by name within each."""
    now = time.time() if now is None else now
    query = sa.select(workers)
    if not include_stopped:
        query = query.where(workers.c.stopped_at.is_(None))
    found = []
    for row in conn.execute(query).mappings():
        current = [
            CurrentJob(str(j["job"]), j["queue"], j["since"])
            for j in json.loads(row["running_jobs"])
        ]
        found.append(
            WorkerInfo(
                consumer=row["consumer"],
                host=row["host"],
                pid=row["pid"],
                version=row["version"],
                queues=json.loads(row["queues"]),
                started_at=row["started_at"],
                heartbeat_at=row["heartbeat_at"],
                interval=row["beat_every"],
                stopped_at=row["stopped_at"],
                loop_lag=row["loop_lag"],
                current=sorted(current, key=lambda j: (j.since, j.job_id)),
                state=state_of(row["heartbeat_at"], row["beat_every"], row["stopped_at"], now),
            )
        )
    return sorted(found, key=lambda w: (_STATE_ORDER[w.state], w.consumer))


def live_consumers(conn: Connection) -> list[str]:
    return [w.consumer for w in list_workers(conn, include_stopped=False) if w.state == "live"]


def prune_workers(conn: Connection, now: float, prune_after: float) -> int:
    """Delete workers without a heartbeat for `prune_after` seconds, and their timings;
    returns how many workers went."""
    gone = conn.execute(
        sa.delete(workers).where(workers.c.heartbeat_at < now - prune_after)
    ).rowcount
    known = sa.select(workers.c.consumer)
    conn.execute(sa.delete(worker_metrics).where(worker_metrics.c.consumer.not_in(known)))
    return gone


# -- JSON forms shared by the `sleuth` commands and /api/engine ------------------------------


def queue_stats_dict(stats: QueueStats) -> dict[str, Any]:
    return {**stats.__dict__, "in_flight_by_consumer": dict(stats.in_flight_by_consumer)}


def first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def dead_job_dict(dead: DeadJob) -> dict[str, Any]:
    return {
        "id": dead.id,
        "queue": dead.queue,
        "attempts": dead.attempts,
        "summary": first_line(dead.reason),
        "reason": dead.reason,
        "failed_at": iso_utc(dead.failed_at),
        "payload": dead.payload,
    }


# -- the worker's side ------------------------------------------------------------------------


class WorkerMonitor:
    """Registers one worker, heartbeats, keeps its timings and answers stack requests.

    Use: `Worker(..., on_event=monitor.hook(other_hook))`, then run the worker inside
    `async with monitor.attached(worker):`. The database work happens in a monitor thread,
    never on the worker's event loop; that thread also takes stack dumps, so a worker whose
    loop is blocked still answers `sleuth stacks` and shows `loop_blocked` in the registry.
    `interval`: seconds between heartbeats; `poll`: seconds between checks for stack
    requests; `prune_after`: seconds without heartbeat before a row is deleted.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        interval: float = 5.0,
        poll: float = 1.0,
        prune_after: float = 86400.0,
    ) -> None:
        if not interval > 0:
            raise ValueError(f"interval must be > 0 seconds, not {interval!r}")
        if not 0 < poll <= interval:
            raise ValueError(f"poll must be > 0 and at most the interval, not {poll!r}")
        if not prune_after >= 10 * LOST_AFTER * interval:
            raise ValueError(
                f"prune_after must be at least {10 * LOST_AFTER:g} intervals "
                f"({10 * LOST_AFTER * interval:g} s), not {prune_after!r}: live workers "
                "would be pruned"
            )
        self.engine = engine
        self.interval = interval
        self.poll = poll
        self.prune_after = prune_after
        self.metrics = WorkerMetrics()
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self._worker: Worker | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._started_at = 0.0
        self._tick = time.monotonic()
        self._done = threading.Event()
        self._last_prune = 0.0
        self._failing = False

    def hook(
        self, then: Callable[[WorkerEvent], None] | None = None
    ) -> Callable[[WorkerEvent], None]:
        """The worker's `on_event`: feeds the timings, then calls `then` if given."""
        if then is None:
            return self.metrics.observe

        def both(event: WorkerEvent) -> None:
            self.metrics.observe(event)
            then(event)

        return both

    @asynccontextmanager
    async def attached(self, worker: Worker) -> AsyncIterator[None]:
        """Register `worker` (errors propagate: a worker that cannot reach the database
        should not start), heartbeat while inside, mark it stopped on the way out."""
        if self._worker is not None:
            raise RuntimeError("a WorkerMonitor watches one worker run; make a new one")
        self._worker = worker
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._started_at = time.time()
        self._tick = time.monotonic()
        await asyncio.to_thread(self._register)
        ticker = asyncio.create_task(self._ticking(), name="monitor-ticker")
        thread = threading.Thread(
            target=self._thread_main, name=f"sleuth-monitor-{worker.consumer}", daemon=True
        )
        thread.start()
        try:
            yield
        finally:
            self._done.set()
            ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)
            await asyncio.to_thread(thread.join)
            try:
                await asyncio.to_thread(self._beat, stopping=True)
            except Exception:
                log.exception("could not mark worker %s stopped in the registry", worker.consumer)

    async def _ticking(self) -> None:
        while True:
            self._tick = time.monotonic()
            await asyncio.sleep(_TICK)

    # -- in the monitor thread --------------------------------------------------------------

    def _thread_main(self) -> None:
        next_beat = time.monotonic() + self.interval
        while not self._done.wait(self.poll):
            try:
                self._answer_requests()
                if time.monotonic() >= next_beat:
                    next_beat = time.monotonic() + self.interval
                    self._beat(stopping=False)
            except Exception:
                if not self._failing:  # once per outage, not once per poll
                    log.exception("worker registry: database write failed; retrying")
                self._failing = True
            else:
                if self._failing:
                    log.warning("worker registry: database reachable again")
                self._failing = False

    def _register(self) -> None:
        worker = self._worker
        assert worker is not None
        now = time.time()
        with self.engine.begin() as conn:
            # A previous run under the same name (pid reuse, a restarted test) starts afresh.
            conn.execute(
                sa.delete(worker_metrics).where(worker_metrics.c.consumer == worker.consumer)
            )
            put_row(conn, workers, {"consumer": worker.consumer}, self._row(now, None))
            self._prune(conn, now)

    def _row(self, now: float, stopped_at: float | None) -> dict[str, Any]:
        worker = self._worker
        assert worker is not None
        running = dict(worker.current)  # one C-level copy: safe against the loop's changes
        current = [
            {"job": job_id, "queue": queue, "since": since}
            for job_id, (queue, since) in sorted(running.items(), key=lambda kv: kv[1][1])
        ]
        lag = 0.0 if stopped_at is not None else max(0.0, time.monotonic() - self._tick - _TICK)
        return {
            "host": self.host,
            "pid": self.pid,
            "version": __version__,
            "queues": json.dumps(worker.queues),
            "started_at": self._started_at,
            "heartbeat_at": now,
            "beat_every": self.interval,
            "stopped_at": stopped_at,
            "loop_lag": lag,
            "running_jobs": json.dumps(current, separators=(",", ":")),
        }

    def _beat(self, stopping: bool) -> None:
        worker = self._worker
        assert worker is not None
        now = time.time()
        changed = self.metrics.snapshot(only_changed=True)
        try:
            with self.engine.begin() as conn:
                put_row(
                    conn,
                    workers,
                    {"consumer": worker.consumer},
                    self._row(now, now if stopping else None),
                )
                for queue, data in changed.items():
                    key = {"consumer": worker.consumer, "queue": queue}
                    put_row(conn, worker_metrics, key, {"data": data, "updated_at": now})
                if now - self._last_prune >= PRUNE_EVERY:
                    self._prune(conn, now)
        except Exception:
            self.metrics.mark_unsaved(changed)
            raise

    def _prune(self, conn: Connection, now: float) -> None:
        prune_workers(conn, now, self.prune_after)
        prune_requests(conn, now)
        self._last_prune = now

    def _answer_requests(self) -> None:
        worker = self._worker
        assert worker is not None
        with self.engine.connect() as conn:
            pending = open_requests(conn, worker.consumer, time.time())
        if not pending:
            return
        now = time.time()
        header = (
            f"=== worker {worker.consumer}: pid {self.pid} on {self.host}, sleuth "
            f"{__version__}, dumped at {iso_utc(now)} ===\n"
        )
        lag = time.monotonic() - self._tick - _TICK
        if lag >= LOOP_BLOCKED_AFTER:
            header += f"!!! its event loop has not run for {lag:.1f} s: blocked\n"
        text = format_stacks(
            self._loop,
            header=header,
            loop_thread=self._loop_thread,
            skip_thread=threading.get_ident(),
        )
        with self.engine.begin() as conn:
            for request_id in pending:
                save_dump(conn, request_id, worker.consumer, text, now)
