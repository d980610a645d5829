"""`sleuth images ...`: crawl URL lists."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
import time
from typing import IO

import click

from sleuth.apps.images.crawl import (
    Progress,
    crawl_id_for,
    enqueue_list,
    error_reasons,
    open_crawl,
    progress,
)
from sleuth.apps.images.pipeline import QUEUES
from sleuth.cli.context import Context, pass_context
from sleuth.cli.progress import ProgressLine, format_duration
from sleuth.runner import run_worker
from sleuth.services import Services

REFRESH = 0.5


@click.group()
def images() -> None:
    """The image crawler: MD5, exact grayscale, pHash, stored once per image."""


class _Producer(threading.Thread):
    """Reads the list and queues its lines while the workers already run."""

    def __init__(self, services: Services, crawl_id: str, stream: IO[str]) -> None:
        super().__init__(name="sleuth-enqueue", daemon=True)
        self.services, self.crawl_id, self.stream = services, crawl_id, stream
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            enqueue_list(self.services.engine, self.services.queue, self.crawl_id, self.stream)
        except BaseException as exc:
            self.error = exc


def crawl_list(
    services: Services, crawl_id: str, stream: IO[str], *, run_workers: bool = True
) -> Progress:
    """Crawl a list to its end, or until interrupted, drawing a progress line; returns the
    final progress. With `run_workers=False` only queue and follow: workers run elsewhere."""
    open_crawl(services.engine, crawl_id, getattr(stream, "name", "-"))
    producer = _Producer(services, crawl_id, stream)
    producer.start()
    line = ProgressLine()

    def done() -> bool:
        if producer.error is not None:
            raise producer.error
        if producer.is_alive():
            return False
        # Finished when every line has its outcome, or nothing is left to run (a line whose
        # jobs died is reported by the summary and `sleuth dead-letter list`).
        return progress(services.engine, crawl_id).finished or services.queue.pending(QUEUES) == 0

    async def follow() -> None:
        while True:
            p = await asyncio.to_thread(progress, services.engine, crawl_id)
            line.update(p.done, p.total, _counts(p))
            if await asyncio.to_thread(done):
                return
            await asyncio.sleep(REFRESH)

    async def main() -> None:
        if not run_workers:
            await follow()
            return
        display = asyncio.create_task(follow())
        try:
            await run_worker(services, until=done)
        finally:
            display.cancel()

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C with no worker here: just stop
        asyncio.run(main())
    final = progress(services.engine, crawl_id)
    line.close(final.done, final.total, _counts(final))
    if producer.error is not None:
        raise click.ClickException(f"reading the list failed: {producer.error}")
    return final


def _counts(p: Progress) -> str:
    return f"ok {p.success} dup {p.duplicate} err {p.error}"


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
    if not final.finished:
        click.echo("Not finished: run the same command again to resume.", err=True)
        raise click.exceptions.Exit(1)
