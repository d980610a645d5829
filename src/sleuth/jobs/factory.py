"""Open the queue backend that a URL names (`Settings.effective_queue_url`)."""

from __future__ import annotations

from pathlib import Path

from sleuth.jobs.base import QueueBackend

SCHEMES = ("sqlite", "redis")


def open_queue(url: str) -> QueueBackend:
    """`sqlite:///relative/path.db` or `sqlite:////absolute/path.db` (as SQLAlchemy spells
    SQLite URLs, so the data and queue settings read alike), or
    `redis://[[user]:password@]host[:port][/db][?prefix=name]` for the distributed queue."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"queue URL {url!r} has no scheme; expected one of {SCHEMES}")
    if scheme == "sqlite":
        if not rest.startswith("/"):
            raise ValueError(
                f"queue URL {url!r}: a SQLite queue URL has no host; write sqlite:///path.db"
            )
        if "?" in rest or "#" in rest:
            raise ValueError(f"queue URL {url!r}: a SQLite queue URL takes no options")
        path = rest[1:]
        if not path or path == ":memory:":
            raise ValueError(f"queue URL {url!r} names no file; an in-memory queue is not durable")
        from sleuth.jobs.sqlite import SqliteQueue

        return SqliteQueue(Path(path))
    if scheme == "redis":
        from sleuth.jobs.redis import RedisQueue

        return RedisQueue(url)
    raise ValueError(f"queue URL {url!r}: unknown scheme {scheme!r}; expected one of {SCHEMES}")
