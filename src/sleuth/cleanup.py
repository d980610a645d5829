"""The periodic cleanup job: removes what unfinished work leaves behind.

In-flight blobs (an app's downloaded originals, kept only until their record is stored) of a
job that never finished (dead-lettered, or its crawl abandoned) would stay in the blob folder
for ever; so would the temporary files of blob writes whose process was killed, and the
politeness clocks and rate-limit budgets of hosts crawled long ago. The scheduler
(`jobs.schedule`) enqueues this job every `EVERY` seconds; any worker serving `CLEANUP_QUEUE`
runs it. It is idempotent: a second run finds nothing more to remove. Worker-registry rows and
stack requests are pruned by the workers themselves (`observe.registry.WorkerMonitor`), so they
are not handled here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from sleuth.jobs.schedule import Periodic
from sleuth.jobs.tasks import Task
from sleuth.jobs.worker import JobContext, JobKind
from sleuth.net.budgets import prune_budgets
from sleuth.net.clocks import prune_host_clocks
from sleuth.services import Services

log = logging.getLogger(__name__)

CLEANUP_QUEUE = "sleuth.cleanup"
EVERY = 3600.0
# An in-flight blob older than this belongs to a job that will not finish: the pipeline's
# retries are over within minutes, and a dead letter retried later refetches from scratch.
INFLIGHT_MAX_AGE = 2 * 86400.0
TMP_MAX_AGE = 3600.0  # no blob write takes an hour
CLOCK_MAX_AGE = 3600.0  # a host that cooled down an hour ago needs no clock


@dataclass(frozen=True)
class CleanupPayload:
    """What to sweep: in-flight blobs of these extensions older than `inflight_max_age`
    seconds, temporary files older than `tmp_max_age` seconds."""

    inflight_exts: tuple[str, ...]
    inflight_max_age: float
    tmp_max_age: float

    def __post_init__(self) -> None:
        for name in ("inflight_max_age", "tmp_max_age"):
            if getattr(self, name) < 0:
                raise ValueError(f"cleanup payload: {name} must not be negative")


CLEANUP = Task(CLEANUP_QUEUE, CleanupPayload, lease=300.0, max_attempts=3, concurrency=1)


def cleanup_schedule(inflight_exts: Sequence[str]) -> Periodic:
    """The schedule of the cleanup job, sweeping in-flight blobs of the extensions given by
    the installed apps."""
    payload = CleanupPayload(tuple(sorted(inflight_exts)), INFLIGHT_MAX_AGE, TMP_MAX_AGE)
    return Periodic("cleanup", CLEANUP, payload, EVERY)


class Cleanup:
    """The cleanup job's handler, bound to one set of services."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def kind(self) -> JobKind[CleanupPayload]:
        return JobKind(CLEANUP, self.run)

    async def run(self, payload: CleanupPayload, ctx: JobContext) -> None:
        now = time.time()
        blobs = await asyncio.to_thread(
            self.services.blobs.sweep,
            payload.inflight_exts,
            now - payload.inflight_max_age,
            now - payload.tmp_max_age,
        )
        clocks = await asyncio.to_thread(self._prune_clocks, now)
        log.info(
            "cleanup: removed %d stale blob file(s) and %d host clock(s) or budget(s)",
            blobs,
            clocks,
        )

    def _prune_clocks(self, now: float) -> int:
        with self.services.engine.begin() as conn:
            clocks = prune_host_clocks(conn, now, CLOCK_MAX_AGE)
            return clocks + prune_budgets(conn, now, CLOCK_MAX_AGE)
