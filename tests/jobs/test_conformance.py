"""The behaviour every `QueueBackend` must have, written against the interface only.

Runs once per backend of `conftest.BACKENDS`. Waits on leases and delays poll with generous
timeouts, so a loaded machine makes them slower, not flaky."""

from __future__ import annotations

import json
import math
import multiprocessing
import time
from pathlib import Path

import pytest

from sleuth.jobs import open_queue
from sleuth.jobs.base import LeaseLost, QueueBackend
from tests.jobs.helpers import drain
from tests.patience import wait_for


def ids(jobs: list) -> list[str]:
    return [job.id for job in jobs]


def test_fifo_within_a_priority(backend: QueueBackend) -> None:
    added = [backend.enqueue("q", {"i": i}) for i in range(6)]
    first = backend.reserve(["q"], 2, 30, "c")
    rest = backend.reserve(["q"], 10, 30, "c")
    assert ids(first) + ids(rest) == added
    assert [job.payload["i"] for job in first + rest] == list(range(6))
    assert backend.reserve(["q"], 10, 30, "c") == []


def test_higher_priority_first_across_queues(backend: QueueBackend) -> None:
    a_low = backend.enqueue("a", {"n": "a_low"})
    time.sleep(0.002)
    a_high = backend.enqueue("a", {"n": "a_high"}, priority=5)
    b_top = backend.enqueue("b", {"n": "b_top"}, priority=9)
    time.sleep(0.002)
    b_low = backend.enqueue("b", {"n": "b_low"})
    backend.enqueue("c", {"n": "not asked for"}, priority=100)
    got = backend.reserve(["a", "b"], 10, 30, "c")
    assert ids(got) == [b_top, a_high, a_low, b_low]
    assert [(j.queue, j.priority) for j in got] == [("b", 9), ("a", 5), ("a", 0), ("b", 0)]


def test_reserve_returns_at_most_n_with_lease_and_attempts(backend: QueueBackend) -> None:
    for i in range(5):
        backend.enqueue("q", {"i": i})
    before = time.time()
    got = backend.reserve(["q"], 3, 30, "c")
    assert len(got) == 3
    for job in got:
        assert job.attempts == 1
        assert job.queue == "q"
        assert before + 29 <= job.lease_until <= time.time() + 31
    assert len(backend.reserve(["q"], 3, 30, "c")) == 2


def test_delayed_job_waits_its_delay(backend: QueueBackend) -> None:
    backend.enqueue("q", {"late": True}, delay=60)
    assert backend.reserve(["q"], 1, 30, "c") == []
    assert backend.pending(["q"]) == 1
    soon = backend.enqueue("q", {"late": False}, delay=0.2)
    assert backend.reserve(["q"], 1, 30, "c") == []
    got = wait_for(lambda: backend.reserve(["q"], 5, 30, "c"))
    assert ids(got) == [soon]


def test_dedup_key_is_unique_among_unfinished_jobs(backend: QueueBackend) -> None:
    first = backend.enqueue("q", {"v": 1}, dedup_key="k")
    assert first is not None
    assert backend.enqueue("q", {"v": 2}, dedup_key="k") is None
    assert backend.enqueue("other", {"v": 3}, dedup_key="k") is not None  # scoped per queue
    [job] = backend.reserve(["q"], 5, 30, "c")
    assert backend.enqueue("q", {"v": 4}, dedup_key="k") is None  # in flight still holds it
    backend.retry(job, time.time() + 60, "later")
    assert backend.enqueue("q", {"v": 5}, dedup_key="k") is None  # delayed still holds it
    assert backend.pending(["q"]) == 1


def test_dedup_key_is_released_by_ack_and_by_dead_letter(backend: QueueBackend) -> None:
    backend.enqueue("q", {"v": 1}, dedup_key="k")
    [job] = backend.reserve(["q"], 1, 30, "c")
    backend.ack(job)
    again = backend.enqueue("q", {"v": 2}, dedup_key="k")
    assert again is not None
    [job] = backend.reserve(["q"], 1, 30, "c")
    backend.dead_letter(job, "broken")
    assert backend.enqueue("q", {"v": 3}, dedup_key="k") is not None


def test_expired_lease_redelivers_with_attempts_plus_one(backend: QueueBackend) -> None:
    job_id = backend.enqueue("q", {"x": 1})
    [first] = backend.reserve(["q"], 1, 0.2, "dead-worker")
    assert backend.reserve(["q"], 1, 30, "other") == []  # the lease holds
    second = wait_for(lambda: backend.reserve(["q"], 1, 30, "other"))[0]
    assert (second.id, second.attempts, second.payload) == (job_id, 2, {"x": 1})
    assert first.attempts == 1


def test_stale_delivery_cannot_ack_retry_or_kill_the_new_one(backend: QueueBackend) -> None:
    backend.enqueue("q", {"x": 1}, dedup_key="k")
    [stale] = backend.reserve(["q"], 1, 0.2, "slow")
    fresh = wait_for(lambda: backend.reserve(["q"], 1, 30, "fast"))[0]
    backend.ack(stale)
    backend.retry(stale, time.time(), "late retry")
    backend.dead_letter(stale, "late dead letter")
    assert backend.pending(["q"]) == 1
    assert backend.dead_letters() == []
    assert backend.enqueue("q", {"x": 2}, dedup_key="k") is None
    assert backend.extend_lease(fresh, 30).lease_until > time.time() + 29
    backend.ack(fresh)
    assert backend.pending(["q"]) == 0


def test_extend_lease_keeps_the_job(backend: QueueBackend) -> None:
    backend.enqueue("q", {"x": 1})
    [job] = backend.reserve(["q"], 1, 0.3, "c")
    extended = backend.extend_lease(job, 30)
    assert extended.id == job.id and extended.lease_until > job.lease_until
    time.sleep(0.5)
    assert backend.reserve(["q"], 1, 30, "other") == []
    backend.ack(extended)  # ack works with either the original or the extended job
    assert backend.pending(["q"]) == 0


def test_extend_lease_raises_lease_lost(backend: QueueBackend) -> None:
    backend.enqueue("q", {"x": 1})
    [job] = backend.reserve(["q"], 1, 0.2, "c")
    wait_for(lambda: backend.reserve(["q"], 1, 30, "thief"))
    with pytest.raises(LeaseLost):
        backend.extend_lease(job, 30)
    backend.enqueue("q", {"x": 2})
    [done] = backend.reserve(["q"], 1, 30, "c")
    backend.ack(done)
    with pytest.raises(LeaseLost):
        backend.extend_lease(done, 30)


def test_retry_at_delays_and_counts_the_attempt(backend: QueueBackend) -> None:
    job_id = backend.enqueue("q", {"x": 1})
    [job] = backend.reserve(["q"], 1, 30, "c")
    backend.retry(job, time.time() + 0.3, "flaky")
    assert backend.reserve(["q"], 1, 30, "c") == []
    assert backend.pending(["q"]) == 1
    again = wait_for(lambda: backend.reserve(["q"], 1, 30, "c"))[0]
    assert (again.id, again.attempts) == (job_id, 2)
    backend.retry(again, time.time() - 5, "now", count_attempt=False)
    third = backend.reserve(["q"], 1, 30, "c")[0]
    assert (third.id, third.attempts) == (job_id, 2)  # the postponement did not count


def test_retried_job_goes_behind_older_ready_jobs(backend: QueueBackend) -> None:
    first = backend.enqueue("q", {"i": 1})
    [job] = backend.reserve(["q"], 1, 30, "c")
    second = backend.enqueue("q", {"i": 2})
    time.sleep(0.002)
    backend.retry(job, time.time(), "again")
    assert ids(backend.reserve(["q"], 2, 30, "c")) == [second, first]


def test_dead_letter_list_and_redrive(backend: QueueBackend) -> None:
    dead_ids = []
    for i, queue in enumerate(["a", "a", "b"]):
        backend.enqueue(queue, {"i": i}, priority=3)
        [job] = backend.reserve([queue], 1, 30, "c")
        backend.dead_letter(job, f"reason {i}")
        dead_ids.append(job.id)
        time.sleep(0.002)
    assert backend.pending(["a", "b"]) == 0
    listed = backend.dead_letters()
    assert [d.id for d in listed] == dead_ids[::-1]  # newest first
    assert [d.reason for d in listed] == ["reason 2", "reason 1", "reason 0"]
    assert listed[0].queue == "b" and listed[0].payload == {"i": 2} and listed[0].attempts == 1
    assert [d.id for d in backend.dead_letters("a")] == dead_ids[1::-1]
    assert len(backend.dead_letters(limit=1)) == 1
    assert backend.redrive([dead_ids[0], "no-such-job"]) == 1
    assert [d.id for d in backend.dead_letters()] == dead_ids[:0:-1]
    [job] = backend.reserve(["a", "b"], 5, 30, "c")
    assert (job.queue, job.payload, job.priority, job.attempts) == ("a", {"i": 0}, 3, 1)


def test_redrive_keeps_the_dedup_key(backend: QueueBackend) -> None:
    backend.enqueue("q", {"v": 1}, dedup_key="k")
    [job] = backend.reserve(["q"], 1, 30, "c")
    backend.dead_letter(job, "broken")
    live = backend.enqueue("q", {"v": 2}, dedup_key="k")
    assert backend.redrive([job.id]) == 0  # a live job holds the key: it stays dead
    [taken] = backend.reserve(["q"], 1, 30, "c")
    assert taken.id == live
    backend.ack(taken)
    assert backend.redrive([job.id]) == 1
    assert backend.dead_letters() == []
    assert backend.enqueue("q", {"v": 3}, dedup_key="k") is None
    assert backend.reserve(["q"], 1, 30, "c")[0].dedup_key == "k"


def test_stats_per_queue_and_priority(backend: QueueBackend) -> None:
    for i in range(3):
        backend.enqueue("a", {"i": i})
    backend.enqueue("a", {"late": True}, delay=60)
    backend.enqueue("a", {"hi": 1}, priority=5)
    backend.enqueue("a", {"hi": 2}, priority=5)
    backend.enqueue("b", {"x": 1})
    [hi] = backend.reserve(["a"], 1, 30, "w1")
    [b] = backend.reserve(["b"], 1, 30, "w2")
    backend.dead_letter(b, "bad")
    [low] = backend.reserve(["a"], 2, 30, "w2")[1:]
    backend.ack(low)
    time.sleep(0.05)
    by_key = {(s.queue, s.priority): s for s in backend.stats()}
    a0, a5, b0 = by_key[("a", 0)], by_key[("a", 5)], by_key[("b", 0)]
    assert hi.priority == 5
    assert (a5.ready, a5.delayed, a5.in_flight, a5.dead) == (0, 0, 2, 0)
    assert dict(a5.in_flight_by_consumer) == {"w1": 1, "w2": 1}
    assert a5.oldest_ready_age is None
    assert (a0.ready, a0.delayed, a0.in_flight, a0.dead) == (2, 1, 0, 0)
    assert a0.oldest_ready_age is not None and 0.05 <= a0.oldest_ready_age < 60
    assert a0.next_due_in is not None and 50 < a0.next_due_in <= 60  # the late one
    assert a5.next_due_in is None and b0.next_due_in is None
    assert (b0.ready, b0.delayed, b0.in_flight, b0.dead) == (0, 0, 0, 1)  # had jobs: listed
    assert set(by_key) == {("a", 0), ("a", 5), ("b", 0)}


def test_pending_counts_unfinished_jobs_of_the_queues(backend: QueueBackend) -> None:
    assert backend.pending(["q"]) == 0
    backend.enqueue("q", {"i": 1})
    backend.enqueue("q", {"i": 2}, delay=60)
    backend.enqueue("r", {"i": 3})
    [job] = backend.reserve(["q"], 1, 30, "c")
    assert backend.pending(["q"]) == 2
    assert backend.pending(["q", "r"]) == 3
    assert backend.pending([]) == 0
    backend.ack(job)
    assert backend.pending(["q"]) == 1


def test_join_completes_once_every_part_is_in(backend: QueueBackend) -> None:
    parts = ["md5", "gray", "phash"]
    assert backend.fanin.join("img1", "md5", {"v": "old"}, parts) is None
    assert backend.fanin.join("img1", "md5", {"v": "abc"}, parts) is None  # rewrite, still missing
    assert backend.fanin.join("img2", "gray", {"v": "other group"}, parts) is None
    assert backend.fanin.join("img1", "gray", {"v": 7}, parts) is None
    done = backend.fanin.join("img1", "phash", {"v": [1, 2]}, parts)
    assert done == {"md5": {"v": "abc"}, "gray": {"v": 7}, "phash": {"v": [1, 2]}}
    assert backend.fanin.join("img1", "phash", {"v": [1, 2]}, parts) == done  # redelivered branch
    backend.fanin.forget("img1")
    assert backend.fanin.join("img1", "md5", {"v": "abc"}, parts) is None
    with pytest.raises(ValueError, match="not one of"):
        backend.fanin.join("img1", "size", {}, parts)


def test_join_many_and_forget_many_in_one_call(backend: QueueBackend) -> None:
    fanin = backend.fanin
    parts = ("md5", "gray")
    assert fanin.join_many([], parts) == []
    first = fanin.join_many([("a", "md5", {"v": 1}), ("b", "md5", {"v": 2})], parts)
    assert first == [None, None]
    done = fanin.join_many(
        [("a", "gray", {"g": 1}), ("c", "gray", {"g": 3}), ("b", "gray", {"g": 2})], parts
    )
    assert done == [
        {"md5": {"v": 1}, "gray": {"g": 1}},
        None,
        {"md5": {"v": 2}, "gray": {"g": 2}},
    ]
    fanin.forget_many(["a", "b"])
    fanin.forget_many([])
    assert fanin.join("a", "gray", {"g": 1}, parts) is None  # "a" was forgotten
    assert fanin.join("c", "md5", {"v": 3}, parts) == {"md5": {"v": 3}, "gray": {"g": 3}}
    with pytest.raises(ValueError, match="not one of the group's parts"):
        fanin.join_many([("a", "md5", {}), ("a", "size", {})], parts)


def test_enqueue_many_adds_in_order_and_skips_duplicates(backend: QueueBackend) -> None:
    backend.enqueue("q", {"i": -1}, dedup_key="taken")
    payloads = [({"i": i}, f"k{i % 900}" if i % 2 else None) for i in range(2000)]
    payloads.append(({"i": "dup of held key"}, "taken"))
    added = backend.enqueue_many("q", payloads)
    # Odd i have keys k{i % 900}: 1000 odd numbers map onto 450 distinct odd residues.
    assert added == 1000 + 450
    assert backend.enqueue_many("q", []) == 0
    got = backend.reserve(["q"], 5000, 30, "c")
    assert len(got) == 1 + added
    order = [job.payload["i"] for job in got[1:]]
    assert order == sorted(order)
    assert all(job.priority == 0 for job in got)


def test_ack_many(backend: QueueBackend) -> None:
    for i in range(10):
        backend.enqueue("q", {"i": i})
    jobs = backend.reserve(["q"], 10, 30, "c")
    backend.ack_many(jobs[:7])
    backend.ack_many([])
    assert backend.pending(["q"]) == 3


def test_bad_input_is_refused_with_a_reason(backend: QueueBackend) -> None:
    with pytest.raises(ValueError, match="JSON object"):
        backend.enqueue("q", ["not", "a", "dict"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="JSON"):
        backend.enqueue("q", {"x": math.nan})
    with pytest.raises(ValueError, match="JSON"):
        backend.enqueue("q", {"x": object()})
    with pytest.raises(ValueError, match="JSON"):
        backend.enqueue_many("q", [({"ok": 1}, None), ({"x": {1, 2}}, None)])
    with pytest.raises(ValueError, match="queue"):
        backend.enqueue("", {})
    with pytest.raises(ValueError, match="delay"):
        backend.enqueue("q", {}, delay=-1)
    with pytest.raises(ValueError, match="n must be"):
        backend.reserve(["q"], 0, 30, "c")
    with pytest.raises(ValueError, match="lease"):
        backend.reserve(["q"], 1, 0, "c")
    with pytest.raises(ValueError, match="sequence"):
        backend.reserve("q", 1, 30, "c")
    assert backend.pending(["q"]) == 0  # nothing half-added


def test_payload_round_trips(backend: QueueBackend) -> None:
    payload = {"s": "ünïcode ✓", "n": None, "f": 1.5, "l": [1, {"d": True}], "big": 2**53}
    backend.enqueue("q", payload, dedup_key="ü")
    [job] = backend.reserve(["q"], 1, 30, "c")
    assert job.payload == payload and job.dedup_key == "ü"


def test_reservers_in_two_processes_never_share_a_job(queue_url: str, tmp_path: Path) -> None:
    """2 processes drain 4000 jobs at once: every job is taken exactly once."""
    backend = open_queue(queue_url)
    assert backend.enqueue_many("race", [({"i": i}, None) for i in range(4000)]) == 4000
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(3)
    took_first = context.Barrier(2)
    outs = [str(tmp_path / f"taken-{i}.json") for i in range(2)]
    procs = [
        context.Process(
            target=drain,
            args=(queue_url, "race", f"p{i}", outs[i], start, took_first),
        )
        for i in range(2)
    ]
    for p in procs:
        p.start()
    start.wait(120)  # both are connected: go
    for p in procs:
        p.join(300)
        assert p.exitcode == 0
    taken = [json.loads(Path(out).read_text()) for out in outs]
    assert all(taken), "both processes should have taken some jobs"
    everything = taken[0] + taken[1]
    assert len(everything) == len(set(everything)) == 4000
    assert backend.pending(["race"]) == 0
    backend.close()
