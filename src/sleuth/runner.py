"""Running workers: every installed app's job kinds on one asyncio loop with a CPU pool.

`sleuth worker`, `sleuth serve` and `sleuth images crawl` all run workers through here."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from sleuth.cleanup import CLEANUP_QUEUE, Cleanup, cleanup_schedule
from sleuth.config import Settings
from sleuth.jobs.redis import RedisQueue
from sleuth.jobs.schedule import Periodic, Scheduler
from sleuth.jobs.worker import Kind, Worker, WorkerEvent
from sleuth.net.clocks import RedisHostClock, SqlHostClock
from sleuth.net.fetcher import Fetcher
from sleuth.net.politeness import Politeness
from sleuth.observe.registry import WorkerMonitor
from sleuth.services import Services


def job_kinds(services: Services, fetcher: Fetcher) -> list[Kind]:
    """The job kinds of every installed app, and the engine's cleanup."""
    from sleuth.apps.images.pipeline import ImagesPipeline

    return [*ImagesPipeline(services, fetcher).kinds(), Cleanup(services).kind()]


def all_queues() -> list[str]:
    from sleuth.apps.images.pipeline import QUEUES

    return [*QUEUES, CLEANUP_QUEUE]


def periodic_jobs() -> list[Periodic]:
    """The periodic jobs the scheduler of every worker declares."""
    from sleuth.apps.images.pipeline import INFLIGHT_EXT

    return [cleanup_schedule([INFLIGHT_EXT])]


def shared_politeness(services: Services) -> Politeness:
    """Per-host politeness whose start gaps hold across every worker process: the clock lives
    in the queue's Redis when the queue is there, else in the database (several worker
    processes may share one SQLite install). Without a per-host delay nothing is ever
    claimed, so the in-memory clock is kept and no request costs a round trip."""
    net = services.settings.net
    clock = None
    if net.per_host_delay > 0:
        queue = services.queue
        if isinstance(queue, RedisQueue):
            clock = RedisHostClock(queue.redis, queue.target.prefix)
        else:
            clock = SqlHostClock(services.engine)
    return Politeness(net.per_host_concurrency, net.per_host_delay, clock)


async def run_worker(
    services: Services,
    *,
    queues: Sequence[str] | None = None,
    until: Callable[[], bool] | None = None,
    on_event: Callable[[WorkerEvent], None] | None = None,
    handle_signals: bool = True,
    started: Callable[[Worker], None] | None = None,
) -> None:
    """Serve `queues` (default: all) until stopped, a stop signal, or `until()` is true.
    The worker is registered in the worker registry, with its timings, while it runs, and
    takes its turn at scheduling the periodic jobs."""
    settings = services.settings
    async with Fetcher(settings.net, politeness=shared_politeness(services)) as fetcher:
        kinds = job_kinds(services, fetcher)
        if queues is not None:
            unknown = sorted(set(queues) - {k.queue for k in kinds})
            if unknown:
                raise ValueError(f"unknown queue(s) {unknown}; known: {all_queues()}")
            kinds = [k for k in kinds if k.queue in queues]
        monitor = WorkerMonitor(services.engine)
        worker = Worker(
            services.queue,
            kinds,
            concurrency=settings.worker.concurrency,
            processes=settings.worker.processes,
            on_event=monitor.hook(on_event),
            handle_signals=handle_signals,
        )
        if started is not None:
            started(worker)
        scheduler = Scheduler(services.engine, services.queue, worker.consumer, periodic_jobs())
        async with monitor.attached(worker), scheduler.running():
            await worker.run(until)


def worker_process_main(settings: Settings, queues: Sequence[str] | None = None) -> None:
    """Entry point of a worker process started by `sleuth serve`."""
    services = Services(settings)
    try:
        asyncio.run(run_worker(services, queues=queues))
    finally:
        services.close()
