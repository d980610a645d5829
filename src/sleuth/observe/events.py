"""Live events for other consumers: what a job has just stored, told as soon as it commits.

An event is a JSON object on a named channel (an app's name), kept where every process of
the deployment can read it: where the queue is on Redis, a Redis Stream in the queue's Redis
(`<prefix>:events:<channel>`, capped near `MAX_EVENTS` entries), which other programs may also
read with XREAD or a consumer group; embedded, rows of an `events` table in the queue's SQLite
file (trimmed to about `MAX_EVENTS` per channel). Both are read the same way, and over HTTP at
`GET /api/engine/events/<channel>`: `read(channel, after)` gives the events after the id
`after`, oldest first, each with its id.

An event is published after the transaction that stored what it tells, so it never tells
what is not stored. A job that runs again publishes again, so an event carries what makes it
unique and a consumer drops repeats by it; a publish that fails (Redis gone) fails the job,
which the queue runs again, but the event of what was already committed is not sent again:
events are for watching live, the database is the record."""

from __future__ import annotations

import functools
import json
import os
import re
import sqlite3
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import redis

from sleuth.jobs.base import QueueBackend
from sleuth.jobs.redis import RedisQueue
from sleuth.jobs.sqlite import SqliteQueue

MAX_EVENTS = 10_000  # per channel; the oldest go first
START = "0"  # an id before every event
# A SQLite channel is trimmed back to MAX_EVENTS once every this many events published.
TRIM_EVERY = 256
_STREAM_ID = re.compile(r"[0-9]{1,20}(-[0-9]{1,20})?")
_LAST_ROW = 2**63 - 1  # SQLite's largest row id


@dataclass(frozen=True)
class Event:
    id: str
    data: dict[str, Any]


class EventStream(Protocol):
    def publish(self, channel: str, data: Mapping[str, Any]) -> str:
        """Add the event to the channel; returns its id."""
        ...

    def read(self, channel: str, after: str = START, count: int = 1000) -> list[Event]:
        """At most `count` events published after the id `after`, oldest first; never waits."""
        ...


class EventIdError(ValueError):
    """An `after` that is no event id of the stream."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,
    data    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_channel ON events (channel, id);
"""


class SqliteEvents:
    """Channels as rows of the `events` table in the embedded queue's SQLite file, which every
    process of the install opens; an id is the row's (they count up across channels). One
    connection per process, shared by its threads under a lock, as the queue's."""

    def __init__(
        self, path: Path, max_events: int = MAX_EVENTS, trim_every: int = TRIM_EVERY
    ) -> None:
        self.path = path
        self.max_events = max_events
        self.trim_every = trim_every
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = 0

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():
            conn = sqlite3.connect(
                self.path, timeout=30.0, isolation_level=None, check_same_thread=False
            )
            conn.executescript(_SCHEMA)
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    def publish(self, channel: str, data: Mapping[str, Any]) -> str:
        text = json.dumps(data)
        with self._lock:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                (row_id,) = conn.execute(
                    "INSERT INTO events (channel, data) VALUES (?, ?) RETURNING id",
                    (channel, text),
                ).fetchone()
                if row_id % self.trim_every == 0:
                    self._trim(conn, channel)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        return str(row_id)

    def _trim(self, conn: sqlite3.Connection, channel: str) -> None:
        """Delete the channel's events older than its newest `max_events`."""
        oldest_kept = conn.execute(
            "SELECT id FROM events WHERE channel = ? ORDER BY id DESC LIMIT 1 OFFSET ?",
            (channel, self.max_events - 1),
        ).fetchone()
        if oldest_kept is not None:
            conn.execute(
                "DELETE FROM events WHERE channel = ? AND id < ?", (channel, oldest_kept[0])
            )

    def read(self, channel: str, after: str = START, count: int = 1000) -> list[Event]:
        """As `EventStream.read`; an id of the Redis form `N-M` is read as N, so that one id
        syntax serves both stores."""
        if not _STREAM_ID.fullmatch(after):
            raise EventIdError(f"not an event id: {after!r}")
        position = int(after.split("-")[0])
        if position > _LAST_ROW:
            return []
        with self._lock:
            rows = (
                self._connection()
                .execute(
                    "SELECT id, data FROM events WHERE channel = ? AND id > ? ORDER BY id LIMIT ?",
                    (channel, position, count),
                )
                .fetchall()
            )
        return [Event(str(row_id), json.loads(data)) for row_id, data in rows]


class RedisEvents:
    """Channels as Redis Streams; an id is the stream entry's."""

    def __init__(self, client: redis.Redis, prefix: str, max_events: int = MAX_EVENTS) -> None:
        self._redis = client
        self.key_prefix = f"{prefix}:events:"
        self.max_events = max_events

    def publish(self, channel: str, data: Mapping[str, Any]) -> str:
        entry = self._redis.xadd(
            self.key_prefix + channel,
            {"data": json.dumps(data)},
            maxlen=self.max_events,
            approximate=True,
        )
        return _text(entry)

    def read(self, channel: str, after: str = START, count: int = 1000) -> list[Event]:
        if not _STREAM_ID.fullmatch(after):
            raise EventIdError(f"not an event id: {after!r}")
        try:
            answer: list[Any] = self._redis.xread(  # type: ignore[assignment]
                {self.key_prefix + channel: after}, count=count
            )
        except redis.ResponseError as exc:  # a part past 2**64 - 1
            raise EventIdError(f"not a Redis Stream entry id: {after!r} ({exc})") from None
        return [
            Event(_text(entry), json.loads(_text(fields["data"])))
            for _, entries in answer or []
            for entry, fields in entries
        ]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@functools.lru_cache(maxsize=16)
def _sqlite_events(path: Path) -> SqliteEvents:
    return SqliteEvents(path)


def live_events(queue: QueueBackend) -> EventStream:
    """The channels every consumer of this deployment reads: in the queue's Redis when the
    queue is there, else in its SQLite file."""
    if isinstance(queue, RedisQueue):
        return RedisEvents(queue.redis, queue.target.prefix)
    if isinstance(queue, SqliteQueue):
        return _sqlite_events(queue.path.resolve())
    raise TypeError(f"no live events beside a {type(queue).__name__}")
