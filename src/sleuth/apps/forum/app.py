"""The forum app's declaration: what the engine runs, serves and shows for it.

The engine reads it whenever settings load, so it imports only `sleuth.app` at first; the
crawlers and the command are imported when the engine asks for them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sleuth.app import App, DemoRun, Outcome, StatusLine

if TYPE_CHECKING:
    from collections.abc import Sequence

    import click
    from flask import Blueprint

    from sleuth.config import Settings
    from sleuth.crawl.runs import JobFor
    from sleuth.jobs.schedule import Periodic
    from sleuth.jobs.worker import Kind
    from sleuth.net.fetcher import Fetcher
    from sleuth.services import Services

NAME = "forum"
TOPIC_QUEUE = "forum.topic"
ANALYTICS_QUEUE = "forum.analytics"
CRAWLED = "crawled"  # a topic's outcome; a failed one counts as the crawl layer's "error"


@dataclass(frozen=True)
class ForumSettings:
    # Requests a minute a Discourse crawl keeps under, for all its workers together:
    # Discourse's default max_reqs_per_ip_per_minute; 0 sends as fast as the forum answers.
    discourse_per_minute: float = 200.0
    # Seconds between analytics passes of a running deployment (each recomputes only what the
    # crawls since the last one changed; `sleuth forum crawl` also runs one when it ends).
    analytics_every: float = 60.0
    # Bytes of API answers a process keeps when the queue is not Redis (Redis: shared, expiring).
    cache_bytes: int = 64 * 1024 * 1024


def _job_kinds(services: Services, fetcher: Fetcher) -> list[Kind]:
    from sleuth.apps.forum.jobs import analytics_kind, topic_kind

    return [topic_kind(services, fetcher), analytics_kind(services)]


def _periodic(settings: Settings) -> Sequence[Periodic]:
    """Analytics of what crawls changed, every `analytics_every` seconds."""
    from sleuth.apps.forum.jobs import ANALYZE, Analyze
    from sleuth.jobs.schedule import Periodic

    every = settings.app(NAME).analytics_every
    return [Periodic("forum.analytics", ANALYZE, Analyze("periodic"), every)]


def _blueprints() -> Sequence[Blueprint]:
    from sleuth.apps.forum.api import blueprints
    from sleuth.apps.forum.page import blueprint as page

    return [*blueprints(), page]


def _cli() -> click.Group:
    from sleuth.apps.forum.cli import forum

    return forum


def _crawl_jobs() -> JobFor:
    from sleuth.apps.forum.jobs import item_job

    return item_job


def _status(services: Services) -> list[StatusLine]:
    """Crawled forums and what they hold."""
    import sqlalchemy as sa

    from sleuth.apps.forum.models import forum_posts, forum_sites, forum_topics, forum_users

    def count(conn: sa.Connection, table: sa.Table) -> int:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())

    with services.engine.connect() as conn:
        sites, topics = count(conn, forum_sites), count(conn, forum_topics)
        posts, users = count(conn, forum_posts), count(conn, forum_users)
    return [StatusLine("forums", f"{sites} crawled: {topics} topics, {posts} posts, {users} users")]


def _demo(run: DemoRun) -> None:
    from sleuth.apps.forum.demo import demo_step

    demo_step(run)


app = App(
    name=NAME,
    description="Forums (Discourse, the bB XML API) crawled into SQL, for their statistics.",
    settings=ForumSettings,
    migrations=Path(__file__).parent / "migrations",
    queues=(TOPIC_QUEUE, ANALYTICS_QUEUE),
    job_kinds=_job_kinds,
    periodic=_periodic,
    blueprints=_blueprints,
    pages=(("forum", "/forum"),),
    cli=_cli,
    status=_status,
    demo=_demo,
    outcomes=(Outcome(CRAWLED, "crawled", "#1b9e77"), Outcome("error", "error", "#d7301f")),
    outcome_unit="topics",
    crawl_jobs=_crawl_jobs,
)
