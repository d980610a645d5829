"""The queue backends under test: the conformance suite runs once per entry of `BACKENDS`.

A backend joins the suite by adding one entry: a context manager that, given a test's
temporary folder, yields the URL of a fresh, empty queue (for `open_queue`) and cleans up
after the test. Every test in this folder then runs against it unchanged.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest
import redis

from sleuth.jobs import open_queue
from sleuth.jobs.base import QueueBackend
from tests.servers import REDIS_URL, require


@contextmanager
def sqlite_queue(tmp_path: Path) -> Iterator[str]:
    yield f"sqlite:///{tmp_path / 'queue.db'}"


def delete_prefix(prefix: str) -> None:
    """Delete every key under `prefix:` on the test Redis (never the whole database: other
    tests may be using it at the same time)."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        for start in range(0, len(keys), 1000):
            client.unlink(*keys[start : start + 1000])
    finally:
        client.close()


@contextmanager
def redis_queue(tmp_path: Path) -> Iterator[str]:
    """A queue under a prefix of its own, so tests can share the Redis database."""
    require("redis", REDIS_URL)
    prefix = f"sleuth-test-{uuid.uuid4().hex[:12]}"
    try:
        yield f"{REDIS_URL}{'&' if '?' in REDIS_URL else '?'}prefix={prefix}"
    finally:
        delete_prefix(prefix)


BACKENDS: dict[str, Callable[[Path], AbstractContextManager[str]]] = {
    "sqlite": sqlite_queue,
    "redis": redis_queue,
}


@pytest.fixture(params=sorted(BACKENDS))
def queue_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a fresh, empty queue on each backend."""
    with BACKENDS[request.param](tmp_path) as url:
        yield url


@pytest.fixture
def open_backend(queue_url: str) -> Iterator[Callable[[], QueueBackend]]:
    """Opens more handles on the same queue (another worker, another process's view)."""
    opened: list[QueueBackend] = []

    def make() -> QueueBackend:
        handle = open_queue(queue_url)
        opened.append(handle)
        return handle

    yield make
    for handle in opened:
        handle.close()


@pytest.fixture
def backend(open_backend: Callable[[], QueueBackend]) -> QueueBackend:
    return open_backend()
