"""Typed tasks: a queue together with its payload type and how its jobs are run.

A task is declared once, at module level, next to its handler:

    @dataclass(frozen=True)
    class Resize:
        key: str
        width: int

    RESIZE = Task("images.resize", Resize, lease=120.0, max_attempts=3)

and sent with `backend.send(RESIZE, Resize("ab12", 640), dedup_key="resize:ab12")` (a
producer outside a worker) or `await ctx.send(...)` (a handler). The payload is checked when
sent (a wrong one raises `PayloadError` at the sender) and when reserved (a malformed one,
written by an older version or by hand, goes to the dead letters with its reason).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Generic, TypeVar

from sleuth.jobs.base import JSON
from sleuth.jobs.checks import UNREADABLE
from sleuth.jobs.payload import PayloadError, check_payload_type, decode, encode

P = TypeVar("P")


@dataclass(frozen=True)
class Task(Generic[P]):
    """The jobs of one queue: their payload type and how a worker runs them.

    `lease`: seconds a delivery is held before another worker may take it (renewed every
    lease/3 while the handler runs). `max_attempts`: failed deliveries before the dead letters.
    `max_deliveries`: deliveries that never finished (their worker died or lost the lease)
    before the dead letters; None: 4 × max_attempts, at least 20. Workers killed around a job
    are seldom its fault (an operator, a crash, a batch mate), so that cap is higher; a job
    that kills every worker it runs on still ends in the dead letters.
    `priority`: the priority its jobs are sent with (higher first). A failed job is retried
    after `backoff_delay(attempt, backoff_base, backoff_cap)` seconds. `concurrency`: at most
    this many handler calls at once in one worker (None: only the worker's own limit).
    `batch`: the most jobs one call of a batch handler (`worker.BatchKind`) takes, and
    `batch_wait`: the most seconds a worker waits for that many to be ready before it runs
    the ones it has.
    """

    queue: str
    payload: type[P]
    lease: float = 60.0
    max_attempts: int = 5
    max_deliveries: int | None = None
    priority: int = 0
    backoff_base: float = 1.0
    backoff_cap: float = 300.0
    concurrency: int | None = None
    batch: int = 1
    batch_wait: float = 0.0

    @property
    def delivery_cap(self) -> int:
        """Deliveries a job gets before it is dead-lettered unrun (see `max_deliveries`)."""
        if self.max_deliveries is not None:
            return self.max_deliveries
        return max(4 * self.max_attempts, 20)

    def __post_init__(self) -> None:
        if not isinstance(self.queue, str) or not self.queue:
            raise ValueError("a Task needs a queue name")
        check_payload_type(self.payload)
        if self.max_attempts < 1:
            raise ValueError(f"task {self.queue!r}: max_attempts must be >= 1")
        if self.max_deliveries is not None and self.max_deliveries < self.max_attempts:
            raise ValueError(f"task {self.queue!r}: max_deliveries must be >= max_attempts")
        if not math.isfinite(self.lease) or self.lease <= 0:
            raise ValueError(f"task {self.queue!r}: lease must be a positive number")
        if not isinstance(self.priority, int) or isinstance(self.priority, bool):
            raise ValueError(f"task {self.queue!r}: priority must be an integer")
        if self.concurrency is not None and self.concurrency < 1:
            raise ValueError(f"task {self.queue!r}: concurrency must be None or >= 1")
        if not 0 < self.backoff_base <= self.backoff_cap:
            raise ValueError(f"task {self.queue!r}: need 0 < backoff_base <= backoff_cap")
        if not isinstance(self.batch, int) or self.batch < 1:
            raise ValueError(f"task {self.queue!r}: batch must be an integer >= 1")
        if not 0 <= self.batch_wait <= self.lease / 3:
            raise ValueError(
                f"task {self.queue!r}: batch_wait must be from 0 to a third of the lease"
            )

    def encode(self, payload: P) -> JSON:
        """The payload as the JSON object the queue stores; PayloadError if it is invalid."""
        return encode(self.payload, payload)

    def decode(self, data: object) -> P:
        """The typed payload of a stored job; PayloadError, with the field, if malformed."""
        if isinstance(data, dict) and set(data) == {UNREADABLE}:
            raise PayloadError(
                f"the stored payload is not a JSON object: {data[UNREADABLE]!r:.200}"
            )
        return decode(self.payload, data)
