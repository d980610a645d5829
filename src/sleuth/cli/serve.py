"""`sleuth serve` (web + workers) and `sleuth worker`."""

from __future__ import annotations

import asyncio
import multiprocessing

import click

from sleuth.cli.context import Context, pass_context
from sleuth.runner import all_queues, run_worker, worker_process_main


def _queues(value: str | None) -> list[str] | None:
    if not value:
        return None
    chosen = [q.strip() for q in value.split(",") if q.strip()]
    unknown = sorted(set(chosen) - set(all_queues()))
    if unknown:
        raise click.BadParameter(f"unknown queue(s) {unknown}; known: {', '.join(all_queues())}")
    return chosen


@click.command()
@click.option(
    "--queues",
    help="Comma-separated queues to serve (default: all), e.g. images.grayscale to scale "
    "only that stage.",
)
@pass_context
def worker(ctx: Context, queues: str | None) -> None:
    """Run a worker: take jobs from the queue until SIGTERM/SIGINT/SIGHUP, then finish or
    hand back the jobs in flight."""
    chosen = _queues(queues)
    services = ctx.services
    click.echo(
        f"worker serving {', '.join(chosen or all_queues())} "
        f"on {services.settings.effective_queue_url}",
        err=True,
    )
    asyncio.run(run_worker(services, queues=chosen))


@click.command()
@click.option("--host", default=None, help="Address to listen on (default: web.host).")
@click.option("--port", type=int, default=None, help="Port (default: web.port, 5000).")
@click.option("--no-workers", is_flag=True, help="Serve the web only.")
@pass_context
def serve(ctx: Context, host: str | None, port: int | None, no_workers: bool) -> None:
    """Serve the web pages and JSON API, with a worker process running the jobs."""
    from werkzeug.serving import run_simple

    from sleuth.web.app import create_app

    settings = ctx.settings
    app = create_app(ctx.services)
    process = None
    if not no_workers:
        process = multiprocessing.get_context("spawn").Process(
            target=worker_process_main, args=(settings,), name="sleuth-worker"
        )
        process.start()
    host = host or settings.web.host
    port = port if port is not None else settings.web.port
    click.echo(f"sleuth serving on http://{host}:{port}/", err=True)
    try:
        run_simple(host, port, app, threaded=True, use_reloader=False)
    finally:
        if process is not None:
            process.terminate()
            process.join(30)
