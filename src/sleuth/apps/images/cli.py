"""`sleuth images ...`: crawl URL lists."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING

import click

from sleuth.apps.images.app import NAME, STAGE_QUEUES
from sleuth.apps.images.crawl import (
    LABELS,
    Progress,
    crawl_id_for,
    enqueue_list,
    error_reasons,
    open_crawl,
)
from sleuth.apps.images.limits import DEFAULT_LIMIT, DEFAULT_MAX_DISTANCE, MAX_DISTANCE, MAX_LIMIT
from sleuth.cli.context import Context, pass_context
from sleuth.config import mask_url
from sleuth.crawl.follow import ListingError, follow_run
from sleuth.crawl.progress import format_duration
from sleuth.crawl.runs import RunError
from sleuth.imaging.hashes import phash_hex
from sleuth.record import to_json
from sleuth.runner import app_queues, run_worker
from sleuth.services import Services
from sleuth.timefmt import iso_utc

if TYPE_CHECKING:
    from sleuth.apps.images.search import Found, Query


@click.group()
def images() -> None:
    """The image crawler: MD5, exact grayscale, pHash, stored once per image."""


def crawl_list(
    services: Services, crawl_id: str, stream: IO[str], *, run_workers: bool = True
) -> Progress:
    """Crawl a list to its end, or until interrupted, drawing a progress line; returns the
    final progress. With `run_workers=False` only queue and follow: workers run elsewhere."""
    engine, queue = services.engine, services.queue
    try:
        open_crawl(engine, crawl_id, getattr(stream, "name", "-"))
    except RunError as exc:
        raise click.ClickException(str(exc)) from None

    async def workers(until: Callable[[], bool]) -> None:
        await run_worker(services, queues=app_queues(NAME), until=until)

    try:
        final = follow_run(
            engine,
            queue,
            crawl_id,
            lambda: enqueue_list(engine, queue, crawl_id, stream),
            STAGE_QUEUES,
            LABELS,
            run_workers=workers if run_workers else None,
            listing="reading list",
        )
    except ListingError as exc:
        raise click.ClickException(f"reading the list failed: {exc}") from None
    return Progress.of(final)


@images.command()
@click.argument("file", type=click.File("r", encoding="utf-8", errors="replace"))
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=None,
    help="CPU processes decoding images here (default: one per core). 0: only queue the "
    "list and follow progress while `sleuth worker` processes elsewhere do the work.",
)
@click.option("--new", "fresh", is_flag=True, help="Start over instead of resuming this list.")
@pass_context
def crawl(ctx: Context, file: IO[str], workers: int | None, fresh: bool) -> None:
    """Crawl the image URLs listed in FILE (one per line; - for stdin).

    The file is streamed, so it may be of any size. Each line is fetched, hashed (MD5 of the
    bytes), turned into an exact grayscale copy and pHashed; an image is stored once per MD5
    and every URL is kept as one of its sources. Interrupt with Ctrl-C and run the same
    command again to resume: nothing already done is fetched again.
    """
    if workers:
        worker = dataclasses.replace(ctx.settings.worker, processes=workers)
        ctx.settings = dataclasses.replace(ctx.settings, worker=worker)
    services = ctx.services
    if workers == 0:
        queue_url = mask_url(ctx.settings.effective_queue_url)
        click.echo(
            f"Queueing only: `sleuth worker` processes on {queue_url} do the work.", err=True
        )
    crawl_id = crawl_id_for(file.name, fresh)
    started = time.monotonic()
    final = crawl_list(services, crawl_id, file, run_workers=workers != 0)
    elapsed = time.monotonic() - started
    click.echo(
        f"{final.done} of {final.total if final.total is not None else '?'} lines in "
        f"{format_duration(elapsed)}: {final.success} stored, {final.duplicate} duplicates, "
        f"{final.error} errors."
    )
    if final.error:
        reasons = ", ".join(f"{r} {n}" for r, n in error_reasons(services.engine, crawl_id))
        click.echo(f"Errors by reason: {reasons}")
        click.echo(f"Which lines and why: sleuth images errors --crawl {crawl_id}")
    if not final.finished:
        click.echo("Not finished: run the same command again to resume.", err=True)
        raise click.exceptions.Exit(1)


def _query_bytes(target: str, ctx: Context) -> bytes:
    """The bytes of FILE, or of URL fetched (anything with `://` is taken for a URL)."""
    from sleuth.apps.images.search import fetch_query_image

    net = ctx.settings.net
    if "://" in target:
        return fetch_query_image(target, net)
    path = Path(target)
    if not path.is_file():
        raise click.ClickException(f"{target}: no such file")
    size = path.stat().st_size
    if size > net.max_bytes:
        raise click.ClickException(
            f"{target}: {size} bytes, over the limit of {net.max_bytes} (net.max_bytes)"
        )
    return path.read_bytes()


def _print_found(query: Query, found: Found) -> None:
    click.echo(
        f"query: {query.width}x{query.height} {query.format}, pHash {phash_hex(query.phash)}"
    )
    if not found.matches:
        click.echo(f"No stored image within distance {found.max_distance}.")
        return
    more = f" (the nearest {found.limit} shown)" if found.truncated else ""
    count = f"{len(found.matches)} match{'es' if len(found.matches) > 1 else ''}"
    click.echo(f"{count} within distance {found.max_distance}{more}:")
    click.echo(f"{'dist':>4}  {'md5':32}  {'size':>11}  {'first seen':20}  source")
    for m in found.matches:
        first = iso_utc(m.first_seen)[:19] + "Z"
        source = m.sources[0].url if m.sources else "-"
        if m.sources_total > 1:
            source += f" (+{m.sources_total - 1} more)"
        size = f"{m.width}x{m.height}"
        click.echo(f"{m.distance:>4}  {m.md5}  {size:>11}  {first:20}  {source}")


@images.command()
@click.argument("target", metavar="FILE|URL")
@click.option(
    "--max-distance",
    type=click.IntRange(0, MAX_DISTANCE),
    default=DEFAULT_MAX_DISTANCE,
    show_default=True,
    help="Largest Hamming distance between pHashes that counts as a match.",
)
@click.option(
    "--limit",
    type=click.IntRange(1, MAX_LIMIT),
    default=DEFAULT_LIMIT,
    show_default=True,
    help="Most matches shown.",
)
@click.option("--crawl", help="Only images found by this crawl (its id).")
@click.option("--host", help="Only images with a source URL on this host.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_context
def search(
    ctx: Context,
    target: str,
    max_distance: int,
    limit: int,
    crawl: str | None,
    host: str | None,
    as_json: bool,
) -> None:
    """Find the stored images that look like FILE or URL, nearest first.

    Compares 64-bit pHashes exactly against every stored image (including those a crawl
    running elsewhere stores right now): resized or re-encoded copies of a picture lie a few
    bits apart, unrelated pictures about 32.
    """
    # Here, not at the top: every `sleuth images` command would import numpy and the index.
    from sleuth.apps.images.search import ImageSearch, QueryError, Result, query_from_bytes

    try:
        query = query_from_bytes(_query_bytes(target, ctx), ctx.settings.imaging.max_pixels)
        found = ImageSearch.for_services(ctx.services).search(
            query.phash, max_distance, limit, crawl=crawl, host=host
        )
    except QueryError as exc:
        raise click.ClickException(f"{exc.code}: {exc.message}") from None
    if as_json:
        click.echo(json.dumps(to_json(Result(query, found)), indent=1))
    else:
        _print_found(query, found)
