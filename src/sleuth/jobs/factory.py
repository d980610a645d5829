"""Open the queue backend that a URL names (`Settings.effective_queue_url`)."""

from __future__ import annotations

from sleuth.jobs.base import QueueBackend
from sleuth.jobs.urls import RedisTarget, parse_queue_url


def open_queue(url: str) -> QueueBackend:
    """The queue `url` names (see `jobs.urls.parse_queue_url`); ValueError for a bad URL."""
    target = parse_queue_url(url)
    if isinstance(target, RedisTarget):
        from sleuth.jobs.redis import RedisQueue

        return RedisQueue(url)
    from sleuth.jobs.sqlite import SqliteQueue

    return SqliteQueue(target.path)
