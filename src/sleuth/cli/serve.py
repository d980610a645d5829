"""`sleuth serve` (web + workers) and `sleuth worker`."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import click

from sleuth.cli.context import Context, pass_context
from sleuth.config import ConfigError, Settings, load_settings, mask_url
from sleuth.runner import all_queues, run_worker


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
        f"on {mask_url(services.settings.effective_queue_url)}",
        err=True,
    )
    asyncio.run(run_worker(services, queues=chosen))


def _with_options(
    settings: Settings,
    host: str | None,
    port: int | None,
    web_workers: int | None,
    threads: int | None,
) -> Settings:
    """The settings with the command line's web options over them."""
    web = settings.web
    chosen = replace(
        web,
        host=host or web.host,
        port=web.port if port is None else port,
        workers=web.workers if web_workers is None else web_workers,
        threads=web.threads if threads is None else threads,
    )
    return replace(settings, web=chosen)


@click.command()
@click.option("--host", default=None, help="Address to listen on (default: web.host).")
@click.option("--port", type=int, default=None, help="Port (default: web.port, 5000).")
@click.option(
    "--web-workers",
    type=int,
    default=None,
    help="Web server processes (default: web.workers, 2).",
)
@click.option(
    "--threads", type=int, default=None, help="Threads per web process (default: web.threads, 8)."
)
@click.option(
    "--access-log",
    default=None,
    help="Write one line per request to this file ('-': standard error).",
)
@click.option("--no-workers", is_flag=True, help="Serve the web only.")
@pass_context
def serve(
    ctx: Context,
    host: str | None,
    port: int | None,
    web_workers: int | None,
    threads: int | None,
    access_log: str | None,
    no_workers: bool,
) -> None:
    """Serve the web pages and JSON API, with a worker process running the jobs.

    On gunicorn (web.workers processes of web.threads threads), or on waitress (one process
    of web.threads threads) where gunicorn cannot run or when web.server = "waitress".
    SIGTERM or SIGINT stops everything (running jobs finish or go back to the queue); SIGHUP
    reloads the settings and restarts the web and worker processes."""
    from sleuth.web.serving import chosen_server

    config_file: Path | None = click.get_current_context().find_root().params.get("config_file")

    def reload_settings() -> Settings:
        return _with_options(load_settings(config_file), host, port, web_workers, threads)

    settings = _with_options(ctx.settings, host, port, web_workers, threads)
    if chosen_server(settings) == "waitress":
        from sleuth.web.threaded_server import ThreadedServer as Server
    else:
        from sleuth.web.server import WebServer as Server
    try:
        server = Server(
            settings,
            reload_settings,
            run_workers=not no_workers,
            announce=lambda url: click.echo(f"sleuth serving on {url}", err=True),
            access_log=access_log,
        )
    except (ConfigError, ValueError) as exc:
        raise click.UsageError(str(exc)) from None
    server.run()
