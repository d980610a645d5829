"""The images app's declaration: what the engine runs, serves and shows for it.

The engine reads it whenever settings load, so it imports only `sleuth.app` at first; the
pipeline, API and CLI are imported when the engine asks for them. Queue names and the
in-flight blob kind live here for the same reason (the pipeline takes them from here)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sleuth.app import App, DemoRun, Outcome, StatusLine

if TYPE_CHECKING:
    import click
    from flask import Blueprint

    from sleuth.crawl.runs import JobFor
    from sleuth.jobs.worker import Kind
    from sleuth.net.fetcher import Fetcher
    from sleuth.services import Services

NAME = "images"
FETCH = "images.fetch"
MD5 = "images.md5"
GRAYSCALE = "images.grayscale"
STORE = "images.store"
STAGE_QUEUES = (FETCH, MD5, GRAYSCALE, STORE)
INFLIGHT_EXT = "orig"  # a downloaded original, kept until its image is stored


def _job_kinds(services: Services, fetcher: Fetcher) -> list[Kind]:
    from sleuth.apps.images.pipeline import ImagesPipeline

    return ImagesPipeline(services, fetcher).kinds()


def _blueprints() -> Sequence[Blueprint]:
    from sleuth.apps.images.api import blueprint

    return [blueprint]


def _cli() -> click.Group:
    from sleuth.apps.images.cli import images

    return images


def _status(services: Services) -> list[StatusLine]:
    """Stored images and their sources, and the crawled lines by outcome."""
    import sqlalchemy as sa

    from sleuth.apps.images.models import image_sources, images
    from sleuth.crawl.runs import app_outcomes

    with services.engine.connect() as conn:
        n_images = conn.execute(sa.select(sa.func.count()).select_from(images)).scalar_one()
        n_sources = conn.execute(sa.select(sa.func.count()).select_from(image_sources)).scalar_one()
        outcomes = app_outcomes(conn, NAME)
    lines = ", ".join(f"{k or 'in progress'} {v}" for k, v in sorted(outcomes.items(), key=str))
    return [
        StatusLine("images", f"{n_images} stored, {n_sources} source URLs"),
        StatusLine("lines", lines),
    ]


def _crawl_jobs() -> JobFor:
    from sleuth.apps.images.crawl import item_job

    return item_job


def _demo(run: DemoRun) -> None:
    from sleuth.apps.images.demo import demo_step

    demo_step(run)


app = App(
    name=NAME,
    description="The image crawler: MD5, exact grayscale, pHash, stored once per image.",
    migrations=Path(__file__).parent / "migrations",
    queues=STAGE_QUEUES,
    job_kinds=_job_kinds,
    blueprints=_blueprints,
    pages=(("images", "/"), ("search", "/search")),
    cli=_cli,
    status=_status,
    outcomes=(
        Outcome("success", "success", "#2b7bba"),
        Outcome("duplicate", "duplicate", "#a3acb5"),
        Outcome("error", "error", "#d7301f"),
    ),
    outcome_unit="images",
    inflight_blobs=(INFLIGHT_EXT,),
    demo=_demo,
    crawl_jobs=_crawl_jobs,
)
