"""A crawl of the generated power-law world (10k accounts) served by the emulated Mastodon
and Bluesky finds exactly the ground truth's nodes and edges around its seeds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from sleuth.apps.graph.cli import crawl_graph
from sleuth.apps.graph.jobs import F, Plan
from sleuth.apps.graph.models import graph_edges, graph_nodes
from sleuth.emulator import EmulatorServer, create_imagehost_app
from sleuth.emulator.artworld import Account
from sleuth.emulator.socialworld import SocialWorld
from sleuth.services import Services
from tests.apps.graph.conftest import graph_settings
from tests.apps.graph.truth import follower_graph, node


@pytest.fixture(scope="module")
def social() -> Iterator[tuple[SocialWorld, str]]:
    world = SocialWorld(0, accounts=10_000)
    with EmulatorServer(create_imagehost_app(0, world=world, rate_limits=False)) as url:
        yield world, url


def _seed(world: SocialWorld, network: str, least: int, most: int) -> Account:
    return next(
        a
        for a in world.accounts
        if a.network == network
        and not world.hides_collections(a)
        and least <= len(world.followers(a)) <= most
    )


def _graph(services: Services, network: str) -> tuple[set[str], set[tuple[str, str]]]:
    n, e = graph_nodes.c, graph_edges.c
    with services.engine.connect() as conn:
        nodes = set(conn.execute(sa.select(n.account_id).where(n.network == network)).scalars())
        edges = conn.execute(sa.select(e.src, e.dst).where(e.network == network)).all()
    return nodes, {(src, dst) for src, dst in edges}


@pytest.mark.slow
def test_a_crawl_finds_exactly_the_ground_truth(
    social: tuple[SocialWorld, str], tmp_path: Path
) -> None:
    world, url = social
    bluesky = _seed(world, "bluesky", 20, 60)
    mastodon = _seed(world, "mastodon", 100, 300)  # its followers span pages
    services = Services(graph_settings(tmp_path, url))
    try:
        seeds = tmp_path / "seeds.txt"
        seeds.write_text(f"{bluesky.id}\n")
        assert crawl_graph(services, seeds, Plan((F,), depth=1))[1].finished
        crawled = {bluesky.id} | {a.id for a in world.followers(bluesky)}  # Bluesky: DIDs
        edges = {(s, d) for s, d in world.follow_edges("bluesky") if d in crawled}
        assert _graph(services, "bluesky") == (crawled | {s for s, _ in edges}, edges)
        assert _graph(services, "bluesky") == follower_graph(world, [bluesky], 1)

        seeds.write_text(f"{mastodon.acct}\n")
        assert crawl_graph(services, seeds, Plan((F,), depth=1))[1].finished
        nodes, edges = follower_graph(world, [mastodon], 1)  # remote ones read at home
        assert _graph(services, "mastodon") == (nodes, edges)
        assert {(s, d) for s, d in edges if d == node(mastodon)} == {
            (node(a), node(mastodon)) for a in world.followers(mastodon)
        }
    finally:
        services.close()


@pytest.mark.slow
def test_the_analysis_of_a_page_of_many_reads_their_counts_25_at_a_time(
    social: tuple[SocialWorld, str], tmp_path: Path
) -> None:
    world, url = social
    seed = _seed(world, "bluesky", 60, 100)  # one page of followers, getProfiles in 3-4 calls
    services = Services(graph_settings(tmp_path, url))
    try:
        seeds = tmp_path / "seeds.txt"
        seeds.write_text(f"https://bsky.app/profile/{seed.username}\n")
        plan = Plan((F,), analyse=True, select="followers_count >= 2", depth=1)
        assert crawl_graph(services, seeds, plan)[1].finished
        met = world.followers(seed)
        chosen = {a.id for a in met if len(world.followers(a)) >= 2}
        assert 0 < len(chosen) < len(met)
        n = graph_nodes.c
        with services.engine.connect() as conn:
            query = sa.select(n.account_id).where(n.state == "selected", n.depth == 1)
            assert set(conn.execute(query).scalars()) == chosen
        expected = {(f.id, seed.id) for f in met}
        expected |= {(s, d) for s, d in world.follow_edges("bluesky") if d in chosen}
        assert _graph(services, "bluesky")[1] == expected
    finally:
        services.close()
