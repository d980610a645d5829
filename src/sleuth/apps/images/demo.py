"""The images app's step in `sleuth demo`: crawl a seed-shaped URL list from the offline
image host and compare the outcome with what the list should give."""

from __future__ import annotations

import click

from sleuth.app import DemoRun
from sleuth.apps.images.cli import crawl_list
from sleuth.apps.images.crawl import crawl_id_for, error_reasons
from sleuth.emulator.imagehost import create_imagehost_app
from sleuth.emulator.server import EmulatorServer
from sleuth.emulator.urls import expected_outcomes, seed_shaped_urls


def demo_step(run: DemoRun) -> None:
    """Start the image host, crawl `run.count` URLs (default: the seed's 650) with workers
    here, and print the result beside the expected one."""
    emulator = EmulatorServer(create_imagehost_app(seed=0))
    host_url = emulator.start()
    run.cleanup.callback(emulator.stop)
    urls_file = run.folder / "urls.txt"
    lines = list(seed_shaped_urls(host_url, count=run.count))
    urls_file.write_text("\n".join(lines) + "\n")
    expected = expected_outcomes(lines)
    click.echo(f"image host (offline web)  {host_url}")
    click.echo(f"URL list                  {urls_file} ({len(lines)} lines)")
    crawl_id = crawl_id_for(str(urls_file))
    with urls_file.open(encoding="utf-8") as stream:
        final = crawl_list(run.services, crawl_id, stream)
    reasons = ", ".join(f"{r} {n}" for r, n in error_reasons(run.services.engine, crawl_id))
    click.echo(
        f"\nCrawled {final.done} lines: {final.success} stored, {final.duplicate} duplicates, "
        f"{final.error} errors ({reasons})."
    )
    click.echo(
        f"Expected from the list:   {expected['success']} stored, "
        f"{expected['duplicate']} duplicates, {expected['error']} errors."
    )
    click.echo(f"\nOpen {run.web_url}/            newest images")
    click.echo(f"     {run.web_url}/api/images  the JSON API ({run.web_url}/openapi.json)")
