"""The worker runtime, in this process, on every backend."""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable

import pytest

from sleuth.jobs.base import Job, QueueBackend
from sleuth.jobs.payload import PayloadError
from sleuth.jobs.tasks import Task
from sleuth.jobs.worker import (
    BATCHES_IN_FLIGHT,
    BatchKind,
    JobContext,
    JobKind,
    Retry,
    Worker,
    WorkerEvent,
    backoff_delay,
)
from tests.jobs.helpers import Num, Sleep, X, cpu_work, overwrite_payload
from tests.patience import wait_for


def make_worker(
    backend: QueueBackend, kinds: list[JobKind], events: list[WorkerEvent] | None = None, **kw
) -> Worker:
    kw.setdefault("poll_interval", 0.02)
    kw.setdefault("handle_signals", False)
    return Worker(
        backend, kinds, consumer="test", on_event=None if events is None else events.append, **kw
    )


def run(worker: Worker, until: Callable[[], bool] | None = None, timeout: float = 30.0) -> None:
    """Run the worker in this thread until `until()` (default: its queues are drained); fail
    rather than hang if that takes longer than `timeout`."""
    done = until or worker.drained
    deadline = time.monotonic() + timeout
    worker.run_sync(until=lambda: done() or time.monotonic() > deadline)
    assert done(), f"worker stopped by the {timeout} s timeout, not by its condition"


def kinds_of(events: list[WorkerEvent]) -> list[str]:
    return [e.kind for e in events]


def test_handlers_run_and_jobs_are_acked(backend: QueueBackend) -> None:
    seen: list[int] = []

    async def handler(payload: Num, ctx: JobContext) -> None:
        await asyncio.sleep(0.001)
        seen.append(payload.i)

    backend.enqueue_many("q", [({"i": i}, None) for i in range(40)])
    events: list[WorkerEvent] = []
    worker = make_worker(backend, [JobKind(Task("q", Num), handler)], events, concurrency=8)
    run(worker)
    assert sorted(seen) == list(range(40))
    assert kinds_of(events).count("acked") == 40
    assert kinds_of(events).count("started") == 40
    assert backend.pending(["q"]) == 0
    assert worker.current == {}


def test_handler_can_enqueue_follow_up_jobs(backend: QueueBackend) -> None:
    done: list[int] = []

    second_task = Task("second", Num, priority=4)

    async def first(payload: Num, ctx: JobContext) -> None:
        await ctx.send(second_task, payload, dedup_key=f"s{payload.i}")
        await ctx.send(second_task, payload, dedup_key=f"s{payload.i}")

    async def second(payload: Num, ctx: JobContext) -> None:
        assert ctx.job.priority == 4  # sent at its task's priority
        done.append(payload.i)

    backend.send_many(Task("first", Num), [(Num(i), None) for i in range(5)])
    kinds = [JobKind(Task("first", Num), first), JobKind(second_task, second)]
    worker = make_worker(backend, kinds)
    run(worker)
    assert sorted(done) == list(range(5))


def test_a_follow_up_job_and_the_end_need_no_poll(backend: QueueBackend) -> None:
    """A job a handler sends is reserved at once, and `until` is asked as a call ends: with a
    poll interval longer than the test's timeout, the chain still runs to its end."""
    done: list[int] = []
    second_task = Task("second", Num)

    async def first(payload: Num, ctx: JobContext) -> None:
        await ctx.send(second_task, Num(payload.i + 1))

    async def second(payload: Num, ctx: JobContext) -> None:
        done.append(payload.i)

    backend.send(Task("first", Num), Num(1))
    kinds = [JobKind(Task("first", Num), first), JobKind(second_task, second)]
    worker = make_worker(backend, kinds, poll_interval=120.0)
    run(worker, until=lambda: bool(done), timeout=60.0)
    assert done == [2]


def test_failures_retry_with_backoff_then_dead_letter(backend: QueueBackend) -> None:
    tries: list[tuple[int, float]] = []

    async def failing(payload: X, ctx: JobContext) -> None:
        tries.append((ctx.job.attempts, time.monotonic()))
        raise ValueError(f"boom on attempt {ctx.job.attempts}")

    backend.enqueue("q", {"x": 1})
    events: list[WorkerEvent] = []
    task = Task("q", X, max_attempts=3, backoff_base=0.1, backoff_cap=0.2)
    kind = JobKind(task, failing)
    worker = make_worker(backend, [kind], events)
    run(worker)
    assert [a for a, _ in tries] == [1, 2, 3]
    gaps = [b - a for (_, a), (_, b) in itertools.pairwise(tries)]
    assert gaps[0] >= 0.05 and gaps[1] >= 0.1  # at least half of each backoff step
    assert kinds_of(events) == ["started", "retried"] * 2 + ["started", "dead"]
    assert events[1].error is not None and "ValueError: boom on attempt 1" in events[1].error
    [dead] = backend.dead_letters()
    assert dead.attempts == 3
    assert "failed 3 times" in dead.reason and "ValueError: boom on attempt 3" in dead.reason
    assert "Traceback" in dead.reason


def test_retry_after_is_honoured_and_not_counted(backend: QueueBackend) -> None:
    calls: list[tuple[int, float]] = []

    async def cooling(payload: X, ctx: JobContext) -> None:
        calls.append((ctx.job.attempts, time.time()))
        if len(calls) < 3:
            raise Retry(after=0.3, reason="host cooling down")

    backend.enqueue("q", {"x": 1})
    events: list[WorkerEvent] = []
    worker = make_worker(backend, [JobKind(Task("q", X, max_attempts=1), cooling)], events)
    run(worker)
    assert [a for a, _ in calls] == [1, 1, 1]  # postponing is not a failed attempt
    assert calls[1][1] - calls[0][1] >= 0.3 and calls[2][1] - calls[1][1] >= 0.3
    assert kinds_of(events) == ["started", "postponed"] * 2 + ["started", "acked"]
    assert events[1].error == "host cooling down"
    assert backend.dead_letters() == []


def test_run_cpu_runs_in_the_process_pool(backend: QueueBackend) -> None:
    results: list[tuple[int, int]] = []

    async def crunch(payload: Num, ctx: JobContext) -> None:
        results.append(await ctx.run_cpu(cpu_work, payload.i))

    backend.enqueue_many("cpu", [({"i": n}, None) for n in (10, 1000)])
    worker = make_worker(backend, [JobKind(Task("cpu", Num), crunch)], processes=1)
    run(worker)
    assert sorted(v for _, v in results) == [285, 332833500]
    assert all(pid != os.getpid() for pid, _ in results)


def test_the_fork_server_preloads_the_modules_a_kind_names(backend: QueueBackend) -> None:
    async def crunch(payload: Num, ctx: JobContext) -> None:
        await ctx.run_cpu(cpu_work, payload.i)

    kinds = [JobKind(Task("cpu", Num), crunch, cpu_modules=("colorsys",))]
    preload = make_worker(backend, kinds, processes=1)._preload(cpu_work)
    assert {"colorsys", "tests.jobs.helpers", __name__, "sleuth.jobs.worker"} <= set(preload)


def test_a_pool_started_ahead_runs_the_later_calls(backend: QueueBackend) -> None:
    results: list[tuple[int, int]] = []

    async def crunch(payload: Num, ctx: JobContext) -> None:
        ctx.start_cpu()
        await asyncio.sleep(0.01)  # the I/O the pool process starts during
        results.append(await ctx.run_cpu(cpu_work, payload.i))

    backend.enqueue_many("cpu", [({"i": n}, None) for n in (10, 1000)])
    worker = make_worker(backend, [JobKind(Task("cpu", Num), crunch)], processes=1)
    run(worker)
    assert sorted(v for _, v in results) == [285, 332833500]
    assert all(pid != os.getpid() for pid, _ in results)


def test_long_job_keeps_its_lease(backend: QueueBackend, open_backend) -> None:
    other = open_backend()
    stolen: list[Job] = []

    async def long(payload: X, ctx: JobContext) -> None:
        for _ in range(10):  # 1 s, over three times the lease
            await asyncio.sleep(0.1)
            stolen.extend(await asyncio.to_thread(other.reserve, ["q"], 1, 30, "thief"))

    backend.enqueue("q", {"x": 1})
    events: list[WorkerEvent] = []
    worker = make_worker(backend, [JobKind(Task("q", X, lease=0.3), long)], events)
    run(worker)
    assert stolen == []
    assert kinds_of(events) == ["started", "acked"]


def test_lost_lease_cancels_the_handler(backend: QueueBackend) -> None:
    cancelled = threading.Event()

    async def loses_its_job(payload: X, ctx: JobContext) -> None:
        # Someone else settles this delivery: the next renewal finds the lease gone.
        ctx.backend.retry(ctx.job, time.time() + 60, "taken away")
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    backend.enqueue("q", {"x": 1})
    events: list[WorkerEvent] = []
    worker = make_worker(backend, [JobKind(Task("q", X, lease=0.3), loses_its_job)], events)
    run(worker, cancelled.is_set)
    assert cancelled.is_set()
    assert kinds_of(events) == ["started", "lease_lost"]
    [stats] = [s for s in backend.stats() if s.queue == "q"]
    assert (stats.delayed, stats.in_flight) == (1, 0)


def test_stop_hands_back_jobs_that_outlive_the_grace(backend: QueueBackend) -> None:
    started = threading.Event()
    finished: list[str] = []

    async def handler(payload: Sleep, ctx: JobContext) -> None:
        started.set()
        await asyncio.sleep(payload.seconds)
        finished.append(payload.name)

    backend.enqueue("q", {"name": "quick", "seconds": 0.3})
    backend.enqueue("q", {"name": "slow", "seconds": 30})
    events: list[WorkerEvent] = []
    worker = make_worker(backend, [JobKind(Task("q", Sleep), handler)], events, grace=1.5)
    thread = threading.Thread(target=worker.run_sync, daemon=True)
    thread.start()
    wait_for(lambda: started.is_set() and len(worker.current) == 2)
    worker.stop()
    thread.join(20)
    assert not thread.is_alive()
    assert finished == ["quick"]
    assert sorted(kinds_of(events)) == ["acked", "handed_back", "started", "started"]
    [job] = backend.reserve(["q"], 5, 30, "next")  # handed back: ready now
    assert job.payload["name"] == "slow" and job.attempts == 1


def test_second_stop_skips_the_grace(backend: QueueBackend) -> None:
    async def handler(payload: X, ctx: JobContext) -> None:
        await asyncio.sleep(30)

    backend.enqueue("q", {"x": 1})
    worker = make_worker(backend, [JobKind(Task("q", X), handler)], grace=60)
    thread = threading.Thread(target=worker.run_sync, daemon=True)
    thread.start()
    wait_for(lambda: worker.current)
    worker.stop()
    worker.stop()
    thread.join(20)
    assert not thread.is_alive()
    assert len(backend.reserve(["q"], 1, 30, "next")) == 1


def test_job_whose_workers_keep_dying_goes_dead_unrun(backend: QueueBackend) -> None:
    ran: list[Job] = []

    async def handler(payload: X, ctx: JobContext) -> None:
        ran.append(ctx.job)

    backend.enqueue("q", {"x": 1})
    for _ in range(2):  # two deliveries whose worker "died": the leases just run out
        wait_for(lambda: backend.reserve(["q"], 1, 0.1, "doomed"))
    time.sleep(0.15)
    task = Task("q", X, max_attempts=2, max_deliveries=2)
    worker = make_worker(backend, [JobKind(task, handler)])
    run(worker)
    assert ran == []
    [dead] = backend.dead_letters()
    assert dead.attempts == 3 and "without finishing" in dead.reason


def test_deaths_around_a_job_count_against_a_higher_cap_than_its_failures(
    backend: QueueBackend,
) -> None:
    """Workers killed under a job (an operator's kill -9, a crash) are seldom its fault: a
    job whose worker died more often than its max attempts still runs."""
    ran: list[Job] = []

    async def handler(payload: X, ctx: JobContext) -> None:
        ran.append(ctx.job)

    backend.enqueue("q", {"x": 1})
    for _ in range(3):
        wait_for(lambda: backend.reserve(["q"], 1, 0.1, "doomed"))
    time.sleep(0.15)
    task = Task("q", X, max_attempts=2)
    assert task.delivery_cap == 20
    run(make_worker(backend, [JobKind(task, handler)]))
    assert [job.attempts for job in ran] == [4]
    assert backend.dead_letters() == []


def test_a_batch_job_delivered_before_runs_alone(backend: QueueBackend) -> None:
    """Jobs whose worker died run one per call next time, so that if one of them is what
    killed it, it takes no batch mates with it again; fresh jobs still fill batches."""
    sizes: list[tuple[int, ...]] = []

    async def handler(payloads: list[Num], ctx: JobContext) -> None:
        sizes.append(tuple(sorted(p.i for p in payloads)))

    backend.send_many(Task("b", Num), [(Num(i), None) for i in range(3)])
    wait_for(lambda: len(backend.reserve(["b"], 3, 0.1, "doomed")) == 3)
    time.sleep(0.15)
    backend.send_many(Task("b", Num), [(Num(i), None) for i in range(10, 14)])
    task = Task("b", Num, batch=4, batch_wait=0.2)
    run(make_worker(backend, [BatchKind(task, handler)]))
    assert sorted(sizes) == [(0,), (1,), (2,), (10, 11, 12, 13)]


def test_malformed_payloads_go_to_the_dead_letters_unrun(backend: QueueBackend) -> None:
    """A payload that does not match its task (an older version's, or one written by hand)
    is dead-lettered with the field and the reason; the worker goes on with the good ones."""
    seen: list[int] = []

    async def handler(payload: Num, ctx: JobContext) -> None:
        seen.append(payload.i)

    backend.enqueue("q", {"i": "seven"})
    backend.enqueue("q", {"i": 1, "extra": True})
    backend.enqueue("q", {})
    backend.enqueue("q", {"i": 2})
    events: list[WorkerEvent] = []
    worker = make_worker(backend, [JobKind(Task("q", Num), handler)], events)
    run(worker)
    assert seen == [2]
    assert kinds_of(events).count("dead") == 3
    reasons = sorted(dead.reason for dead in backend.dead_letters())
    assert all(r.startswith("malformed payload for task 'q': Num") for r in reasons)
    assert "Num.i: expected int, not 'seven'" in reasons[0]
    assert "missing field 'i'" in reasons[1]
    assert "unknown field(s) ['extra']" in reasons[2]
    assert backend.pending(["q"]) == 0


def test_a_wrong_payload_raises_at_the_sender(backend: QueueBackend) -> None:
    task = Task("q", Num)
    with pytest.raises(PayloadError, match="payload must be a Num, not X"):
        backend.send(task, X(1))  # type: ignore[arg-type]
    with pytest.raises(PayloadError, match=r"Num\.i: expected int, not '1'"):
        backend.send(task, Num("1"))  # type: ignore[arg-type]
    with pytest.raises(PayloadError, match=r"Num\.i: expected int, not True"):
        backend.send_many(task, [(Num(1), None), (Num(True), None)])
    assert backend.pending(["q"]) == 0  # nothing of a refused batch was sent
    assert backend.send(task, Num(3), dedup_key="k") is not None
    assert backend.send(task, Num(4), dedup_key="k") is None


def test_batches_are_bounded_and_settled_job_by_job(backend: QueueBackend) -> None:
    """A batch handler gets at most `batch` jobs at once; a failed or postponed item is retried
    on its own while its batch-mates are acked; a malformed one is dead-lettered alone."""
    sizes: list[int] = []
    calls: Counter[int] = Counter()

    async def handler(payloads: list[Num], ctx: JobContext) -> list[BaseException | None]:
        assert [job.payload["i"] for job in ctx.jobs] == [p.i for p in payloads]
        sizes.append(len(payloads))
        outcomes: list[BaseException | None] = []
        for payload in payloads:
            calls[payload.i] += 1
            if payload.i == 3 and calls[3] == 1:
                outcomes.append(ValueError("item 3 fails once"))
            elif payload.i == 5 and calls[5] == 1:
                outcomes.append(Retry(after=0.05, reason="item 5 is not ready"))
            else:
                outcomes.append(None)
        return outcomes

    backend.send_many(Task("b", Num), [(Num(i), None) for i in range(20)])
    backend.enqueue("b", {"i": "bad"})
    events: list[WorkerEvent] = []
    task = Task("b", Num, batch=8, batch_wait=0.05, backoff_base=0.05, backoff_cap=0.1)
    worker = make_worker(backend, [BatchKind(task, handler)], events)
    run(worker)
    assert max(sizes) == 8 and sum(sizes) == 22  # 20, then item 3 and item 5 again
    assert calls == {**{i: 1 for i in range(20)}, 3: 2, 5: 2}
    assert kinds_of(events).count("acked") == 20
    assert kinds_of(events).count("retried") == 1 and kinds_of(events).count("postponed") == 1
    [dead] = backend.dead_letters()
    assert "malformed payload" in dead.reason and dead.payload == {"i": "bad"}
    assert backend.pending(["b"]) == 0


def test_a_raising_batch_handler_fails_every_item_of_the_batch(backend: QueueBackend) -> None:
    tries: Counter[int] = Counter()

    async def handler(payloads: list[Num], ctx: JobContext) -> None:
        for payload in payloads:
            tries[payload.i] += 1
        raise RuntimeError("the database is down")

    backend.send_many(Task("b", Num), [(Num(i), None) for i in range(3)])
    task = Task("b", Num, batch=4, max_attempts=2, backoff_base=0.05, backoff_cap=0.1)
    worker = make_worker(backend, [BatchKind(task, handler)])
    run(worker)
    assert tries == {0: 2, 1: 2, 2: 2}
    dead = backend.dead_letters()
    assert len(dead) == 3 and all("the database is down" in d.reason for d in dead)


def test_a_partial_batch_runs_after_its_wait(backend: QueueBackend) -> None:
    """Fewer jobs than a batch are run once they waited `batch_wait`, not held for ever."""
    sizes: list[int] = []

    async def handler(payloads: list[Num], ctx: JobContext) -> None:
        sizes.append(len(payloads))

    backend.send_many(Task("b", Num), [(Num(i), None) for i in range(3)])
    worker = make_worker(backend, [BatchKind(Task("b", Num, batch=64, batch_wait=0.2), handler)])
    run(worker)
    assert sum(sizes) == 3


def test_a_worker_holds_few_batches_of_a_kind_at_once(backend: QueueBackend) -> None:
    """Batches in flight are bounded (BATCHES_IN_FLIGHT by default, else the task's
    concurrency), so a worker never leases more jobs than it is about to run."""
    gate = asyncio.Event()
    held: list[int] = []
    worker: Worker

    async def handler(payloads: list[Num], ctx: JobContext) -> None:
        held.append(len(worker.current))
        if len(held) == 1:
            await asyncio.sleep(0.3)  # the worker meanwhile reserves what it may
            gate.set()
        await gate.wait()

    backend.send_many(Task("b", Num), [(Num(i), None) for i in range(40)])
    task = Task("b", Num, batch=4, batch_wait=0.01)
    worker = make_worker(backend, [BatchKind(task, handler)], concurrency=64)
    run(worker)
    assert max(held) <= BATCHES_IN_FLIGHT * 4
    assert len(held) == 10


def test_stop_hands_back_a_batch_being_filled_or_run(backend: QueueBackend) -> None:
    started = threading.Event()

    async def handler(payloads: list[Num], ctx: JobContext) -> None:
        started.set()
        await asyncio.sleep(30)

    backend.send_many(Task("b", Num), [(Num(i), None) for i in range(5)])
    task = Task("b", Num, batch=4, batch_wait=10.0)
    worker = make_worker(backend, [BatchKind(task, handler)], concurrency=2, grace=0.5)
    thread = threading.Thread(target=worker.run_sync, daemon=True)
    thread.start()
    wait_for(started.is_set)
    wait_for(lambda: len(worker.current) == 5)  # one batch of 4 running, 1 waiting for more
    worker.stop()
    thread.join(20)
    assert not thread.is_alive()
    again = backend.reserve(["b"], 10, 30, "next")
    assert sorted(job.payload["i"] for job in again) == [0, 1, 2, 3, 4]
    assert all(job.attempts == 1 for job in again)  # handing back is not a failed attempt


def test_per_kind_concurrency_limit(backend: QueueBackend) -> None:
    running = 0
    most = 0

    async def handler(payload: Num, ctx: JobContext) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.05)
        running -= 1

    backend.enqueue_many("q", [({"i": i}, None) for i in range(8)])
    worker = make_worker(backend, [JobKind(Task("q", Num, concurrency=2), handler)], concurrency=10)
    run(worker)
    assert most == 2


def test_worker_concurrency_bounds_all_kinds(backend: QueueBackend) -> None:
    running = 0
    most = 0

    async def handler(payload: Num, ctx: JobContext) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.05)
        running -= 1

    for queue in ("a", "b"):
        backend.enqueue_many(queue, [({"i": i}, None) for i in range(6)])
    kinds = [JobKind(Task("a", Num), handler), JobKind(Task("b", Num, lease=20), handler)]
    worker = make_worker(backend, kinds, concurrency=3)
    run(worker)
    assert most == 3


def test_bad_configuration_is_refused(backend: QueueBackend) -> None:
    async def handler(payload: X, ctx: JobContext) -> None:
        return None

    kind = JobKind(Task("q", X), handler)
    with pytest.raises(ValueError, match="at least one"):
        Worker(backend, [])
    with pytest.raises(ValueError, match="more than one JobKind"):
        Worker(backend, [kind, kind])
    with pytest.raises(ValueError, match="concurrency"):
        Worker(backend, [kind], concurrency=0)
    with pytest.raises(ValueError, match="needs a Task"):
        JobKind("q", handler)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="batch >= 2"):
        BatchKind(Task("q", X), handler)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="batch_wait"):
        Task("q", X, batch=8, batch_wait=30.0, lease=60.0)
    with pytest.raises(ValueError, match="finite"):
        Retry(after=-1)


def test_backoff_doubles_up_to_the_cap_with_jitter() -> None:
    rng = random.Random(7)
    for attempt, step in [(1, 1.0), (2, 2.0), (5, 16.0), (9, 256.0), (10, 300.0), (90, 300.0)]:
        delays = [backoff_delay(attempt, 1.0, 300.0, rng) for _ in range(50)]
        assert all(step / 2 <= d <= step for d in delays)
        assert len(set(delays)) > 1


def test_a_payload_that_is_not_json_goes_dead_and_the_worker_goes_on(
    backend: QueueBackend, queue_url: str
) -> None:
    """A payload damaged or written by hand in the queue's own storage (not through
    `enqueue`, which refuses it) neither breaks reserving nor kills the worker."""
    seen: list[int] = []

    async def handler(payload: Num, ctx: JobContext) -> None:
        seen.append(payload.i)

    bad = backend.enqueue("q", {"i": 1})
    backend.enqueue("q", {"i": 2})
    assert bad is not None
    overwrite_payload(queue_url, bad, "{not json")
    events: list[WorkerEvent] = []
    worker = make_worker(backend, [JobKind(Task("q", Num), handler)], events)
    run(worker)
    assert seen == [2]
    [dead] = backend.dead_letters()
    assert dead.id == bad and "the stored payload is not a JSON object: '{not json'" in dead.reason
    assert dead.payload == {"unreadable_payload": "{not json"}
