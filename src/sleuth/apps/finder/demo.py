"""The finder's step in `sleuth demo`: the offline web's artists, one artwork page asked
for end to end, and its result beside the world's ground truth."""

from __future__ import annotations

import dataclasses
from urllib.parse import quote

import click

from sleuth.app import DemoRun
from sleuth.apps.finder.cli import run_query
from sleuth.config import SourcesSettings
from sleuth.emulator.artworld import ArtWorld
from sleuth.emulator.cli import emulator_sources
from sleuth.emulator.imagehost import create_imagehost_app
from sleuth.emulator.server import EmulatorServer
from sleuth.services import Services

SEED = 0


def demo_step(run: DemoRun) -> None:
    """Serve a small artists' world, point every connector at it, query one artwork page
    with workers here and print the posts found and the posts that contain it."""
    world = ArtWorld(seed=SEED, artists=max(2, min(run.count or 4, 40)), posts_per_account=12)
    emulator = EmulatorServer(create_imagehost_app(SEED, world=world, rate_limits=False))
    url = emulator.start()
    run.cleanup.callback(emulator.stop)
    sources = SourcesSettings(**emulator_sources(url))
    services = Services(dataclasses.replace(run.services.settings, sources=sources))
    run.cleanup.callback(services.close)
    entry = next(e for e in world.ground_truth() if e["posts"])
    site = sorted(entry["pages"])[0]
    page = world.page_url(world.artworks[entry["artwork"]], site)
    click.echo(f"artists' world (offline) {url}  ({len(world.artists)} artists)")
    click.echo(f"artwork page             {page}")
    done = run_query(services, page)
    if done.error:
        click.echo(f"the query ended with {done.error}")
        return
    click.echo(f"\nFound {len(done.results)} posts on {len(done.accounts)} accounts:")
    for r in done.results:
        mirrored = " (mirrored)" if r["mirrored"] else ""
        click.echo(
            f"  distance {r['distance']:>2}  {r['image_position']:<4} {r['post_url']}{mirrored}"
        )
    truth = {(p["network"], p["post_id"]) for p in entry["posts"]}
    found = {(r["network"], r["tweet_id"]) for r in done.results}
    click.echo(f"The world says {len(truth)} posts contain it; {len(truth & found)} were found.")
    click.echo(f"\nOpen {run.web_url}/api/finder/query?url={quote(page, safe='')}")
