"""The forum app's step in `sleuth demo`: an emulated Discourse forum crawled as `sleuth forum
crawl` crawls one, analyzed, its counts beside the forum's ground truth, and the dashboard's
URL."""

from __future__ import annotations

import dataclasses

import click
import sqlalchemy as sa

from sleuth.app import DemoRun
from sleuth.apps.forum.analytics import analyze
from sleuth.apps.forum.app import NAME
from sleuth.apps.forum.cli import crawl_forum
from sleuth.apps.forum.models import forum_posts, forum_sites, forum_topics
from sleuth.emulator.forums import Forum, Forums
from sleuth.emulator.imagehost import create_imagehost_app
from sleuth.emulator.server import EmulatorServer
from sleuth.services import Services
from sleuth.sources.discourse import forum_base

SEED = 0
FORUM = "demo"


def demo_step(run: DemoRun) -> None:
    """Serve a forum of `run.count` posts (default 2,000) on the offline web, crawl it with
    workers here at full speed (the emulator's rate limits off, and ours), analyze it, and
    print what was stored beside what the forum holds."""
    size = max(60, min(run.count or 2000, 100_000))
    forum = Forum(SEED, size)
    forums = Forums({FORUM: forum}, rate_limits=False)
    emulator = EmulatorServer(create_imagehost_app(SEED, forums=forums))
    url = emulator.start()
    run.cleanup.callback(emulator.stop)
    settings = run.services.settings
    unpaced = dataclasses.replace(settings.app(NAME), discourse_per_minute=0.0)
    services = Services(dataclasses.replace(settings, apps={**settings.apps, NAME: unpaced}))
    run.cleanup.callback(services.close)
    base = forum_base(f"{url}/discourse/{FORUM}")
    click.echo(f"Discourse forum (offline) {base}/latest  (about {size} posts)")
    final = crawl_forum(services, f"{base}/latest")
    report = analyze(services.engine)
    with services.engine.connect() as conn:
        site = conn.execute(
            sa.select(forum_sites.c.id).where(
                (forum_sites.c.kind == "discourse") & (forum_sites.c.url == base)
            )
        ).scalar_one()
        topics, posts = (
            conn.execute(
                sa.select(sa.func.count()).select_from(table).where(table.c.site_id == site)
            ).scalar_one()
            for table in (forum_topics, forum_posts)
        )
    truth = forum.ground_truth()
    click.echo(
        f"\nCrawled {final.count('crawled')} topics ({final.count('error')} failed): "
        f"{topics} topics, {posts} posts stored; {report.keys} (board, day, user) keys analyzed."
    )
    click.echo(f"The forum holds {truth.topics} topics, {truth.posts} posts.")
    click.echo(f"\nOpen {run.web_url}/forum?site={site}  the dashboard")
    click.echo(f"     {run.web_url}/api/forum/      potstats2's JSON API")
