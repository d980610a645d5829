"""`sleuth finder ...`: AOTF's console commands `query`, `scan` and `search`, each run to its
end with the finder's workers in this process (or, with `--workers 0`, followed while the
workers of other machines do the work)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path

import click
import sqlalchemy as sa

from sleuth.apps.finder import requests as reqs
from sleuth.apps.finder.aotf import QUERY_BLOB
from sleuth.apps.finder.models import accounts
from sleuth.apps.finder.settings import NAME
from sleuth.apps.finder.tasks import LINK, SCAN, SEARCH, RequestJob, ScanJob
from sleuth.cli.context import Context, pass_context
from sleuth.runner import app_queues, run_worker
from sleuth.services import Services

CLI_ADDRESS = "cli"  # the requests of this command: exempt from per-address limits
POLL = 0.2  # seconds between two looks at the request


@click.group()
def finder() -> None:
    """The artwork finder: which posts of the artist's X, Mastodon and Bluesky accounts
    contain an artwork (Artists on Twitter Finder)."""


def _run_until(
    services: Services, done: Callable[[], bool], workers: int, handle_signals: bool = True
) -> None:
    """Run the finder's workers here until `done()` (or only wait, with no workers)."""

    async def wait() -> None:
        while not done():
            await asyncio.sleep(POLL)

    if workers:
        asyncio.run(
            run_worker(services, queues=app_queues(NAME), until=done, handle_signals=handle_signals)
        )
    else:
        asyncio.run(wait())


def _follow(
    services: Services, request_id: str, workers: int, quiet: bool, handle_signals: bool = True
) -> reqs.FinderRequest:
    """Run or wait until the request ends, telling each new status."""
    seen: list[int] = []

    def done() -> bool:
        with services.engine.connect() as conn:
            found = reqs.get(conn, request_id, time.time())
        if found is None:
            raise click.ClickException(f"request {request_id} is gone")
        if not quiet and (not seen or seen[-1] != found.status):
            seen.append(found.status)
            click.echo(f"  {reqs.STATUSES[found.status]}", err=True)
        return found.finished

    _run_until(services, done, workers, handle_signals)
    with services.engine.connect() as conn:
        final = reqs.get(conn, request_id, time.time())
    assert final is not None
    return final


def _show(request: reqs.FinderRequest, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(request.aotf(), indent=2))
        return
    if request.error:
        raise click.ClickException(request.error)
    for account in request.accounts:
        click.echo(f"account  {account['network']:<9} {account['account_name']}  {account['url']}")
    if not request.results:
        click.echo("no post contains it")
    for r in request.results:
        mirrored = "  (mirrored)" if r.get("mirrored") else ""
        click.echo(
            f"distance {r['distance']:>2}  image {r['image_position']:<4} {r['post_url']}{mirrored}"
        )


def run_query(
    services: Services,
    url: str,
    *,
    workers: int = 1,
    quiet: bool = False,
    handle_signals: bool = True,
) -> reqs.FinderRequest:
    """Ask for `url` (or find its request) and run or wait until it ends (the CLI, the demo,
    tests and the benchmark all ask this way)."""
    found, _ = reqs.open_request(
        services.engine, reqs.query_id(url), "query", CLI_ADDRESS, time.time(), url=url
    )
    assert found is not None  # no per-address limit here
    if found.finished:
        return found
    services.queue.send(LINK, RequestJob(found.id), dedup_key=f"link:{found.id}")
    return _follow(services, found.id, workers, quiet, handle_signals)


@finder.command()
@click.argument("url")
@click.option("--workers", type=click.IntRange(0, 1), default=1, show_default=True,
              help="0: only follow; the workers run elsewhere.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print AOTF's JSON answer.")
@pass_context
def query(ctx: Context, url: str, workers: int, as_json: bool) -> None:
    """Find the posts that contain the artwork of the page at URL."""
    _show(run_query(ctx.services, url, workers=workers, quiet=as_json), as_json)


@finder.command()
@click.argument("image", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("account", required=False)
@click.option("--workers", type=click.IntRange(0, 1), default=1, show_default=True,
              help="0: only follow; the workers run elsewhere.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print AOTF's JSON answer.")
@pass_context
def search(ctx: Context, image: Path, account: str | None, workers: int, as_json: bool) -> None:
    """Search the image file IMAGE among the indexed posts (of ACCOUNT only, if given)."""
    services = ctx.services
    request_id, _ = reqs.new_search_id()
    services.blobs.put(request_id, QUERY_BLOB, image.read_bytes(), overwrite=True)
    name = account.strip().lower().lstrip("@") if account else None
    found, _ = reqs.open_request(
        services.engine, request_id, "search", CLI_ADDRESS, time.time(), account_name=name
    )
    assert found is not None
    services.queue.send(SEARCH, RequestJob(found.id), dedup_key=f"search:{found.id}")
    _show(_follow(services, found.id, workers, as_json), as_json)


@finder.command()
@click.argument("account")
@click.option("--workers", type=click.IntRange(0, 1), default=1, show_default=True,
              help="0: only follow; the workers run elsewhere.")  # fmt: skip
@pass_context
def scan(ctx: Context, account: str, workers: int) -> None:
    """Index the posts of ACCOUNT (a profile URL, or @user@server for Mastodon) now."""
    from sleuth.apps.finder.scans import ask_for_scan

    services = ctx.services
    try:
        network, account_id, acct = asyncio.run(ask_for_scan(services, account))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    key = f"scan:{network}:{account_id}"
    services.queue.send(SCAN, ScanJob(network, account_id), dedup_key=key)
    click.echo(f"scanning {network} {acct}", err=True)

    def done() -> bool:
        with services.engine.connect() as conn:
            row = conn.execute(
                sa.select(
                    accounts.c.scanned_at, accounts.c.scan_wanted_at, accounts.c.scan_error
                ).where(accounts.c.network == network, accounts.c.account_id == account_id)
            ).one()
        return row.scan_wanted_at is None or (
            row.scanned_at is not None and row.scanned_at >= row.scan_wanted_at
        )

    _run_until(services, done, workers)
    with services.engine.connect() as conn:
        row = conn.execute(
            sa.select(accounts.c.scan_error).where(
                accounts.c.network == network, accounts.c.account_id == account_id
            )
        ).one()
    if row.scan_error:
        raise click.ClickException(f"the scan failed: {row.scan_error}")
    click.echo(f"{network} {acct}: scanned")
