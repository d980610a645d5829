"""The worker runtime: runs job handlers from a `QueueBackend` on one asyncio loop.

I/O-bound handlers (fetching, API paging) run concurrently on the loop; CPU-bound steps go to a
process pool through `JobContext.run_cpu`. Backend calls run in a small thread pool so that a
writer waiting for SQLite's lock (or a slow Redis round trip) never stalls the loop. A handler
takes one job's typed payload (`JobKind`) or a batch of them (`BatchKind`); each job is acked
on success, retried with exponential backoff on failure, dead-lettered after its task's max
attempts or at once when its payload does not read; its lease is renewed while it runs.
SIGTERM, SIGINT and SIGHUP stop the worker cleanly: no new jobs, in-flight jobs get a grace
period, the rest are handed back at once.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import multiprocessing
import os
import random
import signal
import socket
import threading
import time
import traceback
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import threadpoolctl

from sleuth.jobs.base import JSON, Job, LeaseLost, QueueBackend
from sleuth.jobs.fanin import Entry
from sleuth.jobs.parent import exit_with_parent
from sleuth.jobs.payload import PayloadError
from sleuth.jobs.tasks import Task

log = logging.getLogger(__name__)

T = TypeVar("T")
P = TypeVar("P")
Handler = Callable[[P, "JobContext"], Awaitable[None]]
Outcome = BaseException | None  # of one job of a batch: None for done
BatchHandler = Callable[[list[P], "JobContext"], Awaitable[Sequence[Outcome] | None]]
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
# Batches of one kind that a worker runs (or fills) at once unless its task says otherwise:
# one running while the next fills. More would only hold more jobs' leases, so that a worker
# killed with kill -9 would delay (and count an attempt of) that many more jobs.
BATCHES_IN_FLIGHT = 2
_ERROR_CHARS = 4000  # a traceback's tail is enough to diagnose; keep dead-letter rows small


class Retry(Exception):
    """Raised by a handler to run its job again in `after` seconds (a host cooling down, a
    resource not ready yet). It is a deliberate postponement, not a failure: the delivery does
    not count towards the kind's max attempts."""

    def __init__(self, after: float, reason: str = "") -> None:
        if not math.isfinite(after) or after < 0:
            raise ValueError(f"Retry(after=...) must be a finite number of seconds >= 0: {after!r}")
        super().__init__(reason or f"retry in {after:g} s")
        self.after = after
        self.reason = reason or f"postponed by the handler for {after:g} s"


class _Kind(Generic[P]):
    """What every kind has: its task, and the task's settings a worker schedules by."""

    task: Task[P]
    cpu_modules: tuple[str, ...]

    @property
    def queue(self) -> str:
        return self.task.queue

    @property
    def lease(self) -> float:
        return self.task.lease

    @property
    def concurrency(self) -> int | None:
        return self.task.concurrency

    def _check(self, handler: object) -> None:
        if not isinstance(self.task, Task):
            raise ValueError(f"{type(self).__name__} needs a Task, not {self.task!r}")
        if not callable(handler):
            raise ValueError(f"{type(self).__name__} {self.task.queue!r}: handler must be async")


@dataclass(frozen=True)
class JobKind(_Kind[P]):
    """A task and its handler, which receives each job's typed payload (and the job itself as
    `ctx.job`). A handler fails by raising: the job is retried with backoff, or dead-lettered
    after the task's max attempts; `Retry` postpones it without counting an attempt."""

    task: Task[P]
    handler: Handler[P]
    # Modules the CPU pool needs for this kind's `ctx.run_cpu` calls that its own module does
    # not import (a kernel kept out of the worker's process to keep it small): the fork server
    # imports them once, and every pool process forked from it shares them.
    cpu_modules: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self._check(self.handler)


@dataclass(frozen=True)
class BatchKind(_Kind[P]):
    """A task whose handler takes up to `task.batch` jobs at once: the payloads in a list (the
    jobs in `ctx.jobs`, in the same order). It returns None when every job succeeded, or one
    outcome per job: None (done), `Retry` (postponed) or another exception (failed, retried
    with backoff): each job is acked or retried on its own, so one bad item never fails its
    batch-mates. Raising fails every job of the batch with that exception (e.g. the database
    is down). The worker waits at most `task.batch_wait` seconds to fill a batch, and runs at
    most `task.concurrency` batches at once (default `BATCHES_IN_FLIGHT`)."""

    task: Task[P]
    handler: BatchHandler[P]
    # As `JobKind.cpu_modules`.
    cpu_modules: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self._check(self.handler)
        if self.task.batch < 2:
            raise ValueError(f"BatchKind {self.task.queue!r}: its task needs batch >= 2")


Kind = JobKind[Any] | BatchKind[Any]


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Seconds before retrying after failed attempt number `attempt` (1-based): the step
    doubles from `base` up to `cap`, and half of it is random ("equal jitter"), so jobs that
    failed together come back spread out, yet never sooner than half a step."""
    step = min(cap, base * 2.0 ** min(attempt - 1, 64))
    return step / 2 + (rng or random).uniform(0.0, step / 2)


@dataclass(frozen=True)
class WorkerEvent:
    """What a worker just did with a job, for an observer (worker registry, progress).

    kind: "started", "acked", "retried" (failed, will run again), "postponed" (the handler
    raised Retry), "dead", "lease_lost" (the handler was cancelled: another worker may have
    the job) or "handed_back" (the worker stopped before the job finished).
    """

    kind: str
    job: Job
    consumer: str
    at: float
    error: str | None = None


def describe_error(exc: BaseException) -> str:
    """`Type: message`, then the traceback's tail, for retry and dead-letter records."""
    head = f"{type(exc).__name__}: {exc}"
    trace = "".join(traceback.format_exception(exc))
    return f"{head}\n{trace[-_ERROR_CHARS:]}"


class JobContext:
    """What a running handler may use besides its payload: its job (`jobs` for a batch), the
    CPU pool and the queue."""

    def __init__(self, worker: Worker, jobs: list[Job]) -> None:
        self._worker = worker
        self.jobs = jobs
        self.sent = False  # the handler queued jobs: the worker looks for them when it ends

    @property
    def job(self) -> Job:
        """The job of a one-job handler."""
        if len(self.jobs) != 1:
            raise RuntimeError(f"this handler runs {len(self.jobs)} jobs: use ctx.jobs")
        return self.jobs[0]

    @property
    def consumer(self) -> str:
        return self._worker.consumer

    @property
    def backend(self) -> QueueBackend:
        return self._worker.backend

    async def run_cpu(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` in the worker's process pool; `fn`, its arguments and its result
        must be picklable (a module-level function, plain data)."""
        return await self._worker.run_cpu(fn, *args)

    def start_cpu(self) -> None:
        """`Worker.start_cpu`: the pool will be needed soon, after some I/O."""
        self._worker.start_cpu()

    async def send(
        self,
        task: Task[P],
        payload: P,
        *,
        dedup_key: str | None = None,
        delay: float = 0.0,
        priority: int | None = None,
    ) -> str | None:
        """`QueueBackend.send`, off the event loop; this worker looks for the job as soon as
        the handler ends (not before: a job reserved at once would free its dedup key while
        the handler may still send it again)."""
        backend = self._worker.backend
        self.sent = True
        return await self._worker.call(
            backend.send, task, payload, dedup_key=dedup_key, delay=delay, priority=priority
        )

    async def send_many(self, task: Task[P], payloads: Sequence[tuple[P, str | None]]) -> int:
        """`QueueBackend.send_many`, off the event loop; looked for when the handler ends."""
        self.sent = True
        return await self._worker.call(self._worker.backend.send_many, task, payloads)

    async def join_many(
        self, entries: Sequence[Entry], parts: Sequence[str]
    ) -> list[dict[str, JSON] | None]:
        """`FanIn.join_many` on the queue's fan-in, off the event loop."""
        return await self._worker.call(self._worker.backend.fanin.join_many, entries, parts)

    async def forget_joins(self, keys: Sequence[str]) -> None:
        """`FanIn.forget_many` on the queue's fan-in, off the event loop."""
        await self._worker.call(self._worker.backend.fanin.forget_many, keys)


@dataclass(eq=False)
class _Running:
    """One reserved job: waiting for its batch to fill (no `task` yet), or being run."""

    job: Job
    kind: Kind
    renew_at: float  # monotonic time of the next lease renewal
    task: asyncio.Task[None] | None = None
    finished: bool = False  # the handler is over; only its outcome is being recorded
    lease_lost: bool = False
    stopped: bool = False  # cancelled at the end of the stop grace period


@dataclass(eq=False)
class _Buffer:
    """Reserved jobs of a batched kind that wait, at most the task's batch_wait, for more."""

    jobs: list[_Running] = field(default_factory=list)
    since: float = 0.0  # monotonic time its first job came


class Worker:
    """Reserves jobs of `kinds` from `backend` and runs them, at most `concurrency` handler
    calls at once (a batch is one call).

    `processes`: size of the CPU pool for `run_cpu` (0: one per core; started on first use).
    `poll_interval`: how long to sleep when no job is ready. `grace`: seconds in-flight jobs
    get to finish after a stop. `on_event`: called on the loop with each `WorkerEvent`; keep it
    quick. `current` maps the id of each running job to (queue, start epoch time); another
    thread should read a copy (`dict(worker.current)`).
    """

    def __init__(
        self,
        backend: QueueBackend,
        kinds: Sequence[Kind],
        *,
        consumer: str | None = None,
        concurrency: int = 64,
        processes: int = 0,
        poll_interval: float = 0.2,
        grace: float = 10.0,
        on_event: Callable[[WorkerEvent], None] | None = None,
        handle_signals: bool = True,
        backend_threads: int = 4,
    ) -> None:
        if not kinds:
            raise ValueError("a Worker needs at least one JobKind")
        queues = [k.queue for k in kinds]
        duplicated = sorted({q for q in queues if queues.count(q) > 1})
        if duplicated:
            raise ValueError(f"more than one JobKind for queue(s) {duplicated}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, not {concurrency!r}")
        if processes < 0:
            raise ValueError(f"processes must be >= 0 (0: one per core), not {processes!r}")
        if not poll_interval > 0:
            raise ValueError(f"poll_interval must be > 0, not {poll_interval!r}")
        if not grace >= 0:
            raise ValueError(f"grace must be >= 0, not {grace!r}")
        self.backend = backend
        self.kinds = {k.queue: k for k in kinds}
        self.consumer = consumer or f"{socket.gethostname()}:{os.getpid()}"
        self.concurrency = concurrency
        self.processes = processes or os.cpu_count() or 1
        self.poll_interval = poll_interval
        self.grace = grace
        self.on_event = on_event
        self.handle_signals = handle_signals
        self.current: dict[str, tuple[str, float]] = {}
        self._backend_threads = backend_threads
        self._running: dict[str, _Running] = {}
        self._per_queue: Counter[str] = Counter()  # handler calls running, per queue
        self._buffers: dict[str, _Buffer] = {}
        self._acks: list[tuple[Job, asyncio.Future[None]]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._io: ThreadPoolExecutor | None = None
        self._cpu: ProcessPoolExecutor | None = None
        self._stop_requested = False
        self._stop = asyncio.Event()
        self._hurry = asyncio.Event()
        self._slot_freed = asyncio.Event()
        self._work_added = asyncio.Event()
        self._ended = 0  # handler calls ended, for `until` to be asked after each
        self._ack_wakeup = asyncio.Event()
        self._round = 0

    @property
    def queues(self) -> list[str]:
        return list(self.kinds)

    def drained(self) -> bool:
        """True when no job of this worker's queues is left (ready, delayed or in flight);
        `run(until=worker.drained)` runs a worker until a crawl is done."""
        return self.backend.pending(self.queues) == 0

    # -- lifecycle -----------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop reserving and let in-flight jobs finish within the grace period; a second call
        hands them back at once. Safe to call from any thread or a signal handler."""
        self._stop_requested = True  # seen by a run() that is just starting, too
        loop = self._loop
        if loop is None:
            return
        try:
            same_loop = asyncio.get_running_loop() is loop
        except RuntimeError:
            same_loop = False
        if same_loop:
            self._on_stop()
        else:
            loop.call_soon_threadsafe(self._on_stop)

    def _on_stop(self) -> None:
        if self._stop.is_set():
            self._hurry.set()
        self._stop.set()

    def run_sync(self, until: Callable[[], bool] | None = None) -> None:
        """`run` on a new event loop, for a process or thread that has none."""
        asyncio.run(self.run(until))

    async def run(self, until: Callable[[], bool] | None = None) -> None:
        """Work until `stop()`, a stop signal, or `until()` returns true (checked in a thread
        at most every poll interval); then finish or hand back in-flight jobs and return."""
        if self._loop is not None:
            raise RuntimeError("a Worker runs once; make a new one")
        loop = self._loop = asyncio.get_running_loop()
        self._io = ThreadPoolExecutor(self._backend_threads, thread_name_prefix="sleuth-queue")
        if self._stop_requested:
            self._stop.set()
        installed = self._install_signals(loop)
        helpers = [
            asyncio.create_task(self._renew_leases(), name="lease-renewer"),
            asyncio.create_task(self._flush_acks(), name="ack-flusher"),
        ]
        try:
            await self._reserve_loop(until)
        finally:
            try:
                await self._drain()
            finally:
                for helper in helpers:
                    helper.cancel()
                await asyncio.gather(*helpers, return_exceptions=True)
                for sig, handler in installed.items():
                    loop.remove_signal_handler(sig)
                    if handler is not None:  # None: set outside Python, cannot be restored
                        signal.signal(sig, handler)
                self._io.shutdown(wait=False)
                if self._cpu is not None:
                    await loop.run_in_executor(
                        None, functools.partial(self._cpu.shutdown, cancel_futures=True)
                    )

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> dict[signal.Signals, Any]:
        """Route stop signals to `stop`; returns the handlers to restore afterwards."""
        if not self.handle_signals or threading.current_thread() is not threading.main_thread():
            return {}
        previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, self.stop)
        return previous

    # -- helpers for handlers -------------------------------------------------------------------

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking backend call in the worker's backend threads."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._io, functools.partial(fn, *args, **kwargs))

    async def run_cpu(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._cpu_pool(fn), functools.partial(fn, *args))

    def start_cpu(self) -> None:
        """Start a pool process now, without waiting for it, for a handler that needs the pool
        after some I/O: the process starts meanwhile instead of on the first call (in a
        backend thread: the first start of the fork server takes a while)."""
        pool = self._cpu_pool(None)
        asyncio.get_running_loop().run_in_executor(self._io, pool.submit, int)

    def _cpu_pool(self, fn: Callable[..., Any] | None) -> ProcessPoolExecutor:
        if self._cpu is None:
            # forkserver: children never inherit this process's threads or open connections.
            context = multiprocessing.get_context("forkserver")
            # The fork server imports the handlers' modules once, so that each pool process,
            # forked from it, starts with them loaded rather than importing them anew (the
            # finder's: 1.2 s on 2 busy cores, paid by every worker's first CPU call).
            # Only the first fork server of this process takes the list; later ones reuse it.
            context.set_forkserver_preload(self._preload(fn))
            self._cpu = ProcessPoolExecutor(
                self.processes,
                mp_context=context,
                initializer=_cpu_child_init,
                initargs=(os.getpid(),),
            )
        return self._cpu

    def _preload(self, fn: Callable[..., Any] | None) -> list[str]:
        """The modules a pool process needs: this one, `fn`'s, the handlers' and the ones the
        kinds name."""
        handlers = [getattr(k.handler, "__module__", None) for k in self.kinds.values()]
        named = [m for k in self.kinds.values() for m in k.cpu_modules]
        names = [__name__, getattr(fn, "__module__", None), *handlers, *named]
        return sorted({n for n in names if n and n != "__main__"})

    def _emit(self, kind: str, job: Job, error: str | None = None) -> None:
        if self.on_event is None:
            return
        try:
            self.on_event(WorkerEvent(kind, job, self.consumer, time.time(), error))
        except Exception:
            log.exception("on_event hook failed for %s of job %s", kind, job.id)

    # -- reserving ------------------------------------------------------------------------------

    def work_added(self) -> None:
        """A handler that queued jobs ended: reserve now rather than after the poll interval
        (a request's next step starts as its last one ends)."""
        self._work_added.set()

    async def _reserve_loop(self, until: Callable[[], bool] | None) -> None:
        next_check = 0.0
        failures = 0
        checked = self._ended
        # With `until`, a handler call that ends wakes the loop: it may be the one awaited.
        wake = (
            (self._stop, self._work_added)
            if until is None
            else (self._stop, self._work_added, self._slot_freed)
        )
        while not (self._stop.is_set() or self._stop_requested):
            if until is not None and (time.monotonic() >= next_check or self._ended != checked):
                next_check = time.monotonic() + self.poll_interval
                checked = self._ended
                if await self.call(until):
                    return
            try:
                wanted, full = await self._reserve_round()
            except Exception:
                failures += 1
                log.exception("reserving jobs failed (%d in a row); trying again", failures)
                await self._wait(self.poll_interval * 2 ** min(failures, 5), self._stop)
                continue
            failures = 0
            self._dispatch_buffers()
            pause = min(self.poll_interval, self._next_buffer_due())
            if full:
                await asyncio.sleep(0)  # let the new jobs start before taking more
            elif wanted == 0:
                await self._wait(pause, self._stop, self._slot_freed, self._work_added)
            else:
                await self._wait(pause, *wake)
            self._dispatch_buffers()

    def _units(self, queue: str) -> int:
        """Handler calls of `queue` running or being filled (a batch is one call)."""
        return self._per_queue[queue] + (1 if self._buffered(queue) else 0)

    def _buffered(self, queue: str) -> int:
        """Jobs of `queue` reserved and waiting for their batch to fill."""
        buffered = self._buffers.get(queue)
        return len(buffered.jobs) if buffered is not None else 0

    async def _reserve_round(self) -> tuple[int, bool]:
        """Reserve for every kind with a free slot; returns (jobs asked for, whether some
        request came back full, i.e. more jobs are probably ready). A slot is one handler
        call: one job, or one batch of a batched kind."""
        self._slot_freed.clear()
        self._work_added.clear()
        free = self.concurrency - sum(self._units(q) for q in self.kinds)
        # Kinds with their own limit or batches are asked alone; the others together, per lease.
        requests: list[tuple[list[str], int, float, int]] = []
        shared: dict[float, list[str]] = {}
        for kind in self.kinds.values():
            size = kind.task.batch if isinstance(kind, BatchKind) else 1
            if size == 1 and kind.concurrency is None:
                shared.setdefault(kind.lease, []).append(kind.queue)
                continue
            limit = kind.concurrency or (BATCHES_IN_FLIGHT if size > 1 else self.concurrency)
            room = limit - self._units(kind.queue)
            buffered = self._buffered(kind.queue)
            fill = size - buffered if buffered else 0
            if room > 0 or fill > 0:
                requests.append(([kind.queue], max(0, room) * size + fill, kind.lease, size))
        requests += [(queues, free, lease, 1) for lease, queues in shared.items()]
        self._round += 1
        if requests:  # rotate so that no request always gets the free slots first
            shift = self._round % len(requests)
            requests = requests[shift:] + requests[:shift]
        wanted, full = 0, False
        for queues, room, lease, size in requests:
            buffered = self._buffered(queues[0]) if size > 1 else 0
            fill = size - buffered if buffered else 0
            n = min(room, max(0, free) * size + fill)
            if n <= 0:
                continue
            wanted += n
            jobs = await self.call(self.backend.reserve, queues, n, lease, self.consumer)
            full = full or len(jobs) == n
            if size == 1:
                free -= len(jobs)
                for job in jobs:
                    self._start([self._track(job)])
            else:
                free -= math.ceil(max(0, len(jobs) - fill) / size)
                for job in jobs:
                    self._buffer(self._track(job))
        return wanted, full

    def _track(self, job: Job) -> _Running:
        """Record a reserved job as this worker's, taking over from a stale delivery of it."""
        kind = self.kinds[job.queue]
        stale = self._running.get(job.id)
        if stale is not None and not stale.finished:
            # Its lease ran out before a renewal got through, and it came back to us.
            self._lose(stale, "the job was delivered again")
        running = _Running(job, kind, renew_at=time.monotonic() + kind.lease / 3)
        self._running[job.id] = running
        self.current[job.id] = (job.queue, time.time())
        return running

    def _lose(self, running: _Running, why: str) -> None:
        """The delivery is no longer ours: forget it (a batch goes on with its other jobs)."""
        running.lease_lost = True
        self._emit("lease_lost", running.job, why)
        buffered = self._buffers.get(running.job.queue)
        if running.task is None and buffered is not None and running in buffered.jobs:
            buffered.jobs.remove(running)
            self._forget(running)
        elif running.task is not None and not isinstance(running.kind, BatchKind):
            running.task.cancel()

    def _forget(self, running: _Running) -> None:
        if self._running.get(running.job.id) is running:
            del self._running[running.job.id]
            self.current.pop(running.job.id, None)

    def _buffer(self, running: _Running) -> None:
        """Hold a batched kind's job until its batch fills. A job delivered before (its
        worker died, or it failed) runs alone: if it is what kills workers, it takes no
        batch mates with it again."""
        if running.job.attempts > 1:
            self._start([running])
            return
        buffered = self._buffers.setdefault(running.job.queue, _Buffer())
        if not buffered.jobs:
            buffered.since = time.monotonic()
        buffered.jobs.append(running)

    def _dispatch_buffers(self) -> None:
        """Start every full batch, and the partial ones that waited their batch_wait."""
        now = time.monotonic()
        for queue, buffered in self._buffers.items():
            task = self.kinds[queue].task
            while len(buffered.jobs) >= task.batch:
                batch, buffered.jobs = buffered.jobs[: task.batch], buffered.jobs[task.batch :]
                buffered.since = now
                self._start(batch)
            if buffered.jobs and now - buffered.since >= task.batch_wait:
                batch, buffered.jobs = buffered.jobs, []
                self._start(batch)

    def _next_buffer_due(self) -> float:
        """Seconds until the oldest partial batch has waited long enough (inf: none waits)."""
        now = time.monotonic()
        due = [
            b.since + self.kinds[q].task.batch_wait - now
            for q, b in self._buffers.items()
            if b.jobs
        ]
        return max(0.0, min(due)) if due else math.inf

    def _start(self, members: list[_Running]) -> None:
        """Run one handler call for `members` (one job, or one batch of a batched kind)."""
        kind = members[0].kind
        self._per_queue[kind.queue] += 1
        name = f"job-{members[0].job.id}" + (f"+{len(members) - 1}" if len(members) > 1 else "")
        task = asyncio.create_task(self._execute(kind, members), name=name)
        for running in members:
            running.task = task

    # -- running jobs ---------------------------------------------------------------------------

    async def _execute(self, kind: Kind, members: list[_Running]) -> None:
        """Run the handler on the members whose payloads read, then settle each on its own."""
        task = kind.task
        try:
            ready: list[tuple[_Running, Any]] = []
            for running in members:
                job = running.job
                if job.attempts > task.delivery_cap:
                    # Only deliveries that never finished (the worker died) get this far.
                    running.finished = True
                    reason = (
                        f"delivered {job.attempts} times without finishing "
                        "(its workers died or lost the lease)"
                    )
                    await self._settle("dead", job, reason, self.backend.dead_letter, job, reason)
                    continue
                try:
                    ready.append((running, task.decode(job.payload)))
                except PayloadError as exc:
                    # It will not read better next time: keep it, with why, for a person.
                    running.finished = True
                    reason = f"malformed payload for task {task.queue!r}: {exc}"
                    await self._settle("dead", job, reason, self.backend.dead_letter, job, reason)
            if not ready:
                return
            for running, _ in ready:
                self._emit("started", running.job)
            outcomes = await self._call_handler(kind, ready)
            for running, _ in ready:
                running.finished = True
            await asyncio.gather(
                *(
                    self._settle_outcome(running.job, task, outcome)
                    for (running, _), outcome in zip(ready, outcomes, strict=True)
                    if not running.lease_lost
                )
            )
        except asyncio.CancelledError:
            if all(r.lease_lost or r.stopped or r.finished for r in members):
                return  # cancelled by this worker; the jobs are (or will be) elsewhere
            raise
        finally:
            self._per_queue[kind.queue] -= 1
            for running in members:
                self._forget(running)
            self._ended += 1
            self._slot_freed.set()

    async def _call_handler(self, kind: Kind, ready: list[tuple[_Running, Any]]) -> list[Outcome]:
        """The handler's outcome for each ready job (its exception fails them all)."""
        ctx = JobContext(self, [running.job for running, _ in ready])
        try:
            if isinstance(kind, BatchKind):
                outcomes = await kind.handler([payload for _, payload in ready], ctx)
            else:
                await kind.handler(ready[0][1], ctx)
                outcomes = None
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return [exc] * len(ready)
        finally:
            if ctx.sent:
                self.work_added()
        if outcomes is None:
            return [None] * len(ready)
        if len(outcomes) != len(ready):
            error = RuntimeError(
                f"the batch handler of {kind.queue!r} returned {len(outcomes)} outcomes"
                f" for {len(ready)} jobs"
            )
            return [error] * len(ready)
        return list(outcomes)

    async def _settle_outcome(self, job: Job, task: Task[Any], outcome: Outcome) -> None:
        """Ack a done job, postpone one that raised Retry, retry or dead-letter a failed one."""
        if outcome is None:
            await self._settle("acked", job, None, self._ack, job)
        elif isinstance(outcome, Retry):
            at = time.time() + outcome.after
            reason = outcome.reason
            retry = self.backend.retry
            await self._settle(
                "postponed", job, reason, retry, job, at, reason, count_attempt=False
            )
        else:
            error = describe_error(outcome)
            if job.attempts >= task.max_attempts:
                reason = f"failed {job.attempts} times; last error: {error}"
                await self._settle("dead", job, error, self.backend.dead_letter, job, reason)
            else:
                delay = backoff_delay(job.attempts, task.backoff_base, task.backoff_cap)
                at = time.time() + delay
                await self._settle("retried", job, error, self.backend.retry, job, at, error)

    async def _settle(
        self, event: str, job: Job, error: str | None, fn: Callable[..., Any], *args: Any, **kw: Any
    ) -> None:
        """Record a job's outcome; if that fails, its lease runs out and it runs again."""
        try:
            if asyncio.iscoroutinefunction(fn):
                await fn(*args, **kw)
            else:
                await self.call(fn, *args, **kw)
        except Exception:
            log.exception("could not record %s for job %s; it will run again", event, job.id)
        else:
            self._emit(event, job, error)

    async def _ack(self, job: Job) -> None:
        """Queue the ack for the flusher, which acks everything finished meanwhile in one
        backend call (one transaction instead of one per job)."""
        done = asyncio.get_running_loop().create_future()
        self._acks.append((job, done))
        self._ack_wakeup.set()
        await done

    async def _flush_acks(self) -> None:
        while True:
            await self._ack_wakeup.wait()
            self._ack_wakeup.clear()
            batch, self._acks = self._acks, []
            if not batch:
                continue
            try:
                await self.call(self.backend.ack_many, [job for job, _ in batch])
            except Exception as exc:
                for _, done in batch:
                    done.set_exception(exc)
            else:
                for _, done in batch:
                    done.set_result(None)

    async def _renew_leases(self) -> None:
        tick = max(0.02, min(k.lease for k in self.kinds.values()) / 6)
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            due = [r for r in self._running.values() if not r.finished and now >= r.renew_at]
            if due:
                await asyncio.gather(*(self._renew(r) for r in due))

    async def _renew(self, running: _Running) -> None:
        try:
            job = await self.call(self.backend.extend_lease, running.job, running.kind.lease)
        except LeaseLost as exc:
            if not running.finished:
                self._lose(running, str(exc))
        except Exception:
            log.exception("renewing the lease of job %s failed; trying again", running.job.id)
        else:
            running.job = job
            running.renew_at = time.monotonic() + running.kind.lease / 3

    # -- stopping -------------------------------------------------------------------------------

    async def _drain(self) -> None:
        """Give in-flight jobs the grace period, then cancel and hand back the rest."""
        tasks = {r.task for r in self._running.values() if r.task is not None}
        if tasks:
            everything = asyncio.ensure_future(asyncio.wait(tasks))
            hurry = asyncio.ensure_future(self._hurry.wait())
            await asyncio.wait(
                {everything, hurry}, timeout=self.grace, return_when=asyncio.FIRST_COMPLETED
            )
            everything.cancel()
            hurry.cancel()
        late = [r for r in self._running.values() if not r.finished]
        for running in late:
            running.stopped = True
            if running.task is not None:
                running.task.cancel()
        rest = {r.task for r in self._running.values() if r.task is not None}
        if rest:
            await asyncio.wait(rest)
        await asyncio.gather(*(self._hand_back(r.job) for r in late if not r.lease_lost))

    async def _hand_back(self, job: Job) -> None:
        reason = "handed back: the worker stopped before the job finished"
        retry = self.backend.retry
        await self._settle(
            "handed_back", job, reason, retry, job, time.time(), reason, count_attempt=False
        )

    async def _wait(self, timeout: float, *events: asyncio.Event) -> None:
        waiters = [asyncio.ensure_future(e.wait()) for e in events]
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()


def _cpu_child_init(worker_pid: int) -> None:
    """Each pool process is one core's worth of work: a multi-threaded BLAS inside it would
    only fight its siblings for the cores (measured: pHash's small matrix products 2 ms with one
    BLAS thread, 10 ms with the default thread count on 2 busy cores). It ends with its worker
    (its parent is the fork server, which outlives a killed worker)."""
    threadpoolctl.threadpool_limits(1)
    exit_with_parent(worker_pid)
