"""Kill -9 mid-crawl, then the same command: the graph ends exactly the world's, every
follower page answered once across both runs (each page was committed with its cursor), and
a third run adds no edge."""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from sleuth.apps.graph.models import graph_cursors, graph_edges, graph_nodes
from sleuth.emulator import EmulatorServer, create_imagehost_app
from sleuth.emulator.artworld import ArtWorld
from sleuth.emulator.cli import emulator_sources
from tests.apps.graph.truth import follower_graph, followers
from tests.apps.images.test_crawl_e2e import run_cli
from tests.patience import PATIENCE, wait_for


class Holding:
    """WSGI middleware counting the follower pages answered; after `hold_after` of them the
    next ones wait until `release` is set (the first crawl cannot end before it is killed)."""

    def __init__(self, app, hold_after: int) -> None:  # type: ignore[no-untyped-def]
        self.app, self.hold_after = app, hold_after
        self.answered: Counter[str] = Counter()
        self.held = 0
        self.lock = threading.Lock()
        self.release = threading.Event()

    def __call__(self, environ, start_response):  # type: ignore[no-untyped-def]
        path = environ["PATH_INFO"]
        if path.endswith("/followers"):
            with self.lock:
                total = sum(self.answered.values())
                hold = not self.release.is_set() and total >= self.hold_after
                self.held += hold
                if not hold:
                    self.answered[path + "?" + environ.get("QUERY_STRING", "")] += 1
            if hold:  # answered, once released, to a crawl killed meanwhile: not counted
                self.release.wait(PATIENCE)
        return self.app(environ, start_response)


def _count(url: str, query: sa.Select) -> int:  # type: ignore[type-arg]
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(query).scalar_one() or 0)
    finally:
        engine.dispose()


@pytest.mark.slow
def test_kill_9_then_the_same_command_finishes_the_worlds_graph(tmp_path: Path) -> None:
    world = ArtWorld(0)
    seed = next(a for a in world.accounts if a.network == "mastodon" and followers(world, a))
    nodes, edges = follower_graph(world, [seed], 1)
    pages = 1 + len(followers(world, seed))  # world 0's lists fit one page each
    host = Holding(create_imagehost_app(0, world=world, rate_limits=False), hold_after=3)
    seeds = tmp_path / "seeds.txt"
    seeds.write_text(f"{seed.acct}\n")
    data = tmp_path / "data"
    database = data / "sleuth.db"
    url = f"sqlite:///{database}"
    committed = sa.select(sa.func.sum(graph_cursors.c.pages))
    with EmulatorServer(host) as base:
        env = {f"SLEUTH_SOURCES_{k.upper()}": v for k, v in emulator_sources(base).items()}
        env |= {"SLEUTH_WORKER_LEASE_SECONDS": "3", "SLEUTH_WORKER_PROCESSES": "1"}
        command = ["graph", "crawl", "--seeds", str(seeds), "-F", "--depth", "1"]
        first = run_cli(command, data, env)
        # Killed once a page is held and every page answered is committed with its cursor.
        wait_for(lambda: host.held > 0, "a follower page held")
        wait_for(lambda: _count(url, committed) == 3, "the 3 answered pages committed")
        assert first.poll() is None, "the first run ended before it could be killed"
        os.killpg(first.pid, signal.SIGKILL)
        first.communicate(timeout=PATIENCE)
        host.release.set()

        second = run_cli(command, data, env)
        out, _ = second.communicate(timeout=PATIENCE)
        assert second.returncode == 0, out
        assert host.answered and max(host.answered.values()) == 1  # no page answered twice
        assert sum(host.answered.values()) == pages

        third = run_cli(command, data, env)
        out, _ = third.communicate(timeout=PATIENCE)
        assert third.returncode == 0, out
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        stored = set(conn.execute(sa.select(graph_edges.c.src, graph_edges.c.dst)).all())
        met = set(conn.execute(sa.select(graph_nodes.c.account_id)).scalars())
    engine.dispose()
    assert stored == edges and met == nodes
    assert sum(host.answered.values()) == pages  # the third run read no page
