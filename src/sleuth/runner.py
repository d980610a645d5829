"""Running workers: every installed app's job kinds on one asyncio loop with a CPU pool.

`sleuth worker` and `sleuth serve` run every installed app's queues; an app's own command
(`sleuth images crawl`) runs that app's queues only (`app_queues`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from sleuth.app import AppError, get_app, installed_apps
from sleuth.cleanup import CLEANUP_QUEUE, Cleanup, cleanup_schedule
from sleuth.config import Settings
from sleuth.jobs.redis import RedisQueue
from sleuth.jobs.schedule import Periodic, Scheduler
from sleuth.jobs.worker import Kind, Worker, WorkerEvent
from sleuth.net.budgets import BudgetStore, RedisBudgets, SqlBudgets
from sleuth.net.clocks import RedisHostClock, SqlHostClock
from sleuth.net.fetcher import Fetcher
from sleuth.net.politeness import Politeness
from sleuth.observe.registry import WorkerMonitor
from sleuth.services import Services


def job_kinds(
    services: Services, fetcher: Fetcher, queues: Sequence[str] | None = None
) -> list[Kind]:
    """The job kinds serving `queues` (default: all): those of the installed apps that
    declare one of them, and the engine's cleanup. Each app's kinds must serve exactly the
    queues it declares, so choosing queues by declaration is exact."""
    chosen = set(all_queues() if queues is None else queues)
    unknown = sorted(chosen - set(all_queues()))
    if unknown:
        raise ValueError(f"unknown queue(s) {unknown}; known: {all_queues()}")
    kinds: list[Kind] = []
    for app in installed_apps():
        if app.job_kinds is None or chosen.isdisjoint(app.queues):
            continue
        built = list(app.job_kinds(services, fetcher))
        served = sorted(k.queue for k in built)
        if served != sorted(app.queues):
            raise AppError(
                f"app {app.name!r} declares queues {sorted(app.queues)} but its job kinds"
                f" serve {served}"
            )
        kinds.extend(built)
    kinds.append(Cleanup(services).kind())
    return [k for k in kinds if k.queue in chosen]


def all_queues() -> list[str]:
    """Every installed app's queues, and the engine's cleanup queue."""
    return [*(q for app in installed_apps() for q in app.queues), CLEANUP_QUEUE]


def app_queues(name: str) -> list[str]:
    """The queues an app's own commands run: its own, and the engine's cleanup."""
    return [*get_app(name).queues, CLEANUP_QUEUE]


def periodic_jobs(settings: Settings) -> list[Periodic]:
    """The periodic jobs the scheduler of every worker declares: each installed app's, and
    the cleanup of every app's in-flight blobs."""
    apps = installed_apps()
    jobs = [job for app in apps if app.periodic is not None for job in app.periodic(settings)]
    return [*jobs, cleanup_schedule([ext for app in apps for ext in app.inflight_blobs])]


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


def shared_budgets(services: Services) -> BudgetStore:
    """Rate-limit budgets every worker process shares, where the host clocks would be: in the
    queue's Redis when the queue is there, else in the database."""
    queue = services.queue
    if isinstance(queue, RedisQueue):
        return RedisBudgets(queue.redis, queue.target.prefix)
    return SqlBudgets(services.engine)


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
    async with Fetcher(
        settings.net, politeness=shared_politeness(services), budgets=shared_budgets(services)
    ) as fetcher:
        kinds = job_kinds(services, fetcher, queues)
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
        periodic = periodic_jobs(settings)
        scheduler = Scheduler(services.engine, services.queue, worker.consumer, periodic)
        async with monitor.attached(worker), scheduler.running():
            await worker.run(until)


def worker_process_main(
    settings: Settings,
    queues: Sequence[str] | None = None,
    *,
    started: Callable[[Worker], None] | None = None,
) -> None:
    """A worker process's main (`sleuth.jobs.processes.spawn_workers`): every app's kinds."""
    services = Services(settings)
    try:
        asyncio.run(run_worker(services, queues=queues, started=started))
    finally:
        services.close()
