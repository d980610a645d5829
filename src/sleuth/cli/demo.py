"""`sleuth demo`: every installed app against the offline web, on this machine only."""

from __future__ import annotations

import dataclasses
import shutil
import threading
from contextlib import ExitStack, suppress
from pathlib import Path

import click

from sleuth.app import DemoRun, installed_apps
from sleuth.cli.context import Context, pass_context
from sleuth.services import Services

MARKER = ".sleuth-demo"


def _fresh_demo_dir(path: Path) -> None:
    """Empty the demo's own folder; refuse to touch a folder the demo did not make."""
    if path.exists():
        if not (path / MARKER).exists():
            raise click.ClickException(f"{path} exists and is not a demo folder; remove it first")
        shutil.rmtree(path)
    path.mkdir(parents=True)
    (path / MARKER).write_text("made by `sleuth demo`; emptied at each run\n")


@click.command()
@click.option("--port", type=int, default=None, help="Web port (default: web.port, 5000).")
@click.option(
    "--count",
    type=int,
    default=None,
    help="Input size of each app's demo step (default: each app's own, e.g. 650 URLs).",
)
@click.option("--no-serve", is_flag=True, help="Exit after the apps' steps instead of serving.")
@pass_context
def demo(ctx: Context, port: int | None, count: int | None, no_serve: bool) -> None:
    """Start the offline web, run each installed app's demo step, serve the pages.

    Uses its own folder, DATA_DIR/demo, emptied at each run. The offline web runs on
    loopback, so private addresses are allowed for this run only.
    """
    base = ctx.settings
    demo_dir = base.data_dir / "demo"
    _fresh_demo_dir(demo_dir)
    settings = dataclasses.replace(
        base,
        data_dir=demo_dir,
        database_url="",
        queue_url="",
        blob_dir=None,
        net=dataclasses.replace(base.net, allow_private=True),
    )
    from sleuth.web.app import create_app
    from sleuth.web.threaded_server import listen, serve_in_thread, stop

    with ExitStack() as cleanup:
        services = Services(settings)
        cleanup.callback(services.close)
        web_port = port if port is not None else settings.web.port
        pages = create_app(services).wsgi_app
        try:
            web = listen(pages, settings.web.host, web_port, settings.web.threads)
        except OSError as exc:
            raise click.ClickException(
                f"cannot listen on port {web_port}: {exc}; use --port"
            ) from None
        cleanup.callback(stop, web, 1.0)
        web_url = serve_in_thread(web).rstrip("/")
        click.echo(f"watch it live             {web_url}/monitoring")
        for app in installed_apps():
            if app.demo is not None:
                click.echo(f"\n[{app.name}] {app.description}")
                folder = demo_dir / app.name
                folder.mkdir()
                app.demo(DemoRun(services, folder, web_url, count, cleanup))
        click.echo(f"\nMonitoring: {web_url}/monitoring  the per-minute histogram of each app")
        if not no_serve:
            click.echo("\nServing; Ctrl-C to stop.")
            with suppress(KeyboardInterrupt):
                threading.Event().wait()
