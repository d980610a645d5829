"""A graph crawl bound to several local addresses (`[net] source_addresses`, Twittomatic's
multi-IP setup on loopback aliases) spreads its requests over them, each under its own
emulated ceiling: a crawl that would overrun one address's window finishes on two without a
single 429."""

from __future__ import annotations

import dataclasses
import math
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from flask import Flask

from sleuth.apps.graph.cli import crawl_graph
from sleuth.apps.graph.jobs import Crawler, F, GraphJob, Plan, T, account_item
from sleuth.apps.graph.models import graph_edges
from sleuth.cli.main import cli
from sleuth.emulator import EmulatorServer, create_imagehost_app
from sleuth.emulator.artworld import ArtWorld
from sleuth.emulator.cli import emulator_sources
from sleuth.emulator.imagehost import SOCIAL
from sleuth.emulator.mastodon import LIMIT
from sleuth.emulator.ratelimits import Limiter
from sleuth.emulator.x_api import XEmulator, x_blueprint
from sleuth.jobs.worker import JobContext, Retry
from sleuth.net.fetcher import Fetcher
from sleuth.services import Services
from sleuth.sources.x import cap_period_end
from tests.apps.graph.conftest import graph_settings
from tests.apps.graph.truth import follower_graph, followers

WINDOWS = 1000.0  # no window ends during the test: a spent budget stays spent
ADDRESSES = ("127.0.0.2", "127.0.0.3")


def _crawl(
    tmp: Path, world: ArtWorld, quota: int, addresses: tuple[str, ...]
) -> tuple[Services, Limiter, bool]:
    """Crawl a Mastodon seed's followers to depth 1 through an emulator allowing `quota`
    requests a window per address, from `addresses`; the services, the emulator's
    limiter and whether the crawl finished."""
    app = create_imagehost_app(
        0, world=world, window_scale=WINDOWS, quota_scale=quota / LIMIT.requests
    )
    seed = next(a for a in world.accounts if a.network == "mastodon" and followers(world, a))
    tmp.mkdir()
    seeds = tmp / "seeds.txt"
    seeds.write_text(f"{seed.acct}\n")
    with EmulatorServer(app) as url:
        settings = graph_settings(tmp / "data", url)
        net = dataclasses.replace(settings.net, source_addresses=addresses)
        services = Services(dataclasses.replace(settings, net=net))
        _run, final = crawl_graph(services, seeds, Plan((F,), depth=1))
    return services, app.extensions[SOCIAL]["mastodon"].limiter, final.finished


def _served(limiter: Limiter) -> Counter[str]:
    """Mastodon API requests served per client address (the whole-API buckets)."""
    served: Counter[str] = Counter()
    for (bucket, client, _start), count in limiter.served().items():
        if not bucket.endswith(" paging"):
            served[client] += count
    return served


def _edges(services: Services) -> set[tuple[str, str]]:
    with services.engine.connect() as conn:
        rows = conn.execute(sa.select(graph_edges.c.src, graph_edges.c.dst)).all()
    return {(src, dst) for src, dst in rows}


def test_two_addresses_share_the_crawl_and_each_stays_under_its_ceiling(tmp_path: Path) -> None:
    world = ArtWorld(0)
    seed = next(a for a in world.accounts if a.network == "mastodon" and followers(world, a))
    _nodes, edges = follower_graph(world, [seed], 1)
    # How many requests the crawl takes, with room to spare on both addresses.
    roomy, limiter, finished = _crawl(tmp_path / "roomy", world, LIMIT.requests, ADDRESSES)
    try:
        assert finished and _edges(roomy) == edges
    finally:
        roomy.close()
    served = _served(limiter)
    total = sum(served.values())
    assert set(served) == set(ADDRESSES) and min(served.values()) >= total // 3, served
    assert not limiter.refused()
    # A ceiling of a bit over half of them per address: two addresses finish, no 429 sent.
    quota = math.ceil(total / 2) + 2
    shared, limiter, finished = _crawl(tmp_path / "shared", world, quota, ADDRESSES)
    try:
        assert finished and _edges(shared) == edges
    finally:
        shared.close()
    assert max(_served(limiter).values()) <= quota
    assert not limiter.refused()


def test_the_command_binds_to_the_source_addresses_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = ArtWorld(0)
    seed = next(a for a in world.accounts if a.network == "mastodon" and followers(world, a))
    seeds = tmp_path / "seeds.txt"
    seeds.write_text(f"{seed.acct}\n")
    app = create_imagehost_app(0, world=world, window_scale=WINDOWS)
    with EmulatorServer(app) as url:
        for name, value in emulator_sources(url).items():
            monkeypatch.setenv(f"SLEUTH_SOURCES_{name.upper()}", value)
        monkeypatch.setenv("SLEUTH_DATA_DIR", str(tmp_path / "data"))
        monkeypatch.setenv("SLEUTH_NET_ALLOW_PRIVATE", "true")
        monkeypatch.setenv("SLEUTH_WORKER_PROCESSES", "1")
        crawl = ["graph", "crawl", "--seeds", str(seeds), "-F", "--depth", "1"]
        bad = CliRunner().invoke(cli, [*crawl, "--source-address", "eth0"])
        assert bad.exit_code == 2 and "'eth0' is not an IP address" in bad.output
        addresses = [arg for a in ADDRESSES for arg in ("--source-address", a)]
        result = CliRunner().invoke(cli, [*crawl, *addresses])
        assert result.exit_code == 0, result.output
    served = _served(app.extensions[SOCIAL]["mastodon"].limiter)
    assert set(served) == set(ADDRESSES), served


@pytest.mark.anyio
async def test_a_job_over_xs_usage_cap_waits_for_the_next_month_without_failing(
    tmp_path: Path,
) -> None:
    """The cap's 429 postpones the job (not a failed attempt: five would kill it) until the
    month's end, and blocks X: the same job asks nothing more of it meanwhile."""
    world = ArtWorld(0)
    seed = next(a for a in world.accounts if a.network == "x" and not a.private)
    emulator = XEmulator(world, post_cap=0)
    app = Flask(__name__)
    app.register_blueprint(x_blueprint(emulator))
    with EmulatorServer(app) as url:
        services = Services(graph_settings(tmp_path, url))
        try:
            async with Fetcher(services.settings.net) as fetcher:
                crawler = Crawler(services, fetcher)
                item = account_item("run", T, "x", seed.id, 0, Plan((T,), depth=0))
                job = GraphJob(item.run, item.key, item.target)
                no_context = cast(JobContext, None)  # a T job sends no other jobs
                with pytest.raises(Retry) as first:
                    await crawler.handle(job, no_context)
                asked = sum(emulator.limiter.served().values())
                with pytest.raises(Retry) as again:
                    await crawler.handle(job, no_context)
        finally:
            services.close()
    assert "usage cap reached (monthly)" in first.value.reason
    month_end = cap_period_end("Monthly", time.time())
    assert month_end - 60 <= time.time() + first.value.after <= month_end + 1
    assert again.value.after > 0
    assert sum(emulator.limiter.served().values()) == asked


def test_a_crawl_whose_jobs_wait_for_the_cap_ends_and_says_until_when(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = ArtWorld(0)
    seed = next(a for a in world.accounts if a.network == "x" and not a.private)
    seeds = tmp_path / "seeds.txt"
    seeds.write_text(f"{seed.id}\n")
    app = Flask(__name__)
    app.register_blueprint(x_blueprint(XEmulator(world, post_cap=0)))
    with EmulatorServer(app) as url:
        services = Services(graph_settings(tmp_path / "data", url))
        try:
            _run, final = crawl_graph(services, seeds, Plan((T,), depth=0))
            assert not final.finished and final.count("crawled") == 1  # the seed, not its T
            month_end = datetime.fromtimestamp(cap_period_end("Monthly", time.time()), UTC)
            said = capsys.readouterr().err
            assert f"1 job(s) wait until {month_end:%Y-%m-%dT%H:%M:%S}" in said
            (waiting,) = [s for s in services.queue.stats() if s.delayed]
            assert waiting.next_due_in is not None and waiting.next_due_in > 0
            assert waiting.queue == "graph.timeline"
        finally:
            services.close()
