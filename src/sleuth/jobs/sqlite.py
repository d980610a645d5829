"""The embedded queue backend: one SQLite file in WAL mode, shared by every worker process.

Each write is one short `BEGIN IMMEDIATE` transaction, so processes serialise on SQLite's write
lock instead of racing; reserve is one `UPDATE ... RETURNING` over the best ready rows. A row
lives in `jobs` while it is unfinished (ready, delayed or reserved), so a unique index there
is exactly "dedup key unique among unfinished jobs", and acking (deleting) releases the key.
"""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from sleuth.jobs.base import JSON, DeadJob, Job, LeaseLost, QueueBackend, QueueStats
from sleuth.jobs.checks import (
    check_dedup,
    check_enqueue,
    check_join,
    check_lease,
    check_queues,
    check_reserve,
    check_retry_at,
    dump_payload,
    load_payload,
)
from sleuth.jobs.fanin import Entry, FanIn

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: (id, deliveries) is unique
    queue        TEXT    NOT NULL,
    priority     INTEGER NOT NULL,
    payload      TEXT    NOT NULL,
    state        TEXT    NOT NULL CHECK (state IN ('ready', 'delayed', 'reserved')),
    available_at REAL    NOT NULL,
    lease_until  REAL,
    consumer     TEXT,
    attempts     INTEGER NOT NULL DEFAULT 0,  -- deliveries that count towards max attempts
    deliveries   INTEGER NOT NULL DEFAULT 0,  -- every delivery: identifies the current holder
    dedup_key    TEXT,
    created_at   REAL    NOT NULL,
    last_error   TEXT
);
CREATE INDEX IF NOT EXISTS jobs_ready ON jobs (queue, state, priority DESC, available_at);
CREATE INDEX IF NOT EXISTS jobs_delayed ON jobs (available_at) WHERE state = 'delayed';
CREATE INDEX IF NOT EXISTS jobs_leased ON jobs (lease_until) WHERE state = 'reserved';
CREATE UNIQUE INDEX IF NOT EXISTS jobs_dedup ON jobs (queue, dedup_key)
    WHERE dedup_key IS NOT NULL;
CREATE TABLE IF NOT EXISTS dead (
    id         INTEGER PRIMARY KEY,
    queue      TEXT    NOT NULL,
    priority   INTEGER NOT NULL,
    payload    TEXT    NOT NULL,
    attempts   INTEGER NOT NULL,
    dedup_key  TEXT,
    reason     TEXT    NOT NULL,
    created_at REAL    NOT NULL,
    failed_at  REAL    NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_failed ON dead (failed_at);
CREATE TABLE IF NOT EXISTS queues (
    queue    TEXT    NOT NULL,
    priority INTEGER NOT NULL,
    PRIMARY KEY (queue, priority)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS joins (
    key        TEXT NOT NULL,
    part       TEXT NOT NULL,
    value      TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (key, part)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS joins_created ON joins (created_at);
"""

_INSERT = (
    "INSERT INTO jobs (queue, priority, payload, state, available_at, dedup_key, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)
_RETURNING = " RETURNING id, queue, payload, priority, attempts, lease_until, dedup_key,"
_RETURNING += " deliveries, available_at"
_HELD = "id = ? AND deliveries = ? AND state = 'reserved'"
_PRUNE_EVERY = 60.0


def _delivery(job: Job) -> tuple[int, int]:
    """(row id, delivery number) of a job reserved from this backend."""
    try:
        return int(job.id), int(job.receipt)
    except ValueError:
        raise ValueError(
            f"job {job.id!r} (receipt {job.receipt!r}) was not reserved from a SQLite queue"
        ) from None


_instances: weakref.WeakSet[SqliteQueue] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # A lock that another thread held at fork time would stay locked for ever in the child.
    for queue in list(_instances):
        queue._lock = threading.RLock()


os.register_at_fork(after_in_child=_after_fork_in_child)


@functools.lru_cache(maxsize=32)
def _reserve_sql(queues: int) -> str:
    """Reserve from `queues` queues: one index range per queue, each already in (priority
    desc, age) order, merged and cut to n. Parameters: consumer, lease end, then (queue, n)
    per queue, then n."""
    best = " UNION ALL ".join(
        "SELECT * FROM (SELECT id, priority, available_at FROM jobs"
        " WHERE queue = ? AND state = 'ready'"
        " ORDER BY priority DESC, available_at, id LIMIT ?)"
        for _ in range(queues)
    )
    return (
        "UPDATE jobs SET state = 'reserved', consumer = ?, lease_until = ?,"
        " attempts = attempts + 1, deliveries = deliveries + 1"
        f" WHERE id IN (SELECT id FROM ({best})"
        " ORDER BY priority DESC, available_at, id LIMIT ?)" + _RETURNING
    )


class SqliteQueue(QueueBackend):
    """A `QueueBackend` on one SQLite file.

    Any number of processes may open the same file. One instance may be shared by the threads
    of a process: calls are serialised on one connection by a lock (SQLite serialises writers
    anyway), and a forked child transparently opens its own connection.
    """

    def __init__(
        self, path: str | Path, *, busy_timeout: float = 30.0, join_ttl: float = 86400.0
    ) -> None:
        self.path = Path(path)
        if str(path) in {"", ":memory:"}:
            raise ValueError("the queue needs a file path: an in-memory queue is not durable")
        self.busy_timeout = busy_timeout
        self.join_ttl = join_ttl
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._inherited: list[sqlite3.Connection] = []
        self._pid = -1
        self._closed = False
        self._known_queues: set[tuple[str, int]] = set()
        self._fanin = SqliteFanIn(self)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            self._connection()
        _instances.add(self)

    def __repr__(self) -> str:
        return f"SqliteQueue({str(self.path)!r})"

    # -- connection and transactions ------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise RuntimeError(f"{self!r} is closed")
        if self._conn is None or self._pid != os.getpid():
            if self._conn is not None:
                # Forked: the parent's connection must be neither used nor closed here
                # (closing could disturb the parent's locks); keep it, open our own.
                self._inherited.append(self._conn)
            conn = sqlite3.connect(
                self.path,
                timeout=self.busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout * 1000)}")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("BEGIN IMMEDIATE")  # executescript would commit: run one by one
            try:
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            self._conn, self._pid = conn, os.getpid()
            self._known_queues.clear()
        return self._conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction that takes the write lock up front, so it never has to
        upgrade a read snapshot (which SQLite refuses with SQLITE_BUSY, without waiting)."""
        with self._lock:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every query in it sees the same snapshot."""
        with self._lock:
            conn = self._connection()
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")

    def _register(self, conn: sqlite3.Connection, pairs: set[tuple[str, int]]) -> None:
        """Remember (queue, priority) pairs so `stats` lists queues that are empty now."""
        new = pairs - self._known_queues
        if new:
            conn.executemany("INSERT OR IGNORE INTO queues VALUES (?, ?)", sorted(new))

    # -- producing ---------------------------------------------------------------------------

    def enqueue(
        self,
        queue: str,
        payload: JSON,
        *,
        priority: int = 0,
        delay: float = 0.0,
        dedup_key: str | None = None,
    ) -> str | None:
        check_enqueue(queue, priority, delay, dedup_key)
        text = dump_payload(payload)
        now = time.time()
        state = "delayed" if delay > 0 else "ready"
        with self._write() as conn:
            self._register(conn, {(queue, priority)})
            row = conn.execute(
                _INSERT + " RETURNING id",
                (queue, priority, text, state, now + delay, dedup_key, now),
            ).fetchone()
        self._known_queues.add((queue, priority))
        return None if row is None else str(row[0])

    def enqueue_many(
        self, queue: str, payloads: Sequence[tuple[JSON, str | None]], *, priority: int = 0
    ) -> int:
        check_enqueue(queue, priority, 0.0, None)
        now = time.time()
        rows = []
        for i, (payload, dedup_key) in enumerate(payloads):
            check_dedup(dedup_key)
            text = dump_payload(payload, f"payload #{i}")
            rows.append((queue, priority, text, "ready", now, dedup_key, now))
        if not rows:
            return 0
        with self._write() as conn:
            self._register(conn, {(queue, priority)})
            added: int = conn.executemany(_INSERT, rows).rowcount
        self._known_queues.add((queue, priority))
        return added

    # -- consuming ---------------------------------------------------------------------------

    def reserve(self, queues: Sequence[str], n: int, lease: float, consumer: str) -> list[Job]:
        names = check_reserve(queues, n, lease, consumer)
        sql = _reserve_sql(len(names))
        params: list[object] = []
        for name in names:
            params += [name, n]
        with self._write() as conn:
            now = time.time()
            # Due delayed jobs and jobs whose holder let the lease run out become ready.
            conn.execute(
                "UPDATE jobs SET state = 'ready' WHERE state = 'delayed' AND available_at <= ?",
                (now,),
            )
            conn.execute(
                "UPDATE jobs SET state = 'ready', consumer = NULL"
                " WHERE state = 'reserved' AND lease_until <= ?",
                (now,),
            )
            rows = conn.execute(sql, [consumer, now + lease, *params, n]).fetchall()
        rows.sort(key=lambda r: (-r[3], r[8], r[0]))
        return [
            Job(
                id=str(r[0]),
                queue=r[1],
                payload=load_payload(r[2]),
                priority=r[3],
                attempts=r[4],
                lease_until=r[5],
                dedup_key=r[6],
                receipt=str(r[7]),
            )
            for r in rows
        ]

    def ack(self, job: Job) -> None:
        with self._write() as conn:
            conn.execute(f"DELETE FROM jobs WHERE {_HELD}", _delivery(job))

    def ack_many(self, jobs: Sequence[Job]) -> None:
        keys = [_delivery(job) for job in jobs]
        if keys:
            with self._write() as conn:
                conn.executemany(f"DELETE FROM jobs WHERE {_HELD}", keys)

    def retry(self, job: Job, at: float, error: str, *, count_attempt: bool = True) -> None:
        check_retry_at(at)
        with self._write() as conn:
            state = "delayed" if at > time.time() else "ready"
            conn.execute(
                "UPDATE jobs SET state = ?, available_at = ?, lease_until = NULL,"
                " consumer = NULL, last_error = ?, attempts = attempts - ?"
                f" WHERE {_HELD}",
                (state, at, error, 0 if count_attempt else 1, *_delivery(job)),
            )

    def extend_lease(self, job: Job, lease: float) -> Job:
        check_lease(lease)
        key = _delivery(job)
        with self._write() as conn:
            until = time.time() + lease
            changed = conn.execute(
                f"UPDATE jobs SET lease_until = ? WHERE {_HELD}", (until, *key)
            ).rowcount
        if not changed:
            raise LeaseLost(f"job {job.id} of queue {job.queue!r} is no longer held by this worker")
        return Job(
            id=job.id,
            queue=job.queue,
            payload=job.payload,
            priority=job.priority,
            attempts=job.attempts,
            lease_until=until,
            dedup_key=job.dedup_key,
            receipt=job.receipt,
        )

    # -- dead letters -----------------------------------------------------------------------

    def dead_letter(self, job: Job, reason: str) -> None:
        key = _delivery(job)
        with self._write() as conn:
            conn.execute(
                "INSERT INTO dead (id, queue, priority, payload, attempts, dedup_key, reason,"
                " created_at, failed_at) SELECT id, queue, priority, payload, attempts,"
                f" dedup_key, ?, created_at, ? FROM jobs WHERE {_HELD}",
                (reason, time.time(), *key),
            )
            conn.execute(f"DELETE FROM jobs WHERE {_HELD}", key)

    def dead_letters(self, queue: str | None = None, limit: int = 100) -> list[DeadJob]:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, not {limit!r}")
        sql = "SELECT id, queue, payload, attempts, reason, failed_at FROM dead"
        params: list[object] = []
        if queue is not None:
            sql += " WHERE queue = ?"
            params.append(queue)
        sql += " ORDER BY failed_at DESC, id DESC LIMIT ?"
        with self._read() as conn:
            rows = conn.execute(sql, [*params, limit]).fetchall()
        return [
            DeadJob(
                id=str(r[0]),
                queue=r[1],
                payload=load_payload(r[2]),
                attempts=r[3],
                reason=r[4],
                failed_at=r[5],
            )
            for r in rows
        ]

    def redrive(self, dead_ids: Sequence[str]) -> int:
        ids = [int(i) for i in dead_ids if str(i).isdigit()]
        moved = 0
        with self._write() as conn:
            now = time.time()
            for dead_id in ids:
                row = conn.execute(
                    "SELECT queue, priority, payload, dedup_key FROM dead WHERE id = ?",
                    (dead_id,),
                ).fetchone()
                if row is None:
                    continue
                queue, priority, payload, dedup_key = row
                added = conn.execute(
                    _INSERT, (queue, priority, payload, "ready", now, dedup_key, now)
                ).rowcount
                if added:  # else a live job holds its dedup key: it stays dead, for later
                    conn.execute("DELETE FROM dead WHERE id = ?", (dead_id,))
                    moved += 1
        return moved

    # -- observing ---------------------------------------------------------------------------

    def stats(self) -> list[QueueStats]:
        with self._read() as conn:
            now = time.time()
            pairs = conn.execute("SELECT queue, priority FROM queues").fetchall()
            counts = conn.execute(
                "SELECT queue, priority,"
                " SUM(state != 'reserved' AND available_at <= ?1),"
                " SUM(state != 'reserved' AND available_at > ?1),"
                " SUM(state = 'reserved'),"
                " MIN(CASE WHEN state != 'reserved' AND available_at <= ?1 THEN available_at END),"
                " MIN(CASE WHEN state != 'reserved' AND available_at > ?1 THEN available_at END)"
                " FROM jobs GROUP BY queue, priority",
                (now,),
            ).fetchall()
            held = conn.execute(
                "SELECT queue, priority, consumer, COUNT(*) FROM jobs"
                " WHERE state = 'reserved' GROUP BY queue, priority, consumer"
            ).fetchall()
            dead = conn.execute(
                "SELECT queue, priority, COUNT(*) FROM dead GROUP BY queue, priority"
            ).fetchall()
        Pair = tuple[str, int]
        counted: dict[Pair, tuple[int, int, int, float | None, float | None]] = {
            (q, p): (
                ready,
                delayed,
                in_flight,
                None if oldest is None else now - oldest,
                None if soonest is None else soonest - now,
            )
            for q, p, ready, delayed, in_flight, oldest, soonest in counts
        }
        consumers: dict[Pair, dict[str, int]] = {}
        for q, p, consumer, count in held:
            consumers.setdefault((q, p), {})[consumer or ""] = count
        dead_counts: dict[Pair, int] = {(q, p): c for q, p, c in dead}
        every = {*(tuple(pair) for pair in pairs), *counted, *dead_counts}
        result = []
        for q, p in sorted(every, key=lambda pair: (pair[0], -pair[1])):
            ready, delayed, in_flight, oldest_age, due_in = counted.get(
                (q, p), (0, 0, 0, None, None)
            )
            result.append(
                QueueStats(
                    queue=q,
                    priority=p,
                    ready=ready,
                    delayed=delayed,
                    in_flight=in_flight,
                    dead=dead_counts.get((q, p), 0),
                    oldest_ready_age=oldest_age,
                    in_flight_by_consumer=consumers.get((q, p), {}),
                    next_due_in=due_in,
                )
            )
        return result

    def pending(self, queues: Sequence[str]) -> int:
        names = check_queues(queues)
        if not names:
            return 0
        marks = ", ".join("?" * len(names))
        with self._read() as conn:
            return int(
                conn.execute(
                    f"SELECT COUNT(*) FROM jobs WHERE queue IN ({marks})", names
                ).fetchone()[0]
            )

    # -- fan-in ------------------------------------------------------------------------------

    @property
    def fanin(self) -> SqliteFanIn:
        return self._fanin

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None
            self._closed = True


class SqliteFanIn(FanIn):
    """Fan-in groups in the `joins` table of a `SqliteQueue`'s file, on its connection."""

    def __init__(self, queue: SqliteQueue) -> None:
        self._queue = queue
        self._last_prune = 0.0

    def join_many(
        self, entries: Sequence[Entry], parts: Sequence[str]
    ) -> list[dict[str, JSON] | None]:
        rows = []
        for key, part, value in entries:
            check_join(key, part, parts)
            rows.append((key, part, dump_payload(value, "join value")))
        if not rows:
            return []
        ttl = self._queue.join_ttl
        with self._queue._write() as conn:
            now = time.time()
            if now - self._last_prune > min(_PRUNE_EVERY, ttl):
                # Groups that never completed (a branch dead-lettered) must not pile up.
                conn.execute(
                    "DELETE FROM joins WHERE key IN (SELECT key FROM joins WHERE created_at < ?)",
                    (now - ttl,),
                )
                self._last_prune = now
            conn.executemany(
                "INSERT INTO joins (key, part, value, created_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (key, part) DO UPDATE SET value = excluded.value",
                [(*row, now) for row in rows],
            )
            groups = {key for key, _, _ in rows}
            marks = ", ".join("?" * len(groups))
            have: dict[str, dict[str, str]] = {}
            for key, part, text in conn.execute(
                f"SELECT key, part, value FROM joins WHERE key IN ({marks})", sorted(groups)
            ):
                have.setdefault(key, {})[part] = text
        results: list[dict[str, JSON] | None] = []
        for key, _, _ in rows:
            group = have.get(key, {})
            complete = all(p in group for p in parts)
            results.append({p: json.loads(group[p]) for p in parts} if complete else None)
        return results

    def forget_many(self, keys: Sequence[str]) -> None:
        if keys:
            with self._queue._write() as conn:
                conn.executemany("DELETE FROM joins WHERE key = ?", [(k,) for k in keys])
