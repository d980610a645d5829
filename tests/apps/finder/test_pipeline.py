"""The finder end to end on the offline web: an artwork page's URL → the link finder → scans
of the artist's accounts on emulated X, Mastodon and Bluesky → indexed images → the posts
that contain the artwork, scored against the world's ground truth."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sleuth.apps.finder import requests as reqs
from sleuth.apps.finder.cli import run_query
from sleuth.apps.finder.models import accounts, images
from sleuth.apps.finder.settings import NAME, FinderSettings
from sleuth.config import Settings, SourcesSettings, WorkerSettings
from sleuth.emulator import EmulatorServer, create_imagehost_app
from sleuth.emulator.artworld import ArtWorld
from sleuth.emulator.cli import emulator_sources
from sleuth.services import Services

SEED = 3


@pytest.fixture(scope="module")
def web() -> Iterator[tuple[ArtWorld, str]]:
    world = ArtWorld(seed=SEED, artists=4, artworks_per_artist=2, posts_per_account=10)
    with EmulatorServer(create_imagehost_app(SEED, world=world, rate_limits=False)) as url:
        yield world, url


def finder_services(tmp_path: Path, url: str) -> Services:
    base = Settings(data_dir=tmp_path / "data")
    return Services(
        dataclasses.replace(
            base,
            net=dataclasses.replace(base.net, allow_private=True, retries=0),
            sources=SourcesSettings(**emulator_sources(url)),
            worker=WorkerSettings(concurrency=16, processes=1),
            apps={**base.apps, NAME: FinderSettings()},
        )
    )


def query(services: Services, url: str) -> reqs.FinderRequest:
    """Ask for `url` and run the finder's workers here until the request ends."""
    return run_query(services, url, quiet=True, handle_signals=False)


def scans_of(services: Services) -> dict[tuple[str, str], float | None]:
    with services.engine.connect() as conn:
        rows = conn.execute(
            sa.select(accounts.c.network, accounts.c.account_id, accounts.c.scanned_at)
        ).all()
    return {(r.network, r.account_id): r.scanned_at for r in rows}


def found_posts(request: reqs.FinderRequest) -> set[tuple[str, str, str]]:
    return {(r["network"], r["tweet_id"], r["image_position"]) for r in request.results}


def truth_posts(entry: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(p["network"], p["post_id"], p["image_position"]) for p in entry["posts"]}


def test_a_query_finds_the_artists_posts_that_contain_the_artwork(
    web: tuple[ArtWorld, str], tmp_path: Path
) -> None:
    world, url = web
    services = finder_services(tmp_path, url)
    try:
        truth = [e for e in world.ground_truth() if e["posts"]]
        entry = truth[0]
        site = sorted(entry["pages"])[0]
        done = query(services, world.page_url(world.artworks[entry["artwork"]], site))
        assert done.error is None, done.error
        assert done.status == reqs.END and done.has_first_time_scan
        names = {(a["network"], a["account_id"]) for a in done.accounts}
        assert names == {(a["network"], a["account_id"]) for a in entry["accounts"]}
        assert truth_posts(entry) <= found_posts(done)
        distances = [r["distance"] for r in done.results]
        assert distances == sorted(distances)
        with services.engine.connect() as conn:
            scanned = conn.execute(
                sa.select(sa.func.count()).where(accounts.c.scanned_at.is_not(None))
            ).scalar_one()
            pending = conn.execute(
                sa.select(sa.func.count()).where(images.c.state == "pending")
            ).scalar_one()
        assert scanned == len(names) and pending == 0

        # Another artwork of the same artist: the accounts are indexed, no first-time scan,
        # and, the artwork being older than the scans, no scan at all.
        other = next(e for e in truth if e["artist"] == entry["artist"] and e is not entry)
        page = world.page_url(world.artworks[other["artwork"]], sorted(other["pages"])[0])
        before = scans_of(services)
        again = query(services, page)
        assert again.error is None and not again.has_first_time_scan
        assert truth_posts(other) <= found_posts(again)
        assert scans_of(services) == before
    finally:
        services.close()


def test_sleuth_finder_query_prints_the_posts_and_aotf_s_json(
    web: tuple[ArtWorld, str], tmp_path: Path
) -> None:
    import json
    import os
    import subprocess
    import sys

    world, url = web
    entry = next(e for e in world.ground_truth() if e["posts"])
    page = world.page_url(world.artworks[entry["artwork"]], sorted(entry["pages"])[0])
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLEUTH_")}
    env.update({f"SLEUTH_SOURCES_{k.upper()}": v for k, v in emulator_sources(url).items()})
    env.update(SLEUTH_DATA_DIR=str(tmp_path / "data"), SLEUTH_NET_ALLOW_PRIVATE="1")
    env.update(SLEUTH_WORKER_PROCESSES="1")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "sleuth.cli", "finder", "query", page, *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )

    shown = run()
    assert shown.returncode == 0, shown.stderr
    assert "END" in shown.stderr  # the statuses as they advance
    for post in entry["posts"]:
        assert post["post_url"] in shown.stdout
    answer = json.loads(run("--json").stdout)  # the same request, finished: no new work
    assert answer["status"] == "END" and answer["error"] is None
    assert {r["tweet_id"] for r in answer["results"]} >= {p["post_id"] for p in entry["posts"]}
