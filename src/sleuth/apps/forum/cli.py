"""`sleuth forum ...`: crawl a Discourse forum, or a board of a bB XML forum, on the job queue;
recompute its statistics; make cached API answers stale.

A crawl of the same forum (and board) that did not finish is resumed; one that finished is
followed by a new, incremental one: only topics bumped since are listed and crawled."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable

import click
import sqlalchemy as sa
from sqlalchemy import Engine

from sleuth.apps.forum.analytics import AnalyticsReport, analyze, bump_versions, rebuild
from sleuth.apps.forum.app import NAME, TOPIC_QUEUE
from sleuth.apps.forum.crawl import (
    Listing,
    bb_changes,
    bb_listing,
    discourse_changes,
    discourse_listing,
)
from sleuth.apps.forum.jobs import item_job, topic_target
from sleuth.apps.forum.models import forum_sites, forum_stats_versions, forum_thread_versions
from sleuth.cli.context import Context, pass_context
from sleuth.crawl import runs
from sleuth.crawl.follow import ListingError, follow_run
from sleuth.crawl.models import crawl_run_items
from sleuth.crawl.progress import format_duration
from sleuth.net.fetcher import Fetcher
from sleuth.runner import app_queues, run_worker, shared_budgets, shared_politeness
from sleuth.services import Services
from sleuth.sources.bbxml import BbClient, xml_base
from sleuth.sources.discourse import DiscourseClient, forum_base, profile
from sleuth.sources.forumtypes import ForumTopic

LABELS = {"crawled": "ok", "error": "err"}


@click.group(name=NAME)
def forum() -> None:
    """Forums (Discourse, the bB XML API) crawled into SQL."""


def open_forum_run(engine: Engine, name: str) -> str:
    """The unfinished run of this name to resume, or a new one."""
    return runs.resume_or_open(engine, NAME, name)


def _items(engine: Engine, run: str) -> int:
    with engine.connect() as conn:
        query = sa.select(sa.func.count()).where(crawl_run_items.c.run_id == run)
        return int(conn.execute(query.select_from(crawl_run_items)).scalar_one())


def crawl_forum(
    services: Services, url: str, board: int | None = None, *, run_workers: bool = True
) -> runs.Progress:
    """List what changed on the forum (a bB board when `board` is given) into a run, crawl
    it with workers here (or elsewhere: `run_workers=False`), follow it to its end, and move
    the high-water mark once every topic is in."""
    engine, queue = services.engine, services.queue
    kind = "discourse" if board is None else "bbxml"
    base = forum_base(url) if board is None else xml_base(url)
    name = f"{kind} {base}" + (f" board {board}" if board is not None else "")
    run = open_forum_run(engine, name)
    listed: list[Listing] = []

    async def list_changes() -> None:
        async with Fetcher(
            services.settings.net,
            politeness=shared_politeness(services),
            budgets=shared_budgets(services),
        ) as fetcher:
            if board is None:
                pace = profile(services.settings.app(NAME).discourse_per_minute)
                client = DiscourseClient(fetcher, base, pace)
                listing = await discourse_listing(engine, client)
                async for topics in discourse_changes(engine, client, listing):
                    _add(listing, topics)
            else:
                bb = BbClient(fetcher, base)
                listing = await bb_listing(engine, bb, board)
                async for threads in bb_changes(engine, bb, listing):
                    _add(listing, [t for t, _ in threads])
        listed.append(listing)
        runs.set_total(engine, run, _items(engine, run))

    def _add(listing: Listing, topics: list[ForumTopic]) -> None:
        items = [
            runs.RunItem(run, str(t.topic_id), topic_target(kind, base, listing.site, t))
            for t in topics
        ]
        runs.add_items(engine, queue, items, item_job)

    async def workers(until: Callable[[], bool]) -> None:
        await run_worker(services, queues=app_queues(NAME), until=until)

    try:
        final = follow_run(
            engine,
            queue,
            run,
            lambda: asyncio.run(list_changes()),
            (TOPIC_QUEUE,),
            LABELS,
            run_workers=workers if run_workers else None,
            listing="listing topics",
        )
    except ListingError as exc:
        raise click.ClickException(f"listing the forum failed: {exc}") from None
    if final.finished and listed and final.count("error") == 0:
        listed[0].finish(engine)
    return final


@forum.command()
@click.argument("url", required=False)
@click.option("--bbxml", "bb_url", default=None, help="A bB forum's URL (its XML API is read).")
@click.option("--board", type=int, default=None, help="The bB board to crawl (with --bbxml).")
@click.option("--workers", type=click.IntRange(min=0), default=None, help="0: only list.")
@pass_context
def crawl(
    ctx: Context, url: str | None, bb_url: str | None, board: int | None, workers: int | None
) -> None:
    """Crawl the Discourse forum at URL (any of its pages), or with --bbxml URL --board ID
    one board of a bB forum. Interrupt with Ctrl-C and run it again to resume; once a crawl
    has finished, running it again fetches only what changed."""
    if bb_url is not None and board is None:
        raise click.UsageError("--bbxml needs --board ID")
    if board is not None and bb_url is None:
        raise click.UsageError("--board is for a bB forum: give --bbxml URL")
    if workers:
        worker = dataclasses.replace(ctx.settings.worker, processes=workers)
        ctx.settings = dataclasses.replace(ctx.settings, worker=worker)
    target = bb_url or url
    if target is None:
        raise click.UsageError("give the forum's URL")
    started = time.monotonic()
    try:
        final = crawl_forum(ctx.services, target, board, run_workers=workers != 0)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"{final.count('crawled')} topics crawled, {final.count('error')} failed, in "
        f"{format_duration(time.monotonic() - started)}."
    )
    _echo_analytics(analyze(ctx.services.engine))
    if not final.finished:
        click.echo("Not finished: run the same command again to resume.", err=True)
        raise click.exceptions.Exit(1)


def _echo_analytics(report: AnalyticsReport) -> None:
    click.echo(
        f"Statistics: {report.keys} (board, day, user) keys recomputed over {report.days} days "
        f"({report.posts} posts read) in {format_duration(report.seconds)}."
    )


@forum.command()
@click.option(
    "--full", is_flag=True, help="Recompute every statistic of every forum from its posts."
)
@pass_context
def analytics(ctx: Context, full: bool) -> None:
    """Recompute the statistics that crawls changed (a running `sleuth serve` does this every
    [forum] analytics_every seconds; a crawl does it when it ends)."""
    engine = ctx.services.engine
    if full:
        with engine.connect() as conn:
            sites = [int(s) for s in conn.execute(sa.select(forum_sites.c.id)).scalars()]
        for site in sites:
            _echo_analytics(rebuild(engine, site))
    else:
        _echo_analytics(analyze(engine))


@forum.command("invalidate-cache")
@pass_context
def invalidate_cache(ctx: Context) -> None:
    """Make every cached API answer stale (after the database was changed by hand)."""
    with ctx.services.engine.begin() as conn:
        sites = [int(s) for s in conn.execute(sa.select(forum_sites.c.id)).scalars()]
        for site in sites:
            for table in (forum_stats_versions, forum_thread_versions):
                years = conn.execute(sa.select(table.c.year).where(table.c.site_id == site))
                bump_versions(conn, site, [int(y) for y in years.scalars()], table)
    click.echo(f"Cached answers of {len(sites)} forums are stale now.")
