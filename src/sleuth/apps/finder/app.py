"""The finder app's declaration: from an artwork's page to the posts that contain it, on the
artist's X, Mastodon and Bluesky accounts (Artists on Twitter Finder, rebuilt).

Imports only `sleuth.app` and the stdlib-only settings at first; the rest is imported when
the engine asks for it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sleuth.app import App, DemoRun, StatusLine
from sleuth.apps.finder.settings import NAME, FinderSettings

if TYPE_CHECKING:
    import click
    from flask import Blueprint

    from sleuth.config import Settings
    from sleuth.jobs.schedule import Periodic
    from sleuth.jobs.worker import Kind
    from sleuth.net.fetcher import Fetcher
    from sleuth.services import Services

# The queues (apps/finder/tasks.py has their tasks; named here so reading the declaration
# imports no more than this module and the settings).
QUEUES = ("finder.link", "finder.scan", "finder.index", "finder.search", "finder.maintain")


def _job_kinds(services: Services, fetcher: Fetcher) -> Sequence[Kind]:
    from sleuth.apps.finder.pipeline import FinderPipeline

    return FinderPipeline(services, fetcher).kinds()


def _periodic(settings: Settings) -> Sequence[Periodic]:
    """AOTF's maintenance threads: updates of accounts not scanned for `update_days` (hourly,
    a share each time), failed images again every `retry_images_hours`, finished requests
    forgotten every 10 minutes."""
    from sleuth.apps.finder.tasks import MAINTAIN, Chore
    from sleuth.jobs.schedule import Periodic

    section: FinderSettings = settings.app(NAME)
    return [
        Periodic("finder.update", MAINTAIN, Chore("update"), 3600.0),
        Periodic("finder.retry", MAINTAIN, Chore("retry"), section.retry_images_hours * 3600.0),
        Periodic("finder.purge", MAINTAIN, Chore("purge"), 600.0),
    ]


def _blueprints() -> Sequence[Blueprint]:
    from sleuth.apps.finder.aotf import blueprint as aotf
    from sleuth.apps.finder.api import blueprint as api
    from sleuth.apps.finder.page import blueprint as page

    return [api, aotf, page]


def _cli() -> click.Group:
    from sleuth.apps.finder.cli import finder

    return finder


def _status(services: Services) -> Sequence[StatusLine]:
    """What is indexed, what is waiting, AOTF's /stats in lines."""
    import sqlalchemy as sa

    from sleuth.apps.finder.models import accounts, images, posts
    from sleuth.apps.finder.requests import counts

    with services.engine.connect() as conn:
        n_accounts = conn.execute(
            sa.select(sa.func.count()).where(accounts.c.scanned_at.is_not(None))
        ).scalar_one()
        n_posts = conn.execute(sa.select(sa.func.count()).select_from(posts)).scalar_one()
        states = dict(
            conn.execute(sa.select(images.c.state, sa.func.count()).group_by(images.c.state)).all()
        )
        open_requests = counts(conn)
    by_state = ", ".join(f"{n} {state}" for state, n in sorted(states.items())) or "none"
    return [
        StatusLine("finder", f"{n_accounts} accounts indexed, {n_posts} posts; images {by_state}"),
        StatusLine(
            "requests",
            f"{open_requests['query']} queries, {open_requests['search']} searches in progress",
        ),
    ]


def _demo(run: DemoRun) -> None:
    from sleuth.apps.finder.demo import demo_step

    demo_step(run)


app = App(
    name=NAME,
    description="The artwork finder: which posts of the artist's accounts contain an artwork.",
    settings=FinderSettings,
    migrations=Path(__file__).parent / "migrations",
    queues=QUEUES,
    job_kinds=_job_kinds,
    periodic=_periodic,
    blueprints=_blueprints,
    pages=(("finder", "/finder"),),
    cli=_cli,
    status=_status,
    demo=_demo,
    # AOTF's console commands.
    console=(("query", "finder query"), ("scan", "finder scan"), ("search", "finder search")),
    inflight_blobs=("fquery",),  # aotf.QUERY_BLOB: an uploaded image waiting for its search
)
