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
MAINTAIN_QUEUE = "finder.maintain"

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


@dataclass(frozen=True)
class IndexJob:
    """Download one image of a post and hash it."""

    network: str
    post_id: str
    position: int


@dataclass(frozen=True)
class Chore:
    """A maintenance chore: "update" (accounts not scanned for `update_days`), "retry"
    (images that failed, after `retry_images_hours`), "purge" (finished requests)."""

    what: str


LINK = Task(LINK_QUEUE, RequestJob, lease=120.0, priority=USER)
SEARCH = Task(SEARCH_QUEUE, RequestJob, lease=120.0, priority=USER)
SCAN = Task(SCAN_QUEUE, ScanJob, lease=300.0, priority=USER)
INDEX = Task(INDEX_QUEUE, IndexJob, lease=120.0, priority=USER, batch=16, batch_wait=0.05)
MAINTAIN = Task(MAINTAIN_QUEUE, Chore, lease=300.0, max_attempts=3, concurrency=1)
