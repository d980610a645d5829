"""The finder's tasks: their queues, payloads and priorities.

A user's request runs at high priority (someone waits for it); the background updates of
accounts at low priority, on the same queues, so that a waiting user overtakes them."""

from __future__ import annotations

from dataclasses import dataclass

from sleuth.jobs.tasks import Task

LINK_QUEUE = "finder.link"
SCAN_QUEUE = "finder.scan"
INDEX_QUEUE = "finder.index"
SEARCH_QUEUE = "finder.search"
QUEUES = (LINK_QUEUE, SCAN_QUEUE, INDEX_QUEUE, SEARCH_QUEUE)

USER = 10  # the priority of work someone waits for
BACKGROUND = 0


@dataclass(frozen=True)
class RequestJob:
    """A step of one request (`finder_requests.id`)."""

    request: str


@dataclass(frozen=True)
class ScanJob:
    """List an account's posts from its cursor, index their images, then move the cursor.
    `requests`: the requests that wait for this scan (they are told when it ends)."""

    network: str
    account_id: str
    requests: tuple[str, ...] = ()


LINK = Task(LINK_QUEUE, RequestJob, lease=120.0, priority=USER)
SEARCH = Task(SEARCH_QUEUE, RequestJob, lease=120.0, priority=USER)
SCAN = Task(SCAN_QUEUE, ScanJob, lease=300.0, priority=USER)
