"""Log-bucket histograms: accurate percentiles, exact merges, bounded size; per-worker
timings built from worker events."""

from __future__ import annotations

import math
import random

import pytest

from sleuth.jobs.base import Job
from sleuth.jobs.worker import WorkerEvent
from sleuth.observe.metrics import (
    RELATIVE_ERROR,
    Histogram,
    StageStats,
    WorkerMetrics,
    bucket_of,
    summarize,
)


def exact_quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def histogram_of(values: list[float]) -> Histogram:
    h = Histogram()
    for v in values:
        h.add(v)
    return h


@pytest.mark.parametrize("seed", range(5))
def test_quantiles_are_within_the_stated_error(seed: int) -> None:
    rng = random.Random(seed)
    values = [rng.lognormvariate(-3, 2) for _ in range(2000)] + [0.0, 1e-9]
    h = histogram_of(values)
    for q in (0.0, 0.01, 0.25, 0.5, 0.9, 0.99, 0.999, 1.0):
        got, want = h.quantile(q), exact_quantile(values, q)
        assert got is not None
        assert abs(got - want) <= RELATIVE_ERROR * want + 1e-6, (q, got, want)
    assert h.quantile(0.0) == min(values) and h.quantile(1.0) == max(values)
    assert h.count == len(values) and h.mean == pytest.approx(sum(values) / len(values))


def test_merging_equals_one_histogram_of_everything() -> None:
    rng = random.Random(1)
    parts = [[rng.expovariate(5) for _ in range(rng.randrange(1, 300))] for _ in range(4)]
    merged = Histogram()
    for part in parts:
        merged.merge(histogram_of(part))
    whole = histogram_of([v for part in parts for v in part])
    assert merged.buckets == whole.buckets
    assert (merged.count, merged.low, merged.high) == (whole.count, whole.low, whole.high)
    for q in (0.5, 0.9, 0.99):
        assert merged.quantile(q) == whole.quantile(q)


def test_size_is_bounded_whatever_the_number_of_values() -> None:
    h = histogram_of([random.Random(2).uniform(0, 3600) for _ in range(20_000)])
    # 1 µs .. 1 h is 32 doublings of 16 buckets each.
    assert len(h.buckets) <= 32 * 16 + 1
    assert bucket_of(0.0) == 0 and bucket_of(1e-6) == 0 and bucket_of(2e-6) == 16


def test_round_trip_through_json_and_bad_input() -> None:
    stats = StageStats(histogram_of([0.1, 0.2, 0.4]))
    stats.outcomes["acked"] += 3
    again = StageStats.from_json(stats.to_json())
    assert again.durations == stats.durations and again.outcomes == stats.outcomes
    empty = StageStats.from_json(StageStats().to_json())
    assert empty.durations.quantile(0.5) is None and empty.durations.mean is None
    for bad in (-1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="finite number >= 0"):
            Histogram().add(bad)
    with pytest.raises(ValueError, match="between 0 and 1"):
        Histogram().quantile(1.5)
    broken = stats.to_json().replace('"count":3', '"count":4')
    with pytest.raises(ValueError, match="do not add up"):
        StageStats.from_json(broken)


def _event(kind: str, job_id: str, queue: str, at: float) -> WorkerEvent:
    job = Job(id=job_id, queue=queue, payload={}, priority=0, attempts=1, lease_until=0.0)
    return WorkerEvent(kind, job, "w", at)


def test_worker_metrics_time_each_job_from_start_to_outcome() -> None:
    m = WorkerMetrics()
    for kind, job, queue, at in [
        ("started", "1", "a", 10.0),
        ("started", "2", "a", 10.0),
        ("started", "3", "b", 10.0),
        ("acked", "1", "a", 10.5),
        ("retried", "2", "a", 12.0),
        ("dead", "4", "b", 13.0),  # dead before it ran (too many deliveries): untimed
        ("handed_back", "3", "b", 14.0),  # not finished: untimed
    ]:
        m.observe(_event(kind, job, queue, at))
    first = {q: StageStats.from_json(t) for q, t in m.snapshot(only_changed=True).items()}
    a, b = summarize("a", first["a"], 1), summarize("b", first["b"], 1)
    assert (a.count, a.errors, a.max, a.outcomes["acked"], a.outcomes["retried"]) == (
        2, 1, 2.0, 1, 1
    )  # fmt: skip
    assert a.p50 == pytest.approx(0.5, rel=RELATIVE_ERROR)
    assert (b.count, b.errors, b.outcomes["dead"], b.outcomes["handed_back"]) == (0, 1, 1, 1)
    assert b.p50 is None and b.max is None
    assert m.snapshot(only_changed=True) == {}  # nothing new since
    m.mark_unsaved(["a"])  # a failed write comes back in the next snapshot
    assert set(m.snapshot(only_changed=True)) == {"a"}
    assert set(m.snapshot()) == {"a", "b"}
