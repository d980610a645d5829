"""`sleuth demo`: the whole images app against the offline web, on this machine only."""

from __future__ import annotations

import dataclasses
import shutil
import threading
from pathlib import Path

import click
from werkzeug.serving import make_server

from sleuth.apps.images.cli import crawl_list
from sleuth.apps.images.crawl import crawl_id_for, error_reasons
from sleuth.cli.context import Context, pass_context
from sleuth.emulator.imagehost import create_imagehost_app
from sleuth.emulator.server import EmulatorServer
from sleuth.emulator.urls import expected_outcomes, seed_shaped_urls
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
@click.option("--count", type=int, default=None, help="URLs to crawl (default: the seed's 650).")
@click.option("--no-serve", is_flag=True, help="Exit after the crawl instead of serving.")
@pass_context
def demo(ctx: Context, port: int | None, count: int | None, no_serve: bool) -> None:
    """Start the offline web, crawl a seed-shaped URL list, serve the pages.

    Uses its own folder, DATA_DIR/demo, emptied at each run. The image host runs on
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
    services = Services(settings)
    emulator = EmulatorServer(create_imagehost_app(seed=0))
    host_url = emulator.start()
    urls_file = demo_dir / "urls.txt"
    lines = list(seed_shaped_urls(host_url, count=count))
    urls_file.write_text("\n".join(lines) + "\n")
    expected = expected_outcomes(lines)

    from sleuth.web.app import create_app

    web_port = port if port is not None else settings.web.port
    try:
        web = make_server(settings.web.host, web_port, create_app(services), threaded=True)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on port {web_port}: {exc}; use --port") from None
    web_url = f"http://{settings.web.host}:{web.server_port}"
    threading.Thread(target=web.serve_forever, daemon=True, name="sleuth-web").start()

    click.echo(f"image host (offline web)  {host_url}")
    click.echo(f"URL list                  {urls_file} ({len(lines)} lines)")
    click.echo(f"watch it live             {web_url}/monitoring")
    crawl_id = crawl_id_for(str(urls_file))
    with urls_file.open(encoding="utf-8") as stream:
        final = crawl_list(services, crawl_id, stream)
    reasons = ", ".join(f"{r} {n}" for r, n in error_reasons(services.engine, crawl_id))
    click.echo(
        f"\nCrawled {final.done} lines: {final.success} stored, {final.duplicate} duplicates, "
        f"{final.error} errors ({reasons})."
    )
    click.echo(
        f"Expected from the list:   {expected['success']} stored, "
        f"{expected['duplicate']} duplicates, {expected['error']} errors."
    )
    click.echo(f"\nOpen {web_url}/            newest images")
    click.echo(f"     {web_url}/monitoring  the per-minute histogram")
    click.echo(f"     {web_url}/api/images  the JSON API ({web_url}/openapi.json)")
    try:
        if not no_serve:
            click.echo("\nServing; Ctrl-C to stop.")
            threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        web.shutdown()
        emulator.stop()
        services.close()
