"""`sleuth workers`, `stacks`, `metrics` and `dead-letter`: what the workers are doing, how
long their jobs take, and the jobs that failed for good (AOTF's `threads`, `stacks`,
`metrics`, on every machine at once, through the shared database)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from sleuth.cli.context import Context, pass_context
from sleuth.jobs.base import QueueBackend
from sleuth.observe.metrics import StageSummary, merged_stages
from sleuth.observe.registry import (
    WorkerInfo,
    dead_job_dict,
    first_line,
    list_workers,
    live_consumers,
)
from sleuth.observe.stacks import StackReport, collect_stacks
from sleuth.timefmt import iso_utc

SHOWN_JOBS = 10  # running jobs listed per worker in the table (all of them with --json)
REDRIVE_BATCH = 500


def seconds(value: float | None) -> str:
    """A duration for people: 0.4ms, 12ms, 1.23s, 12.3s, 2m03s, 5h07m."""
    if value is None:
        return "-"
    if value < 1.0:
        return f"{value * 1000:.2g}ms" if value < 0.01 else f"{value * 1000:.0f}ms"
    if value < 10:
        return f"{value:.2f}s"
    if value < 60:
        return f"{value:.1f}s"
    minutes, secs = divmod(int(value), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


# -- workers ----------------------------------------------------------------------------------


def _worker_lines(w: WorkerInfo, now: float) -> list[str]:
    state = "BLOCKED" if w.loop_blocked else w.state
    lines = [
        f"{w.consumer:<36} {state:<8} {w.host:<16} {w.pid:>7} "
        f"{seconds(now - w.started_at):>7} {seconds(now - w.heartbeat_at):>7}  "
        f"{','.join(w.queues)}"
    ]
    if w.loop_blocked:
        lines.append(f"    its event loop has not run for {seconds(w.loop_lag)}")
    if w.state == "stopped":
        return lines
    for job in w.current[:SHOWN_JOBS]:
        lines.append(f"    job {job.job_id} of {job.queue}, running for {seconds(now - job.since)}")
    if len(w.current) > SHOWN_JOBS:
        lines.append(f"    ... and {len(w.current) - SHOWN_JOBS} more jobs (see --json)")
    if not w.current:
        lines.append("    idle")
    return lines


@click.command()
@click.option("--all", "show_all", is_flag=True, help="Include workers that stopped cleanly.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_context
def workers(ctx: Context, show_all: bool, as_json: bool) -> None:
    """Every worker on every machine: state (live, lost: no heartbeat, stopped), host, pid,
    uptime, last heartbeat, and the jobs it is running now and for how long."""
    now = time.time()
    with ctx.services.engine.connect() as conn:
        found = list_workers(conn, now, include_stopped=show_all)
    if as_json:
        click.echo(json.dumps([w.to_dict(now) for w in found], indent=2))
        return
    if not found:
        click.echo("no worker registered" + ("" if show_all else " (--all: stopped ones too)"))
        return
    click.echo(f"{'worker':<36} {'state':<8} {'host':<16} {'pid':>7} {'up':>7} {'beat':>7}  queues")
    for w in found:
        for line in _worker_lines(w, now):
            click.echo(line)


# -- stacks -----------------------------------------------------------------------------------


def _report_text(report: StackReport) -> str:
    parts = [
        f"sleuth stacks requested at {iso_utc(report.requested_at)}: "
        f"{len(report.answers)} worker(s) answered\n"
    ]
    if report.missing:
        parts.append("did not answer in time: " + ", ".join(report.missing) + "\n")
    parts.append("\n")
    for consumer in sorted(report.answers):
        parts.append(report.answers[consumer])
        parts.append("\n")
    return "".join(parts)


@click.command()
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False, writable=True),
    default=Path("stacktrace.log"),
    show_default=True,
    help="File to write the stacks into.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1, max=600),
    default=10.0,
    show_default=True,
    help="Seconds to wait for the workers' answers.",
)
@pass_context
def stacks(ctx: Context, output: Path, timeout: float) -> None:
    """Write the Python stacks of every live worker (all threads, and each asyncio task's
    chain of coroutines down to what it awaits) into one file. Exits with 1 when a worker
    did not answer in time; the file then names it."""
    engine = ctx.services.engine
    with engine.connect() as conn:
        asked = live_consumers(conn)
    if not asked:
        raise click.ClickException("no live worker to ask (see `sleuth workers`)")
    report = collect_stacks(engine, asked, timeout)
    output.write_text(_report_text(report), encoding="utf-8")
    click.echo(f"stacks of {len(report.answers)} worker(s) written to {output}")
    if report.missing:
        raise click.ClickException(
            f"no answer within {timeout:g} s from: {', '.join(report.missing)}"
        )


# -- metrics ----------------------------------------------------------------------------------


@click.command()
@click.option("--queue", help="Only this queue (stage).")
@click.option("--live", is_flag=True, help="Only the workers running now (else all registered).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (durations in seconds).")
@pass_context
def metrics(ctx: Context, queue: str | None, live: bool, as_json: bool) -> None:
    """Job durations per stage (queue), merged over every worker: count, errors, p50, p90,
    p99, max. Durations run from a job's start to its outcome being recorded; each worker
    counts since it started, until its registry row is pruned."""
    with ctx.services.engine.connect() as conn:
        consumers = live_consumers(conn) if live else None
        stages: list[StageSummary] = merged_stages(conn, queue, consumers)
    if as_json:
        click.echo(json.dumps([s.to_dict() for s in stages], indent=2))
        return
    if not stages:
        click.echo("no job timings recorded yet")
        return
    click.echo(
        f"{'queue':<24} {'count':>8} {'errors':>7} {'p50':>8} {'p90':>8} {'p99':>8} "
        f"{'max':>8} {'workers':>7}"
    )
    for s in stages:
        click.echo(
            f"{s.queue:<24} {s.count:>8} {s.errors:>7} {seconds(s.p50):>8} {seconds(s.p90):>8} "
            f"{seconds(s.p99):>8} {seconds(s.max):>8} {s.workers:>7}"
        )


# -- dead letters -----------------------------------------------------------------------------


@click.group("dead-letter")
def dead_letter() -> None:
    """Jobs that failed for good: list them, or send them back to their queues."""


@dead_letter.command("list")
@click.option("--queue", help="Only this queue.")
@click.option("--limit", type=click.IntRange(min=1, max=100_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (full reasons and payloads).")
@pass_context
def dead_list(ctx: Context, queue: str | None, limit: int, as_json: bool) -> None:
    """Newest first: id, queue, attempts, when it failed, and its reason's first line."""
    found = ctx.services.queue.dead_letters(queue, limit)
    if as_json:
        click.echo(json.dumps([dead_job_dict(d) for d in found], indent=2))
        return
    if not found:
        click.echo("no dead jobs" + (f" in {queue}" if queue else ""))
        return
    click.echo(f"{'id':<12} {'queue':<24} {'tries':>5}  {'failed at':<24} reason")
    for d in found:
        click.echo(
            f"{d.id:<12} {d.queue:<24} {d.attempts:>5}  {iso_utc(d.failed_at):<24} "
            f"{first_line(d.reason)[:200]}"
        )


def redrive_all(backend: QueueBackend, queue: str | None) -> tuple[int, int]:
    """Redrive every job that was dead when this started (jobs dying meanwhile are left for
    the next run, so a job that keeps failing cannot keep this going); returns (moved, seen).
    The backend lists dead jobs newest first, so the window grows past the ones that stay
    dead (their dedup key is held by a live job)."""
    started = time.time()
    tried: set[str] = set()
    moved = 0
    limit = REDRIVE_BATCH
    while True:
        batch = backend.dead_letters(queue, limit)
        fresh = [d.id for d in batch if d.id not in tried and d.failed_at <= started]
        if fresh:
            moved += backend.redrive(fresh)
            tried.update(fresh)
        if len(batch) < limit:
            return moved, len(tried)
        if not fresh:
            limit += REDRIVE_BATCH


@dead_letter.command("retry")
@click.argument("ids", nargs=-1)
@click.option("--all", "every", is_flag=True, help="Every dead job (of --queue, if given).")
@click.option("--queue", help="With --all: only this queue.")
@pass_context
def dead_retry(ctx: Context, ids: tuple[str, ...], every: bool, queue: str | None) -> None:
    """Send dead jobs back to their queues as fresh jobs (attempts from zero). A job whose
    dedup key is held by a live job stays dead; exits with 1 when some job did not move."""
    if every == bool(ids):
        raise click.UsageError("give dead job ids, or --all (not both)")
    if queue is not None and not every:
        raise click.UsageError("--queue goes with --all; ids name their jobs already")
    backend = ctx.services.queue
    if every:
        moved, seen = redrive_all(backend, queue)
    else:
        unique = list(dict.fromkeys(ids))
        moved, seen = backend.redrive(unique), len(unique)
    click.echo(f"{moved} of {seen} dead job(s) sent back to their queues")
    if moved < seen:
        raise click.ClickException(
            f"{seen - moved} stayed dead: unknown id, or a live job holds its dedup key"
        )
