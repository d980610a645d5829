"""Running workers: every installed app's job kinds on one asyncio loop with a CPU pool.

`sleuth worker`, `sleuth serve` and `sleuth images crawl` all run workers through here."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from sleuth.config import Settings
from sleuth.jobs.worker import JobKind, Worker, WorkerEvent
from sleuth.net.fetcher import Fetcher
from sleuth.observe.registry import WorkerMonitor
from sleuth.services import Services


def job_kinds(services: Services, fetcher: Fetcher) -> list[JobKind]:
    """The job kinds of every installed app."""
    from sleuth.apps.images.pipeline import ImagesPipeline

    return ImagesPipeline(services, fetcher).kinds()


def all_queues() -> list[str]:
    from sleuth.apps.images.pipeline import QUEUES

    return list(QUEUES)


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
    The worker is registered in the worker registry, with its timings, while it runs."""
    settings = services.settings
    async with Fetcher(settings.net) as fetcher:
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
        async with monitor.attached(worker):
            await worker.run(until)


def worker_process_main(settings: Settings, queues: Sequence[str] | None = None) -> None:
    """Entry point of a worker process started by `sleuth serve`."""
    services = Services(settings)
    try:
        asyncio.run(run_worker(services, queues=queues))
    finally:
        services.close()
