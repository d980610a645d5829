"""The durable job queue interface that every backend implements.

Delivery is at-least-once: a reserved job that is neither acked nor retried before its lease
ends becomes reservable again (its worker is presumed dead). Handlers must therefore be
idempotent. The conformance suite in `tests/jobs/` is the behavioural spec of this interface;
every backend must pass it unchanged.

Times: every time in the queue layer is a float of seconds, an epoch time from `time.time()`
(`lease_until`, `failed_at`, `retry(at=)`) or a duration (`lease`, `delay`); backends keep
their own units inside (Redis scripts count microseconds on the server's clock) and convert
at their edge. UTC ISO-8601 text appears only where people read times (CLI, web).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from sleuth.jobs.fanin import FanIn
    from sleuth.jobs.tasks import Task

JSON = dict[str, Any]
P = TypeVar("P")


@dataclass(frozen=True)
class Job:
    """One reserved delivery of a job.

    `attempts` counts the deliveries that count towards a kind's max attempts, this one
    included: every delivery does, except those after a `retry(..., count_attempt=False)`
    (a handler's deliberate postponement, or a stopping worker handing the job back). A
    delivery whose worker died (the lease ran out) counts, so a job that kills its worker
    cannot be retried for ever (`Task.max_deliveries`)."""

    id: str
    queue: str
    payload: JSON
    priority: int
    attempts: int
    lease_until: float
    dedup_key: str | None = None
    # Backend-private delivery token (e.g. a Redis stream entry id); opaque to callers.
    receipt: str = ""


@dataclass(frozen=True)
class QueueStats:
    """Counts for one (queue, priority) pair, for `sleuth queues`."""

    queue: str
    priority: int
    ready: int
    delayed: int
    in_flight: int
    dead: int
    oldest_ready_age: float | None
    in_flight_by_consumer: Mapping[str, int] = field(default_factory=dict)
    # Seconds until the soonest delayed job is due (None: none is delayed): a queue whose
    # every job waits far ahead (a rate limit's reset, a usage cap) has nothing to do now.
    next_due_in: float | None = None


@dataclass(frozen=True)
class DeadJob:
    id: str
    queue: str
    payload: JSON
    attempts: int
    reason: str
    failed_at: float


class LeaseLost(RuntimeError):
    """The job's lease expired and it was (or may be) delivered to another worker."""


class QueueBackend(abc.ABC):
    """A persistent, multi-process job queue with leases, priorities and dead letters."""

    @abc.abstractmethod
    def enqueue(
        self,
        queue: str,
        payload: JSON,
        *,
        priority: int = 0,
        delay: float = 0.0,
        dedup_key: str | None = None,
    ) -> str | None:
        """Add a job; higher `priority` is reserved first, `delay` seconds from now at the
        earliest. Returns the job id, or None when a job of the same queue with the same
        `dedup_key` is still queued or in flight (not yet acked or dead): dedup keys are
        scoped to their queue. Raises ValueError for a payload that is not a JSON object."""

    @abc.abstractmethod
    def enqueue_many(
        self, queue: str, payloads: Sequence[tuple[JSON, str | None]], *, priority: int = 0
    ) -> int:
        """Add many (payload, dedup_key) jobs at `priority` in one round trip; returns how
        many were added (duplicates by dedup key are skipped)."""

    def send(
        self,
        task: Task[P],
        payload: P,
        *,
        dedup_key: str | None = None,
        delay: float = 0.0,
        priority: int | None = None,
    ) -> str | None:
        """Enqueue a job of `task` at the task's priority (unless `priority` is given), after
        checking `payload` against the task's type (PayloadError when it does not match).
        Returns the job id, or None when `dedup_key` is held (as `enqueue`)."""
        data = task.encode(payload)
        chosen = task.priority if priority is None else priority
        return self.enqueue(task.queue, data, priority=chosen, delay=delay, dedup_key=dedup_key)

    def send_many(self, task: Task[P], payloads: Sequence[tuple[P, str | None]]) -> int:
        """`send` many (payload, dedup_key) jobs of `task` in one round trip; every payload is
        checked before any is enqueued. Returns how many were added."""
        rows = [(task.encode(payload), key) for payload, key in payloads]
        return self.enqueue_many(task.queue, rows, priority=task.priority)

    @abc.abstractmethod
    def reserve(self, queues: Sequence[str], n: int, lease: float, consumer: str) -> list[Job]:
        """Take up to `n` ready jobs from `queues`, highest priority first, then oldest first
        (the list is in that order), each leased to `consumer` for `lease` seconds. A job
        whose lease ran out is ready again, with `attempts` one higher. Never waits for
        jobs: returns an empty list when none is ready."""

    @abc.abstractmethod
    def ack(self, job: Job) -> None:
        """The job is done: remove it and release its dedup key. Acking a job whose lease
        was lost and that was re-delivered elsewhere is harmless."""

    def ack_many(self, jobs: Sequence[Job]) -> None:
        """`ack` each job; backends override this to do it in one round trip."""
        for job in jobs:
            self.ack(job)

    @abc.abstractmethod
    def retry(self, job: Job, at: float, error: str, *, count_attempt: bool = True) -> None:
        """Hand the job back to be delivered again no earlier than the epoch time `at`.
        With `count_attempt=False` this delivery does not count towards max attempts (the
        next delivery has the same `attempts`). A stale delivery's retry is ignored."""

    @abc.abstractmethod
    def extend_lease(self, job: Job, lease: float) -> Job:
        """Keep a long job: its lease now ends `lease` seconds from now; returns the job
        with its new `lease_until`. Raises LeaseLost when the job is no longer held by this
        delivery (acked, handed back, or its lease ran out and it may be delivered again)."""

    @abc.abstractmethod
    def dead_letter(self, job: Job, reason: str) -> None:
        """Give up on the job: keep it, with its reason, for `dead-letter list|retry`; its
        dedup key is released. A stale delivery's dead letter is ignored."""

    @abc.abstractmethod
    def dead_letters(self, queue: str | None = None, limit: int = 100) -> list[DeadJob]:
        """The dead jobs, newest first."""

    @abc.abstractmethod
    def redrive(self, dead_ids: Sequence[str]) -> int:
        """Move dead jobs back to their queues as fresh jobs (new id, attempts from zero,
        same priority and dedup key); returns how many moved. Unknown ids are ignored; a
        dead job whose dedup key is held by a live job stays dead."""

    @abc.abstractmethod
    def stats(self) -> list[QueueStats]:
        """Per (queue, priority) counts, for every queue that has or had jobs. A job whose
        lease ran out counts as in flight (for its last consumer) until a reserve takes it back."""

    @abc.abstractmethod
    def pending(self, queues: Sequence[str]) -> int:
        """Jobs not yet finished (ready + delayed + in flight) in `queues`."""

    @property
    @abc.abstractmethod
    def fanin(self) -> FanIn:
        """The fan-in groups stored beside this queue's jobs."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections."""
