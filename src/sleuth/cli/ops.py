"""`sleuth status` and `sleuth queues`: what the engine holds and is doing."""

from __future__ import annotations

import json
import time

import click
import sqlalchemy as sa

from sleuth.cli.context import Context, pass_context
from sleuth.config import mask_url


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_context
def queues(ctx: Context, as_json: bool) -> None:
    """Jobs per queue and priority: ready, delayed, in flight (per worker), dead, oldest."""
    stats = ctx.services.queue.stats()
    if as_json:
        click.echo(
            json.dumps(
                [
                    s.__dict__ | {"in_flight_by_consumer": dict(s.in_flight_by_consumer)}
                    for s in stats
                ],
                indent=2,
            )
        )
        return
    if not stats:
        click.echo("no jobs queued")
        return
    click.echo(
        f"{'queue':<20} {'prio':>4} {'ready':>8} {'delayed':>8} {'flight':>7} {'dead':>6}  oldest"
    )
    for s in stats:
        oldest = f"{s.oldest_ready_age:.0f}s" if s.oldest_ready_age is not None else "-"
        click.echo(
            f"{s.queue:<20} {s.priority:>4} {s.ready:>8} {s.delayed:>8} {s.in_flight:>7} "
            f"{s.dead:>6}  {oldest}"
        )
        for consumer, n in sorted(s.in_flight_by_consumer.items()):
            click.echo(f"{'':<20}      in flight at {consumer}: {n}")


@click.command()
@pass_context
def status(ctx: Context) -> None:
    """Where the data is, how much of it there is, and what the queue holds."""
    from sleuth.apps.images.models import image_sources, images
    from sleuth.crawl.runs import app_outcomes

    settings = ctx.settings
    services = ctx.services
    with services.engine.connect() as conn:
        n_images = conn.execute(sa.select(sa.func.count()).select_from(images)).scalar_one()
        n_sources = conn.execute(sa.select(sa.func.count()).select_from(image_sources)).scalar_one()
        outcomes = app_outcomes(conn, "images")
    pending = sum(s.ready + s.delayed + s.in_flight for s in services.queue.stats())
    dead = sum(s.dead for s in services.queue.stats())
    click.echo(f"database  {mask_url(settings.effective_database_url)}")
    click.echo(f"queue     {mask_url(settings.effective_queue_url)}")
    click.echo(f"blobs     {settings.effective_blob_dir}")
    click.echo(f"images    {n_images} stored, {n_sources} source URLs")
    click.echo(
        "lines     "
        + ", ".join(f"{k or 'in progress'} {v}" for k, v in sorted(outcomes.items(), key=str))
    )
    click.echo(f"jobs      {pending} pending, {dead} dead  (at {time.strftime('%H:%M:%S')})")
