"""Worker processes: the one way sleuth starts them (`sleuth serve`, the tests, the benchmarks).

Each worker runs in a fresh interpreter (spawn: handlers, connections and pools are made in the
child, never inherited). It catches stop signals from its first line, so a stop sent while it is
still connecting is honoured instead of killing it, and it stops the same way when its parent
dies without a word (`exit_with_parent`): nothing it held stays leased to a dead consumer for
longer than its stop takes. Liveness is read from each process's sentinel pipe, not from
`waitpid`, so it stays right under a parent (a gunicorn arbiter) that reaps every child itself.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing.process
import os
import pickle
import signal
import time
from collections.abc import Callable, Sequence
from multiprocessing import get_context
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

from sleuth.jobs.factory import open_queue
from sleuth.jobs.parent import exit_with_parent
from sleuth.jobs.worker import STOP_SIGNALS, Kind, Worker

log = logging.getLogger(__name__)


# What a worker process runs, `main(*args, started=...)`: build a `Worker`, hand it to
# `started` before it runs (so that stop signals reach it), run it to its end. A module-level
# function.
WorkerMain = Callable[..., None]


def _child(main: WorkerMain, args: Sequence[Any], parent: int, ready: Connection) -> None:
    early: list[int] = []
    for sig in STOP_SIGNALS:
        signal.signal(sig, lambda signum, _frame: early.append(signum))
    exit_with_parent(parent)
    ready.send(True)
    ready.close()
    logging.basicConfig(format="%(asctime)s %(processName)s %(name)s %(levelname)s %(message)s")

    def started(worker: Worker) -> None:
        for sig in STOP_SIGNALS:
            signal.signal(sig, lambda _signum, _frame: worker.stop())
        if early:
            worker.stop()

    main(*args, started=started)


def queue_worker_main(
    queue_url: str,
    kinds_factory: Callable[[], Sequence[Kind]],
    options: dict[str, Any],
    *,
    started: Callable[[Worker], None],
) -> None:
    """A `WorkerMain` for the kinds `kinds_factory()` builds on the queue at `queue_url`
    (`options`: `Worker` keyword arguments), for tests and benchmarks of the runtime alone."""
    backend = open_queue(queue_url)
    try:
        worker = Worker(backend, kinds_factory(), **options)
        started(worker)
        worker.run_sync()
    finally:
        backend.close()


class WorkerProcesses:
    """Worker processes started by `spawn_workers`."""

    def __init__(self, processes: list[BaseProcess], grace: float) -> None:
        self.processes = processes
        self.grace = grace

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes if p.pid is not None]

    def _running(self) -> list[BaseProcess]:
        ended = set(wait([p.sentinel for p in self.processes], timeout=0))
        return [p for p in self.processes if p.sentinel not in ended]

    def alive(self) -> int:
        return len(self._running())

    def join(self, timeout: float | None = None) -> bool:
        """Wait up to `timeout` seconds (None: for ever) for every process to end; True if
        they all did."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while running := self._running():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            wait([p.sentinel for p in running], timeout=left)
        return True

    def signal(self, signum: int) -> None:
        for p in self._running():
            if p.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signum)

    def stop(self, timeout: float | None = None) -> list[int | None]:
        """SIGTERM every worker (each finishes or hands back its jobs), wait up to `timeout`
        (default: the grace period plus 10 s), then SIGKILL what is left; returns exit codes
        (None for a process that another parent reaped)."""
        self.signal(signal.SIGTERM)
        if not self.join(self.grace + 10.0 if timeout is None else timeout):
            log.warning("worker processes %s did not stop in time; killing them", self.pids)
            self.signal(signal.SIGKILL)
            self.join()
        codes = []
        for p in self.processes:
            p.join()  # ended (its sentinel says so); None when another waiter reaped it
            codes.append(p.exitcode)
        return codes

    def __enter__(self) -> WorkerProcesses:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def forget_inherited_workers() -> None:
    """In a process forked (not spawned) from a parent of workers: those are not its children,
    so multiprocessing must not try to join them when it exits (it would fail an assertion)."""
    multiprocessing.process._children.clear()  # type: ignore[attr-defined]


def spawn_workers(
    n: int,
    main: WorkerMain,
    args: Sequence[Any] = (),
    *,
    grace: float = 10.0,
    name: str = "worker",
) -> WorkerProcesses:
    """Start `n` processes running `main(*args, started=...)`; returns once each has its stop
    handlers (or has died). `main` and `args` must pickle (a module-level function, plain
    data): they travel by name into fresh interpreters. `grace` is what `stop()` waits for
    beyond the 10 s margin; pass the workers' own grace period."""
    if n < 1:
        raise ValueError(f"n must be >= 1, not {n!r}")
    try:
        pickle.dumps((main, tuple(args)))
    except Exception as exc:
        raise ValueError(
            f"a worker's main and arguments must pickle (a module-level function, plain data): "
            f"{exc}"
        ) from None
    context = get_context("spawn")
    started: list[BaseProcess] = []
    readiness: list[Connection] = []
    for i in range(n):
        ours, theirs = context.Pipe(duplex=False)
        process = context.Process(
            target=_child,
            args=(main, tuple(args), os.getpid(), theirs),
            name=f"sleuth-{name}-{i}",
        )
        process.start()
        theirs.close()
        started.append(process)
        readiness.append(ours)
    for ready in readiness:
        # Until a child has its handlers, SIGTERM would kill it outright. EOF here means it
        # died first, which `stop()` reports.
        with contextlib.suppress(EOFError):
            ready.recv()
        ready.close()
    return WorkerProcesses(started, grace)
