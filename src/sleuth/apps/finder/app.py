"""The finder app's declaration: from an artwork's page to the posts that contain it, on the
artist's X, Mastodon and Bluesky accounts (Artists on Twitter Finder, rebuilt).

Imports only `sleuth.app` and the stdlib-only settings at first; the rest is imported when
the engine asks for it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sleuth.app import App, DemoRun
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

    return [api, aotf]


def _cli() -> click.Group:
    from sleuth.apps.finder.cli import finder

    return finder


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
    cli=_cli,
    demo=_demo,
    inflight_blobs=("fquery",),  # aotf.QUERY_BLOB: an uploaded image waiting for its search
)
