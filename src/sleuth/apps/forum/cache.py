"""The forum API's answer cache: in Redis when the queue is Redis, else in the process.

An answer is stored under a key made of the view, its arguments and the version of the
statistics it read (`forum_stats_versions`; the thread times' `forum_thread_versions`, of the
years topics started in): analytics moves the versions of the years it changed (and the
all-years one), so exactly the answers that read a change go stale, in every
process at once, with nothing to delete. Stale entries age out: Redis entries expire after a
day (set `maxmemory-policy allkeys-lru` to bound them by memory, as potstats2 advised); the
in-process cache keeps its newest entries up to a byte budget. `invalidate` (`sleuth forum
invalidate-cache`) moves every version, for when the database was changed by hand.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from typing import Any, Protocol

import redis

EXPIRY = 86400  # seconds a Redis entry lives


class AnswerCache(Protocol):
    def get(self, key: str) -> bytes | None: ...

    def put(self, key: str, body: bytes) -> None: ...


class LocalCache:
    """Newest-first entries within `max_bytes` (one process; thread-safe)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            body = self._entries.get(key)
            if body is not None:
                self._entries.move_to_end(key)
            return body

    def put(self, key: str, body: bytes) -> None:
        if len(body) > self.max_bytes:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            self._bytes -= len(old) if old is not None else 0
            self._entries[key] = body
            self._bytes += len(body)
            while self._bytes > self.max_bytes:
                _, dropped = self._entries.popitem(last=False)
                self._bytes -= len(dropped)


class RedisCache:
    """Entries shared by every process of a deployment, under `prefix`."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = f"{prefix}:forum:answers:"

    def get(self, key: str) -> bytes | None:
        value = self.client.get(self.prefix + key)
        if isinstance(value, str):  # a client that decodes answers (the queue's does)
            return value.encode()
        return value if isinstance(value, bytes) else None

    def put(self, key: str, body: bytes) -> None:
        self.client.set(self.prefix + key, body, ex=EXPIRY)


def cache_key(view: str, arguments: list[tuple[str, str]], site: int, version: int) -> str:
    """The key of one answer: its view, its arguments in order, and what it read."""
    text = json.dumps([view, sorted(arguments), site, version], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def etag(body: bytes) -> str:
    """The answer's entity tag (unquoted)."""
    return hashlib.sha256(body).hexdigest()[:32]


def encode(value: Any) -> bytes:
    """An answer's JSON (a tree of plain values: no cycle to look for, about 8% faster)."""
    return json.dumps(
        value, separators=(",", ":"), ensure_ascii=False, check_circular=False
    ).encode()
