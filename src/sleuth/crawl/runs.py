"""Runs and their items: a run is one crawl of an app (a URL list, seed accounts, a forum);
its items are the units of work, each keyed naturally within the run and resolved once.

Resuming is adding the same items again: those already resolved are skipped, and those still
queued are not queued twice, because an item's job carries a dedup key. Resolving and failing
an item are each one conditional update that also counts the outcome, in the caller's
transaction: a job run twice finds its item resolved and changes and counts nothing."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from sleuth.crawl.failures import mark_resolved, record_failure
from sleuth.crawl.models import DONE, FAILED, QUEUED, crawl_run_items, crawl_runs
from sleuth.jobs.base import QueueBackend
from sleuth.jobs.tasks import Task
from sleuth.observe.counters import count_outcome
from sleuth.store.upsert import insert_ignore, insert_ignore_many

ERROR = "error"  # the outcome a failed item counts as, unless its app names another
_CHUNK = 500  # keys per IN (...) list: well under every database's parameter limit


class RunError(ValueError):
    """A run that cannot be used as asked (it belongs to another app)."""


@dataclass(frozen=True)
class RunItem:
    """One item of a run: its key within the run and what it is (a URL, an account)."""

    run: str
    key: str
    target: str


@dataclass(frozen=True)
class ItemJob:
    """The job that works on an item (a typed task and its payload), with the dedup key that
    keeps it queued once."""

    task: Task[Any]
    payload: Any
    dedup_key: str


# Each app that crawls says which job works on an item; the same function queues new items
# and failed ones that are retried.
JobFor = Callable[[RunItem], ItemJob]


@dataclass(frozen=True)
class Progress:
    """How far a run is: items listed so far, and the resolved ones by outcome."""

    total: int | None  # None while items are still being listed
    listed: int
    outcomes: Mapping[str, int] = field(default_factory=dict)

    @property
    def done(self) -> int:
        return sum(self.outcomes.values())

    @property
    def finished(self) -> bool:
        return self.total is not None and self.done >= self.total

    def count(self, outcome: str) -> int:
        return self.outcomes.get(outcome, 0)


def run_id_for(name: str, fresh: bool = False) -> str:
    """A run's id from its name, so crawling the same thing again resumes it; `fresh`
    starts a new run instead. Ids are shared by every app (`open_run` refuses another
    app's run), so an app names its runs so that they cannot be another's (the images app
    by the list file's absolute path, as it always has)."""
    if fresh:
        name += f"#{time.time_ns()}"
    return hashlib.sha1(name.encode("utf-8", "surrogatepass")).hexdigest()


def open_run(engine: Engine, run: str, app: str, name: str) -> None:
    """Create the run unless it exists; a run of another app is refused."""
    with engine.begin() as conn:
        row = {"id": run, "app": app, "name": name, "created_at": time.time()}
        if insert_ignore(conn, crawl_runs, row):
            return
        owner = conn.execute(sa.select(crawl_runs.c.app).where(crawl_runs.c.id == run)).scalar()
    if owner != app:
        raise RunError(f"crawl {run} belongs to the {owner} app, not to {app}")


def resume_or_open(engine: Engine, app: str, name: str) -> str:
    """The app's unfinished run of this name, to resume, or a new run of that name: for a
    crawl that, once finished, starts afresh (an incremental one) rather than resuming."""
    with engine.connect() as conn:
        unfinished = conn.execute(
            sa.select(crawl_runs.c.id)
            .where(
                crawl_runs.c.app == app,
                crawl_runs.c.name == name,
                crawl_runs.c.finished_at.is_(None),
            )
            .order_by(crawl_runs.c.created_at.desc())
            .limit(1)
        ).scalar()
    run = unfinished or run_id_for(f"{app} {name}", fresh=True)
    open_run(engine, run, app, name)
    return run


def run_exists(conn: Connection, app: str, run: str) -> bool:
    query = sa.select(crawl_runs.c.id).where(crawl_runs.c.id == run, crawl_runs.c.app == app)
    return conn.execute(query).first() is not None


def runs_named(conn: Connection, app: str, prefix: str) -> list[str]:
    """Ids of the app's runs that start with `prefix` (a full id, or its first characters as
    the tables of `sleuth <app> errors` show them); at most two, enough to tell ambiguity."""
    pattern = re.sub(r"([\\%_])", r"\\\1", prefix) + "%"
    query = (
        sa.select(crawl_runs.c.id)
        .where(crawl_runs.c.app == app, crawl_runs.c.id.like(pattern, escape="\\"))
        .order_by(crawl_runs.c.id)
        .limit(2)
    )
    return list(conn.execute(query).scalars())


def enqueue_jobs(queue: QueueBackend, jobs: Iterable[ItemJob]) -> int:
    """Queue the jobs, grouped per task; returns how many were added (dedup keys held by
    jobs still queued or in flight are skipped)."""
    by_task: dict[Task[Any], list[tuple[Any, str | None]]] = {}
    for job in jobs:
        by_task.setdefault(job.task, []).append((job.payload, job.dedup_key))
    return sum(queue.send_many(task, batch) for task, batch in by_task.items())


def add_items(
    engine: Engine, queue: QueueBackend, items: Sequence[RunItem], job_for: JobFor
) -> int:
    """Add the items to their runs (those already there are kept as they are) and queue the
    job of every one not yet resolved; returns how many jobs were added."""
    todo: list[RunItem] = []
    for start in range(0, len(items), _CHUNK):
        with engine.begin() as conn:
            todo += add_items_in(conn, items[start : start + _CHUNK])
    return enqueue_jobs(queue, (job_for(i) for i in todo)) if todo else 0


def add_items_in(conn: Connection, items: Sequence[RunItem]) -> list[RunItem]:
    """Add the items in the caller's transaction (those already there are kept as they are);
    returns those not yet resolved, whose jobs the caller queues once it has committed (a
    crawl that writes a page and the items it found together; a kill in between leaves
    items without a job, which `queued_items` gives back to the command that resumes)."""
    todo: list[RunItem] = []
    for start in range(0, len(items), _CHUNK):
        chunk = items[start : start + _CHUNK]
        rows = [
            {"run_id": i.run, "item_key": i.key, "target": i.target, "state": QUEUED} for i in chunk
        ]
        insert_ignore_many(conn, crawl_run_items, rows)
        waiting = queued_keys(conn, chunk)
        todo += [i for i in chunk if (i.run, i.key) in waiting]
    return todo


def queued_items(conn: Connection, run: str) -> list[RunItem]:
    """Every item of the run still waiting for its outcome: what a resumed crawl queues again
    (the dedup key of each job skips those whose job is still queued)."""
    query = sa.select(_I.item_key, _I.target).where(_I.run_id == run, _I.state == QUEUED)
    return [RunItem(run, key, target) for key, target in conn.execute(query)]


def queued_keys(conn: Connection, items: Sequence[RunItem]) -> set[tuple[str, str]]:
    """The (run, key) of those items that are in the run and still wait for an outcome."""
    return _keys_where(conn, items, crawl_run_items.c.state == QUEUED)


def resolved_keys(conn: Connection, items: Sequence[RunItem]) -> set[tuple[str, str]]:
    """The (run, key) of those items that are in the run and have their outcome."""
    return _keys_where(conn, items, crawl_run_items.c.state != QUEUED)


def _keys_where(
    conn: Connection, items: Sequence[RunItem], state: sa.ColumnElement[bool]
) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    runs: dict[str, list[str]] = {}
    for item in items:
        runs.setdefault(item.run, []).append(item.key)
    for run, keys in runs.items():
        for start in range(0, len(keys), _CHUNK):
            query = sa.select(crawl_run_items.c.item_key).where(
                crawl_run_items.c.run_id == run,
                crawl_run_items.c.item_key.in_(keys[start : start + _CHUNK]),
                state,
            )
            found.update((run, key) for key in conn.execute(query).scalars())
    return found


def set_total(engine: Engine, run: str, total: int) -> None:
    """Every item of the run is listed: `total` of them."""
    with engine.begin() as conn:
        conn.execute(sa.update(crawl_runs).where(crawl_runs.c.id == run).values(total=total))


# Statements of the hot path, built once and given their values as parameters.
_I = crawl_run_items.c
_ITEM = (_I.run_id == sa.bindparam("w_run"), _I.item_key == sa.bindparam("w_key"))
_STATE = sa.select(_I.state).where(*_ITEM)
_SETTLE = sa.update(crawl_run_items).where(*_ITEM, _I.state == QUEUED)


def is_resolved(engine: Engine, run: str, key: str) -> bool:
    """True once the item has an outcome (an item never added counts as unresolved)."""
    with engine.connect() as conn:
        state = conn.execute(_STATE, {"w_run": run, "w_key": key}).scalar()
    return state is not None and state != QUEUED


def _settle(
    conn: Connection, run: str, key: str, state: str, outcome: str, result: str | None, at: float
) -> bool:
    """Move a queued item to its final state; False when it was not queued."""
    values = {
        "w_run": run,
        "w_key": key,
        "state": state,
        "outcome": outcome,
        "result": result,
        "finished_at": at,
    }
    return bool(conn.execute(_SETTLE, values).rowcount)


def resolve(
    conn: Connection, app: str, run: str, key: str, outcome: str, result: str | None = None
) -> bool:
    """Give the item its outcome unless it has one, count it, and mark a failure it had
    resolved; True when this call did."""
    now = time.time()
    if not _settle(conn, run, key, DONE, outcome, result, now):
        return False
    count_outcome(conn, app, outcome, now)
    mark_resolved(conn, run, key, now)
    return True


def fail(
    conn: Connection,
    app: str,
    run: str,
    key: str,
    reason: str,
    message: str,
    http_status: int | None = None,
    outcome: str = ERROR,
) -> bool:
    """Fail the item unless it has an outcome: count it (as `outcome`, the name the app
    gives its failures) and record why; True when this call did."""
    now = time.time()
    if not _settle(conn, run, key, FAILED, outcome, None, now):
        return False
    count_outcome(conn, app, outcome, now)
    record_failure(conn, run, key, reason, message, http_status, now)
    return True


def progress(engine: Engine, run: str) -> Progress:
    with engine.connect() as conn:
        total = conn.execute(sa.select(crawl_runs.c.total).where(crawl_runs.c.id == run)).scalar()
        rows = conn.execute(
            sa.select(_I.state, _I.outcome, sa.func.count())
            .where(_I.run_id == run)
            .group_by(_I.state, _I.outcome)
        ).all()
    outcomes: dict[str, int] = {}
    listed = 0
    for state, outcome, n in rows:
        listed += int(n)
        if state != QUEUED:
            outcomes[outcome] = outcomes.get(outcome, 0) + int(n)
    return Progress(total=total, listed=listed, outcomes=outcomes)


def app_outcomes(conn: Connection, app: str) -> dict[str | None, int]:
    """Items of every run of the app by outcome; those still queued under None."""
    outcome = sa.case((_I.state == QUEUED, sa.null()), else_=_I.outcome)
    rows = conn.execute(
        sa.select(outcome, sa.func.count())
        .select_from(crawl_run_items)
        .join(crawl_runs, crawl_runs.c.id == _I.run_id)
        .where(crawl_runs.c.app == app)
        .group_by(outcome)
    )
    return {name: int(n) for name, n in rows}


def mark_finished(engine: Engine, run: str) -> bool:
    """Record when the run finished, if every listed item is resolved and all are listed."""
    if not progress(engine, run).finished:
        return False
    with engine.begin() as conn:
        conn.execute(
            sa.update(crawl_runs)
            .where(crawl_runs.c.id == run, crawl_runs.c.finished_at.is_(None))
            .values(finished_at=time.time())
        )
    return True
