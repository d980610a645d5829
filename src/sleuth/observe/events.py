"""Live events for other consumers: what a job has just stored, told as soon as it commits.

An event is a JSON object on a named channel (an app's name). Where the queue is on Redis, a
channel is a Redis Stream in the queue's Redis (`<prefix>:events:<channel>`, capped near
`MAX_EVENTS` entries), which any process of the deployment reads with XREAD or a consumer
group; embedded, a channel lives in this process's memory, for consumers in the same process
(the crawl command's workers, a test). Both are read the same way: `read(channel, after)`
gives the events after the id `after`, oldest first, each with its id.

An event is published after the transaction that stored what it tells, so it never tells
what is not stored. A job that runs again publishes again, so an event carries what makes it
unique and a consumer drops repeats by it; a publish that fails (Redis gone) fails the job,
which the queue runs again, but the event of what was already committed is not sent again:
events are for watching live, the database is the record."""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import redis

from sleuth.jobs.base import QueueBackend
from sleuth.jobs.redis import RedisQueue

MAX_EVENTS = 10_000  # per channel; the oldest go first
START = "0"  # an id before every event


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


class MemoryEvents:
    """Channels of one process; ids count up from 1."""

    def __init__(self, max_events: int = MAX_EVENTS) -> None:
        self._lock = threading.Lock()
        self._channels: dict[str, deque[Event]] = {}
        self._last = 0
        self.max_events = max_events

    def publish(self, channel: str, data: Mapping[str, Any]) -> str:
        with self._lock:
            self._last += 1
            event = Event(str(self._last), json.loads(json.dumps(data)))
            self._channels.setdefault(channel, deque(maxlen=self.max_events)).append(event)
            return event.id

    def read(self, channel: str, after: str = START, count: int = 1000) -> list[Event]:
        after_n = int(after)
        with self._lock:
            events = list(self._channels.get(channel, ()))
        return [e for e in events if int(e.id) > after_n][:count]


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
        answer: list[Any] = self._redis.xread(  # type: ignore[assignment]
            {self.key_prefix + channel: after}, count=count
        )
        return [
            Event(_text(entry), json.loads(_text(fields["data"])))
            for _, entries in answer or []
            for entry, fields in entries
        ]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


_PROCESS = MemoryEvents()


def live_events(queue: QueueBackend) -> EventStream:
    """The channels every consumer of this deployment reads: in the queue's Redis when the
    queue is there, else this process's."""
    if isinstance(queue, RedisQueue):
        return RedisEvents(queue.redis, queue.target.prefix)
    return _PROCESS
