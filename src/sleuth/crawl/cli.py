"""`sleuth <app> errors` and `sleuth <app> retry-errors`: the failed items of an app's
crawls, listed (a table, CSV or JSON) and queued again. Built per app by `error_commands`."""

from __future__ import annotations

import csv
import io
import json

import click

from sleuth.cli.context import Context, pass_context
from sleuth.crawl.failures import FIELDS, Failure, every_failure
from sleuth.crawl.retry import retry_failures
from sleuth.crawl.runs import JobFor, run_exists, runs_named

FORMATS = ("table", "csv", "json")

_crawl_option = click.option(
    "--crawl", "run", metavar="ID", help="Only this crawl's items (its id, or the id's start)."
)
_reason_option = click.option("--reason", metavar="R", help="Only failures with this reason.")


def _known_crawl(ctx: Context, app: str, run: str | None) -> str | None:
    """The full id of the crawl `run` names (its id or a unique prefix of it)."""
    if run is None:
        return None
    if not run:
        raise click.BadParameter("an empty crawl id names no crawl", param_hint="--crawl")
    with ctx.services.engine.connect() as conn:
        found = [run] if run_exists(conn, app, run) else runs_named(conn, app, run)
    if not found:
        raise click.BadParameter(f"no {app} crawl with id {run!r}", param_hint="--crawl")
    if len(found) > 1:
        raise click.BadParameter(
            f"{run!r} starts the ids of several {app} crawls; give more of it",
            param_hint="--crawl",
        )
    return found[0]


def _table(failures: list[Failure]) -> None:
    if not failures:
        click.echo("No failed items.")
        return
    rows = [
        (
            f.run[:12],
            f.key,
            f.reason,
            "-" if f.http_status is None else str(f.http_status),
            str(f.attempts),
            f.as_json()["last_failed"],
            f.target,
            f.message.splitlines()[0] if f.message else "",
        )
        for f in failures
    ]
    head = ("crawl", "item", "reason", "http", "tries", "last failed", "target", "message")
    widths = [max(len(r[i]) for r in (head, *rows)) for i in range(len(head) - 1)]
    for row in (head, *rows):
        cells = [cell.ljust(w) for cell, w in zip(row, widths, strict=False)]
        click.echo("  ".join([*cells, row[-1]]).rstrip())
    click.echo(f"{len(failures)} failed item{'s' if len(failures) != 1 else ''}.")


def error_commands(app: str, job_for: JobFor) -> list[click.Command]:
    """The `errors` and `retry-errors` commands of `app`, whose items `job_for` works on."""

    @click.command(
        "errors", help=f"List the items of {app} crawls that failed, and why, oldest first."
    )
    @_crawl_option
    @_reason_option
    @click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default="table",
        show_default=True,
        help="A table for people; CSV with a header row, or a JSON list, for programs.",
    )
    @pass_context
    def errors(ctx: Context, run: str | None, reason: str | None, fmt: str) -> None:
        run = _known_crawl(ctx, app, run)
        failures = every_failure(ctx.services.engine, app, run=run, reason=reason)
        if fmt == "json":  # streamed: a list of any length in bounded memory
            click.echo("[", nl=False)
            for i, failure in enumerate(failures):
                click.echo(("," if i else "") + "\n " + json.dumps(failure.as_json()), nl=False)
            click.echo("\n]")
        elif fmt == "csv":
            line = io.StringIO()
            writer = csv.DictWriter(line, fieldnames=FIELDS, lineterminator="\n")
            writer.writeheader()
            for failure in failures:
                writer.writerow(failure.as_json())
                click.echo(line.getvalue(), nl=False)
                line.seek(0)
                line.truncate()
            click.echo(line.getvalue(), nl=False)  # the header of an empty list
        else:
            _table(list(failures))

    @click.command(
        "retry-errors",
        help=f"Queue the failed items of {app} crawls again, for workers to run (`sleuth "
        f"worker`, or `sleuth {app}`'s crawl command). Running it twice queues nothing twice.",
    )
    @_reason_option
    @_crawl_option
    @pass_context
    def retry_errors(ctx: Context, reason: str | None, run: str | None) -> None:
        run = _known_crawl(ctx, app, run)
        services = ctx.services
        done = retry_failures(services.engine, services.queue, app, job_for, run=run, reason=reason)
        waiting = done.items - done.queued
        more = f" ({waiting} already queued)" if waiting > 0 else ""
        click.echo(f"{done.queued} failed item{'s' if done.queued != 1 else ''} re-queued{more}.")

    return [errors, retry_errors]
