"""Per-stage job timings: how long each queue's jobs take, merged over every worker.

Each worker keeps, per queue, a log-bucket histogram of job durations (bounded memory: a few
hundred buckets at most, whatever the number of jobs) and counts of outcomes, and writes them
to the `worker_metrics` table with its heartbeat. `sleuth metrics` adds the histograms of all
workers bucket by bucket, which is exact: the merged percentiles are those one histogram fed
every duration would give (a reservoir sample could not be merged like that). A percentile is
read from its bucket, within `RELATIVE_ERROR` of the true value.
"""

from __future__ import annotations

import json
import math
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from sleuth.jobs.worker import WorkerEvent
from sleuth.store.schema import metadata

# Durations at or below MIN_SECONDS share bucket 0; bucket i > 0 holds (MIN·γ^(i-1), MIN·γ^i].
MIN_SECONDS = 1e-6
BUCKETS_PER_DOUBLING = 16
GROWTH = 2.0 ** (1.0 / BUCKETS_PER_DOUBLING)
# A bucket is reported by its geometric middle, at most this far (relatively) from any value in it.
RELATIVE_ERROR = math.sqrt(GROWTH) - 1.0

OUTCOMES = ("acked", "retried", "postponed", "dead", "lease_lost", "handed_back")
# Outcomes whose handler ran to an end: their duration goes into the histogram.
TIMED = frozenset({"acked", "retried", "postponed", "dead"})
ERRORS = frozenset({"retried", "dead"})
PERCENTILES = (0.5, 0.9, 0.99)

worker_metrics = sa.Table(
    "worker_metrics",
    metadata,
    sa.Column("consumer", sa.String(255), primary_key=True),
    sa.Column("queue", sa.String(255), primary_key=True),
    sa.Column("data", sa.Text, nullable=False),  # StageStats.to_json()
    sa.Column("updated_at", sa.Double, nullable=False),
)


def bucket_of(seconds: float) -> int:
    if seconds <= MIN_SECONDS:
        return 0
    return max(1, math.ceil(math.log2(seconds / MIN_SECONDS) * BUCKETS_PER_DOUBLING - 1e-9))


def bucket_value(index: int) -> float:
    """The geometric middle of bucket `index` (MIN_SECONDS for bucket 0)."""
    if index <= 0:
        return MIN_SECONDS
    return MIN_SECONDS * GROWTH ** (index - 0.5)


@dataclass
class Histogram:
    """Counts of durations per log bucket, with the exact count, sum, min and max."""

    buckets: Counter[int] = field(default_factory=Counter)
    count: int = 0
    total: float = 0.0
    low: float = math.inf
    high: float = 0.0

    def add(self, seconds: float) -> None:
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"a duration must be a finite number >= 0, not {seconds!r}")
        self.buckets[bucket_of(seconds)] += 1
        self.count += 1
        self.total += seconds
        self.low = min(self.low, seconds)
        self.high = max(self.high, seconds)

    def merge(self, other: Histogram) -> None:
        self.buckets.update(other.buckets)
        self.count += other.count
        self.total += other.total
        self.low = min(self.low, other.low)
        self.high = max(self.high, other.high)

    def quantile(self, q: float) -> float | None:
        """The nearest-rank `q` quantile (the value of rank ⌈q·count⌉), None when empty.
        Exact at the extremes (q=0 gives the min, q=1 the max); else within RELATIVE_ERROR."""
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"a quantile is between 0 and 1, not {q!r}")
        if self.count == 0:
            return None
        rank = max(1, math.ceil(q * self.count))
        if rank >= self.count:
            return self.high
        if rank == 1:
            return self.low
        seen = 0
        for index in sorted(self.buckets):
            seen += self.buckets[index]
            if seen >= rank:
                return min(max(bucket_value(index), self.low), self.high)
        return self.high  # unreachable while counts add up; keeps the type honest

    def count_at_most(self, bound_index: int) -> int:
        """How many durations are at most the upper edge of bucket `bound_index`
        (`MIN_SECONDS * GROWTH ** bound_index`): exact, as no bucket straddles it."""
        return sum(n for index, n in self.buckets.items() if index <= bound_index)

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "buckets": {str(i): n for i, n in sorted(self.buckets.items())},
            "count": self.count,
            "sum": self.total,
            "min": self.low if self.count else None,
            "max": self.high if self.count else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Histogram:
        buckets = Counter({int(i): int(n) for i, n in data["buckets"].items()})
        count = int(data["count"])
        if sum(buckets.values()) != count:
            raise ValueError("histogram buckets do not add up to its count")
        return cls(
            buckets=buckets,
            count=count,
            total=float(data["sum"]),
            low=math.inf if data["min"] is None else float(data["min"]),
            high=0.0 if data["max"] is None else float(data["max"]),
        )


@dataclass
class StageStats:
    """One queue's timings and outcome counts (of one worker, or merged)."""

    durations: Histogram = field(default_factory=Histogram)
    outcomes: Counter[str] = field(default_factory=Counter)

    def merge(self, other: StageStats) -> None:
        self.durations.merge(other.durations)
        self.outcomes.update(other.outcomes)

    @property
    def errors(self) -> int:
        return sum(self.outcomes[name] for name in ERRORS)

    def to_json(self) -> str:
        data = {"durations": self.durations.to_dict(), "outcomes": dict(self.outcomes)}
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> StageStats:
        data = json.loads(text)
        return cls(Histogram.from_dict(data["durations"]), Counter(data["outcomes"]))


class WorkerMetrics:
    """A worker's per-queue stats, fed by its `WorkerEvent`s.

    A job's duration runs from its "started" event to the event recording its outcome, so it
    includes writing that outcome to the queue. `observe` runs on the worker's loop and
    `snapshot` in the heartbeat thread; a lock keeps them apart."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stages: dict[str, StageStats] = {}
        self._started: dict[str, float] = {}  # job id → start; only jobs running now
        self._dirty: set[str] = set()

    def observe(self, event: WorkerEvent) -> None:
        job = event.job
        with self._lock:
            if event.kind == "started":
                self._started[job.id] = event.at
                return
            if event.kind not in OUTCOMES:
                return
            began = self._started.pop(job.id, None)
            stage = self._stages.setdefault(job.queue, StageStats())
            stage.outcomes[event.kind] += 1
            # A job dead-lettered before it ran (too many deliveries) has no duration.
            if began is not None and event.kind in TIMED:
                stage.durations.add(max(0.0, event.at - began))
            self._dirty.add(job.queue)

    def snapshot(self, only_changed: bool = False) -> dict[str, str]:
        """queue → `StageStats.to_json()`; with `only_changed`, only the queues changed since
        the last such call (what a heartbeat must write)."""
        with self._lock:
            queues = set(self._dirty) if only_changed else set(self._stages)
            if only_changed:
                self._dirty.clear()
            return {q: self._stages[q].to_json() for q in sorted(queues)}

    def mark_unsaved(self, queues: Iterable[str]) -> None:
        """A write of these queues' stats failed: include them in the next changed snapshot."""
        with self._lock:
            self._dirty.update(queues)


@dataclass(frozen=True)
class StageSummary:
    """What `sleuth metrics` shows for one queue: durations in seconds (None: no timed job)."""

    queue: str
    count: int
    errors: int
    p50: float | None
    p90: float | None
    p99: float | None
    max: float | None
    mean: float | None
    outcomes: dict[str, int]
    workers: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def summarize(queue: str, stats: StageStats, workers: int) -> StageSummary:
    p50, p90, p99 = (stats.durations.quantile(q) for q in PERCENTILES)
    return StageSummary(
        queue=queue,
        count=stats.durations.count,
        errors=stats.errors,
        p50=p50,
        p90=p90,
        p99=p99,
        max=stats.durations.high if stats.durations.count else None,
        mean=stats.durations.mean,
        outcomes={name: stats.outcomes[name] for name in OUTCOMES},
        workers=workers,
    )


def merged_stats(
    conn: Connection, queue: str | None = None, consumers: Iterable[str] | None = None
) -> dict[str, tuple[StageStats, int]]:
    """queue → (its stats merged over all workers, or over `consumers`; how many workers)."""
    query = sa.select(worker_metrics.c.consumer, worker_metrics.c.queue, worker_metrics.c.data)
    if queue is not None:
        query = query.where(worker_metrics.c.queue == queue)
    if consumers is not None:
        query = query.where(worker_metrics.c.consumer.in_(list(consumers)))
    merged: dict[str, StageStats] = {}
    workers: Counter[str] = Counter()
    for _consumer, name, data in conn.execute(query):
        merged.setdefault(name, StageStats()).merge(StageStats.from_json(data))
        workers[name] += 1
    return {name: (merged[name], workers[name]) for name in sorted(merged)}


def merged_stages(
    conn: Connection, queue: str | None = None, consumers: Iterable[str] | None = None
) -> list[StageSummary]:
    """Every queue's stats merged over all workers (or over `consumers`), by queue name."""
    merged = merged_stats(conn, queue, consumers)
    return [summarize(name, stats, workers) for name, (stats, workers) in merged.items()]
