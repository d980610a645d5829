"""A real worker with its monitor on its own thread and event loop, and job kinds to watch.

The handlers are module-level functions with distinctive names, so that tests can find them
in stack dumps."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from sleuth.jobs.base import QueueBackend
from sleuth.jobs.tasks import Task
from sleuth.jobs.worker import JobContext, JobKind, Worker
from sleuth.observe.registry import WorkerInfo, WorkerMonitor, list_workers
from tests.patience import PATIENCE, wait_for

SLOW, TIMED, FAIL, BLOCK = "test.slow", "test.timed", "test.fail", "test.block"
GATES: dict[str, threading.Event] = {}
FAILED_ONCE: set[str] = set()


@dataclass(frozen=True)
class Gate:
    gate: str


@dataclass(frozen=True)
class Seconds:
    seconds: float


@dataclass(frozen=True)
class Failing:
    key: str
    always: bool = False


async def slow_handler_at_the_gate(payload: Gate, ctx: JobContext) -> None:
    """Runs until the test opens the gate its payload names."""
    gate = GATES[payload.gate]
    while not gate.is_set():
        await asyncio.sleep(0.01)


async def timed_handler(payload: Seconds, ctx: JobContext) -> None:
    await asyncio.sleep(payload.seconds)


async def failing_handler(payload: Failing, ctx: JobContext) -> None:
    """Fails the first delivery of each key; with `always`, every one."""
    key = payload.key
    if payload.always or key not in FAILED_ONCE:
        FAILED_ONCE.add(key)
        raise ValueError(f"bad input {key}\nsecond line of the reason")


async def loop_blocking_handler(payload: Gate, ctx: JobContext) -> None:
    """The mistake stacks must diagnose: blocking the event loop, here until the test opens
    the gate its payload names (so the loop stays blocked however slow the machine is)."""
    GATES[payload.gate].wait(PATIENCE)


def watched_kinds() -> list[JobKind[Any]]:
    return [
        JobKind(Task(SLOW, Gate, lease=30.0), slow_handler_at_the_gate),
        JobKind(Task(TIMED, Seconds, lease=30.0), timed_handler),
        JobKind(Task(FAIL, Failing, max_attempts=1, lease=30.0), failing_handler),
        # a blocked loop renews no lease: it outlasts the gate
        JobKind(Task(BLOCK, Gate, lease=2 * PATIENCE), loop_blocking_handler),
    ]


def worker_info(engine: Engine, consumer: str) -> WorkerInfo | None:
    with engine.connect() as conn:
        found = [w for w in list_workers(conn) if w.consumer == consumer]
    return found[0] if found else None


@contextmanager
def running_worker(
    engine: Engine,
    backend: QueueBackend,
    consumer: str,
    kinds: Sequence[JobKind] | None = None,
    *,
    interval: float = 2.0,
    poll: float = 0.05,
) -> Iterator[Worker]:
    """Run a monitored worker (as `sleuth.runner.run_worker` does) until the block ends.

    It heartbeats every `interval` seconds; it counts as lost after `LOST_AFTER` intervals
    without one, so the interval is long enough that a stalled machine never makes a "live"
    worker look lost, and short enough that what a heartbeat shows arrives soon."""
    monitor = WorkerMonitor(engine, interval=interval, poll=poll, prune_after=3600.0)
    worker = Worker(
        backend,
        list(kinds or watched_kinds()),
        consumer=consumer,
        poll_interval=0.02,
        grace=5.0,
        handle_signals=False,
        on_event=monitor.hook(),
    )
    failure: list[BaseException] = []

    async def main() -> None:
        async with monitor.attached(worker):
            await worker.run()

    def target() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=target, name=f"test-worker-{consumer}")
    thread.start()
    try:
        wait_for(lambda: worker_info(engine, consumer) or failure)
        yield worker
    finally:
        worker.stop()
        thread.join(PATIENCE)
    assert not thread.is_alive(), "the worker did not stop"
    assert not failure, failure
