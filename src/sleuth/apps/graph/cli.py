"""`sleuth graph ...`: crawl the follow graph from seed accounts on the job queue, export it.

A crawl is a run of the crawl layer named by its seeds file and its plan: the same command
resumes an unfinished one (its seeds are added again, and every item still waiting gets its
job again), and after a finished one starts a new run in which every operation already done
on an account is skipped (its cursor says so), so it adds no edge. A finished crawl writes
its frontier (`frontier.py`), a seeds file for the next step."""

from __future__ import annotations

import dataclasses
import gzip
import json
import time
from collections.abc import Callable
from pathlib import Path

import click
import sqlalchemy as sa
from sqlalchemy import Engine

from sleuth.apps.graph.app import NAME, QUEUES
from sleuth.apps.graph.export import FORMATS, ExportError, export
from sleuth.apps.graph.frontier import write_frontier
from sleuth.apps.graph.jobs import (
    BFS,
    DFS,
    FOLLOWING_OP,
    FRONTIER,
    F,
    Plan,
    T,
    U,
    account_item,
    item_job,
    seed_item,
)
from sleuth.apps.graph.models import DONE, graph_cursors, graph_nodes
from sleuth.apps.graph.networks import TIMELINE
from sleuth.apps.graph.select import SelectError
from sleuth.cli.context import Context, pass_context
from sleuth.config import parse_source_addresses
from sleuth.crawl import runs
from sleuth.crawl.follow import follow_run
from sleuth.crawl.progress import format_duration
from sleuth.runner import app_queues, run_worker
from sleuth.services import Services

LABELS = {"crawled": "ok", "hidden": "hidden", "error": "err"}


@click.group(name=NAME)
def graph() -> None:
    """The Mastodon, Bluesky and X follow graphs, crawled from seed accounts."""


def read_seeds(path: Path) -> list[str]:
    """The seeds of a file (gzip when named `*.gz`, as a frontier is): one handle, profile
    URL or id a line; blank lines and lines starting with `#` skipped (a URL may hold one:
    `twitter.com/#!/name`)."""
    if path.suffix == ".gz":
        text = gzip.decompress(path.read_bytes()).decode("utf-8")
    else:
        text = path.read_text(encoding="utf-8")
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def open_graph_run(engine: Engine, name: str) -> str:
    """The unfinished run of this name to resume, or a new one."""
    return runs.resume_or_open(engine, NAME, name)


def _updates(engine: Engine, run: str, plan: Plan) -> list[runs.RunItem]:
    """A U item for every account whose timeline is stored."""
    c, n = graph_cursors.c, graph_nodes.c
    query = (
        sa.select(c.network, c.account_id, n.depth, n.followers_count)
        .join(graph_nodes, (n.network == c.network) & (n.account_id == c.account_id))
        .where(c.operation == TIMELINE, c.state == DONE)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        account_item(run, U, net, ident, depth, plan, followers)
        for net, ident, depth, followers in rows
    ]


def crawl_graph(
    services: Services,
    seeds: Path,
    plan: Plan,
    *,
    update: bool = False,
    run_workers: bool = True,
) -> tuple[str, runs.Progress]:
    """Add the seeds (and with `update` a U per stored timeline) to the crawl's run, work on
    it with workers here (or elsewhere: `run_workers=False`) until no job is left, and
    record it finished when every item has its outcome. Returns the run and its progress."""
    engine, queue = services.engine, services.queue
    texts = read_seeds(seeds)
    name = f"{seeds.resolve()} {json.dumps(plan.to_json(), sort_keys=True)}" + (
        " U" if update else ""
    )
    run = open_graph_run(engine, name)

    def list_items() -> None:
        items = [seed_item(run, n, text, plan) for n, text in enumerate(texts, start=1)]
        if update:
            items += _updates(engine, run, plan)
        runs.add_items(engine, queue, items, item_job)
        with engine.connect() as conn:
            waiting = runs.queued_items(conn, run)
        runs.add_items(engine, queue, waiting, item_job)

    async def workers(until: Callable[[], bool]) -> None:
        await run_worker(services, queues=app_queues(NAME), until=until)

    follow_run(
        engine,
        queue,
        run,
        list_items,
        QUEUES,
        LABELS,
        run_workers=workers if run_workers else None,
        listing="the frontier grows",
    )
    with engine.connect() as conn:
        waiting = runs.queued_items(conn, run)
    if not waiting and queue.pending(QUEUES) == 0:
        runs.set_total(engine, run, runs.progress(engine, run).listed)
        runs.mark_finished(engine, run)
    return run, runs.progress(engine, run)


@graph.command()
@click.option(
    "--seeds",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="A file of seed accounts: a handle, profile URL or id a line (or a frontier .gz).",
)
@click.option("-T", "timeline", is_flag=True, help="Store each selected account's latest posts.")
@click.option("-F", "followers", is_flag=True, help="Read each selected account's followers.")
@click.option("--following", is_flag=True, help="Read the accounts each selected one follows.")
@click.option("-A", "analyse", is_flag=True, help="Select the accounts lists meet by --select.")
@click.option("-U", "update", is_flag=True, help="Add the newer posts to every stored timeline.")
@click.option(
    "--depth", type=click.IntRange(min=0), default=1, show_default=True, help="Hops from the seeds."
)
@click.option("--bfs", "order", flag_value=BFS, default=True, help="Breadth first (the default).")
@click.option("--dfs", "order", flag_value=DFS, help="Depth first.")
@click.option(
    "--frontier",
    "order",
    flag_value=FRONTIER,
    help="The most-followed accounts first (in powers of two of their followers).",
)
@click.option(
    "--select",
    "select",
    default=None,
    help="The analysis rule, e.g. \"lang == 'it' and statuses_count > 100\".",
)
@click.option("--workers", type=click.IntRange(min=0), default=None, help="0: only queue.")
@click.option(
    "--source-address",
    "source_addresses",
    multiple=True,
    help="A local address to send from (again for more: each has its own rate-limit budget "
    "on every host); default [net] source_addresses.",
)
@click.option(
    "--frontier-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where a finished crawl writes frontier-<run>.gz (default: the data folder).",
)
@pass_context
def crawl(
    ctx: Context,
    seeds: Path,
    timeline: bool,
    followers: bool,
    following: bool,
    analyse: bool,
    update: bool,
    depth: int,
    order: str,
    select: str | None,
    workers: int | None,
    source_addresses: tuple[str, ...],
    frontier_dir: Path | None,
) -> None:
    """Crawl the follow graph from the seed accounts. Interrupt with Ctrl-C (or kill) and run
    the same command again to resume; running it again once finished adds nothing."""
    if select is not None and not analyse:
        raise click.UsageError("--select is the rule of -A: give -A too")
    ops = tuple(op for op, on in ((T, timeline), (F, followers), (FOLLOWING_OP, following)) if on)
    if not ops and not update:
        raise click.UsageError("give at least one of -T, -F, --following, -U")
    try:
        plan = Plan(ops, analyse=analyse, select=select, depth=depth, order=order)
    except SelectError as exc:
        raise click.BadParameter(str(exc), param_hint="--select") from None
    if workers:
        worker = dataclasses.replace(ctx.settings.worker, processes=workers)
        ctx.settings = dataclasses.replace(ctx.settings, worker=worker)
    if source_addresses:
        try:
            bound = parse_source_addresses(list(source_addresses))
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--source-address") from None
        net = dataclasses.replace(ctx.settings.net, source_addresses=bound)
        ctx.settings = dataclasses.replace(ctx.settings, net=net)
    started = time.monotonic()
    run, final = crawl_graph(ctx.services, seeds, plan, update=update, run_workers=workers != 0)
    click.echo(
        f"crawl {run[:12]}: {final.count('crawled')} operations done, "
        f"{final.count('hidden')} lists hidden, {final.count('error')} failed, in "
        f"{format_duration(time.monotonic() - started)}."
    )
    if not final.finished:
        click.echo("Not finished: run the same command again to resume.", err=True)
        raise click.exceptions.Exit(1)
    folder = frontier_dir if frontier_dir is not None else ctx.settings.data_dir
    path, count = write_frontier(ctx.services.engine, folder, run)
    click.echo(f"Frontier ({count} accounts found, not expanded) saved into {path}")


@graph.command(name="export")
@click.option("--format", "fmt", type=click.Choice(FORMATS), required=True)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="The file to write (csv and parquet: a folder, for nodes and edges).",
)
@click.option("--network", default=None, help="Only this network's nodes and edges.")
@pass_context
def export_command(ctx: Context, fmt: str, out: Path, network: str | None) -> None:
    """Export the graph's nodes and edges (follower -> followed), streamed."""
    try:
        counts = export(ctx.services.engine, fmt, out, network)
    except ExportError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{counts[0]} nodes, {counts[1]} edges written to {out}")
