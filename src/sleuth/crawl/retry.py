"""Retrying failed items: each is put back in the queued state and its job queued again.

Idempotent and safe to interrupt: an item stays on the failure record until a retry
succeeds, so running it again re-queues what a kill left without a job, and the dedup key of
an item's job keeps one already waiting from being queued twice."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import Engine

from sleuth.crawl.failures import every_failure
from sleuth.crawl.models import FAILED, QUEUED, crawl_run_items, crawl_runs
from sleuth.crawl.runs import JobFor, RunItem, enqueue_jobs, queued_keys
from sleuth.jobs.base import QueueBackend

_BATCH = 500

_C = crawl_run_items.c
_REQUEUE = (
    sa.update(crawl_run_items)
    .where(_C.run_id == sa.bindparam("w_run"), _C.item_key == sa.bindparam("w_key"))
    .where(_C.state == FAILED)
    .values(state=QUEUED, outcome=None, result=None, finished_at=None)
)


@dataclass(frozen=True)
class Retried:
    items: int  # failed items taken back into the queued state
    queued: int  # jobs added (fewer than items when some were already waiting)


def retry_failures(
    engine: Engine,
    queue: QueueBackend,
    app: str,
    job_for: JobFor,
    *,
    run: str | None = None,
    reason: str | None = None,
) -> Retried:
    """Re-queue the app's failed items, of one run and/or one reason when given."""
    items = queued = 0
    batch: list[RunItem] = []
    for failure in every_failure(engine, app, run=run, reason=reason):
        batch.append(RunItem(failure.run, failure.key, failure.target))
        if len(batch) >= _BATCH:
            added = _requeue(engine, queue, job_for, batch)
            items, queued = items + added.items, queued + added.queued
            batch = []
    if batch:
        added = _requeue(engine, queue, job_for, batch)
        items, queued = items + added.items, queued + added.queued
    return Retried(items=items, queued=queued)


def _requeue(engine: Engine, queue: QueueBackend, job_for: JobFor, batch: list[RunItem]) -> Retried:
    with engine.begin() as conn:
        items = sum(
            conn.execute(_REQUEUE, {"w_run": i.run, "w_key": i.key}).rowcount for i in batch
        )
        runs = sorted({i.run for i in batch})
        conn.execute(
            sa.update(crawl_runs).where(crawl_runs.c.id.in_(runs)).values(finished_at=None)
        )
        # Items resolved since they were listed (a retry that already ran) keep their outcome.
        waiting = queued_keys(conn, batch)
    jobs = [job_for(i) for i in batch if (i.run, i.key) in waiting]
    return Retried(items=items, queued=enqueue_jobs(queue, jobs))
