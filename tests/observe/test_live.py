"""A real worker on a SQLite queue, watched through the registry: what `sleuth workers`,
`stacks` and `metrics` read is what the worker is really doing."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time

import sqlalchemy as sa

from sleuth import __version__
from sleuth.observe.metrics import merged_stages, worker_metrics
from sleuth.observe.registry import list_workers
from sleuth.observe.stacks import collect_stacks, stack_dumps, stack_requests
from sleuth.runner import all_queues, run_worker
from sleuth.services import Services
from tests.observe.helpers import (
    BLOCK,
    FAIL,
    GATES,
    SLOW,
    TIMED,
    running_worker,
    worker_info,
)
from tests.patience import PATIENCE, wait_for


def test_registry_shows_the_running_job_and_stacks_show_its_handler(services: Services) -> None:
    engine, queue = services.engine, services.queue
    GATES["live-1"] = gate = threading.Event()
    job_id = queue.enqueue(SLOW, {"gate": "live-1"})
    with running_worker(engine, queue, "live:1") as worker:
        info = wait_for(
            lambda: (w := worker_info(engine, "live:1")) and w.current and w,
        )
        assert info.state == "live"
        assert (info.host, info.pid, info.version) == (
            socket.gethostname(),
            os.getpid(),
            __version__,
        )
        assert info.queues == worker.queues
        assert [(j.job_id, j.queue) for j in info.current] == [(job_id, SLOW)]
        assert info.current[0].since <= time.time()
        assert not info.loop_blocked

        report = collect_stacks(engine, ["live:1"], timeout=PATIENCE)
        assert report.missing == []
        dump = report.answers["live:1"]
        assert dump.startswith(f"=== worker live:1: pid {os.getpid()}")
        # The task's whole coroutine chain, down to the future it waits on.
        task = dump[dump.index(f"Task 'job-{job_id}'") :]
        assert "in slow_handler_at_the_gate" in task.split("\n\n")[0]
        assert "await asyncio.sleep(0.01)" in task
        assert "awaiting <Future pending" in task
        assert "Thread 'MainThread'" in dump
        with engine.connect() as conn:  # the command cleaned up after itself
            assert not conn.execute(sa.select(sa.func.count()).select_from(stack_requests)).scalar()
            assert not conn.execute(sa.select(sa.func.count()).select_from(stack_dumps)).scalar()

        gate.set()
        wait_for(lambda: (w := worker_info(engine, "live:1")) and not w.current)
    with engine.connect() as conn:
        (stopped,) = list_workers(conn)
        assert list_workers(conn, include_stopped=False) == []
    assert stopped.state == "stopped" and stopped.stopped_at is not None
    assert stopped.current == []


def test_metrics_count_every_job_and_order_the_percentiles(services: Services) -> None:
    engine, queue = services.engine, services.queue
    queue.enqueue_many(TIMED, [({"seconds": 0.01}, None) for _ in range(20)])
    queue.enqueue_many(TIMED, [({"seconds": 0.3}, None) for _ in range(2)])
    queue.enqueue_many(FAIL, [({"key": f"m{i}", "always": True}, None) for i in range(3)])
    with running_worker(engine, queue, "live:metrics") as worker:
        wait_for(worker.drained)

    with engine.connect() as conn:
        stages = {s.queue: s for s in merged_stages(conn)}
        assert conn.execute(sa.select(sa.func.count()).select_from(worker_metrics)).scalar() == 2
    timed, failed = stages[TIMED], stages[FAIL]
    assert (timed.count, timed.errors, timed.workers) == (22, 0, 1)
    assert timed.outcomes["acked"] == 22
    assert timed.max is not None and timed.max >= 0.3  # sleeps last at least that long
    assert timed.p50 is not None and timed.p90 is not None and timed.p99 is not None
    assert 0.01 <= timed.p50 <= timed.p90 <= timed.p99 <= timed.max
    assert timed.p99 == timed.max  # rank ⌈0.99·22⌉ = 22 is the slowest job
    assert (failed.count, failed.errors, failed.outcomes["dead"]) == (3, 3, 3)
    assert len(queue.dead_letters(FAIL)) == 3


def test_a_blocked_event_loop_is_reported_and_still_dumps_its_stack(
    services: Services,
) -> None:
    engine, queue = services.engine, services.queue
    GATES["live-blocked"] = gate = threading.Event()
    queue.enqueue(BLOCK, {"gate": "live-blocked"})
    with running_worker(engine, queue, "live:blocked"):
        try:
            info = wait_for(
                lambda: (w := worker_info(engine, "live:blocked")) and w.loop_blocked and w
            )
            assert info.loop_lag >= 1.0 and info.state == "live"
            report = collect_stacks(engine, ["live:blocked"], timeout=PATIENCE)
        finally:
            gate.set()
        dump = report.answers["live:blocked"]
        assert "its event loop has not run for" in dump
        stuck = dump[dump.index("Thread 'test-worker-live:blocked'") :].split("\n\n")[0]
        assert "runs the event loop" in stuck.splitlines()[0]
        assert "in loop_blocking_handler" in stuck
        assert "GATES[payload.gate].wait(PATIENCE)" in stuck
        wait_for(lambda: (w := worker_info(engine, "live:blocked")) and not w.loop_blocked)


def test_run_worker_registers_and_marks_the_worker_stopped(services: Services) -> None:
    """The runner used by `sleuth worker`, `serve` and `images crawl` wires the monitor in."""
    seen: list[str] = []

    def registered() -> bool:
        with services.engine.connect() as conn:
            live = [w for w in list_workers(conn) if w.state == "live"]
        seen.extend(w.consumer for w in live)
        return bool(live)

    asyncio.run(run_worker(services, until=registered, handle_signals=False))
    assert seen
    with services.engine.connect() as conn:
        (info,) = list_workers(conn)
    assert info.consumer == seen[0] and info.state == "stopped"
    assert info.queues == all_queues()  # every installed app's, and the cleanup
