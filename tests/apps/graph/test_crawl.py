"""`sleuth graph crawl` end to end over loopback: seeds, T, F, following, A, U on workers
against the emulated Mastodon, Bluesky and X of world 0, on embedded SQLite."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import sqlalchemy as sa
from flask import Flask

from sleuth.apps.graph.cli import crawl_graph
from sleuth.apps.graph.jobs import DFS, FOLLOWING_OP, F, Plan, T
from sleuth.apps.graph.models import SELECTED, graph_cursors, graph_edges, graph_nodes
from sleuth.apps.graph.records import TIMELINE_EXT, timeline_key
from sleuth.config import load_settings
from sleuth.crawl.models import crawl_failures
from sleuth.emulator import EmulatorServer
from sleuth.emulator.artworld import Account, ArtWorld
from sleuth.emulator.cli import emulator_sources
from sleuth.emulator.x_api import XEmulator, x_blueprint
from sleuth.services import Services
from tests.apps.graph.conftest import graph_settings
from tests.apps.graph.truth import follower_graph, followers, node


def _edges(services: Services, network: str) -> set[tuple[str, str]]:
    e = graph_edges.c
    with services.engine.connect() as conn:
        rows = conn.execute(sa.select(e.src, e.dst).where(e.network == network)).all()
    return {(src, dst) for src, dst in rows}


def _nodes(services: Services, network: str) -> dict[str, str]:
    n = graph_nodes.c
    with services.engine.connect() as conn:
        rows = conn.execute(sa.select(n.account_id, n.state).where(n.network == network)).all()
    return dict(rows)


def _failures(services: Services) -> dict[str, str]:
    with services.engine.connect() as conn:
        query = sa.select(crawl_failures.c.item_key, crawl_failures.c.reason)
        return dict(conn.execute(query).all())


def _seed(world: ArtWorld, network: str, *, hidden: bool = False) -> Account:
    for account in world.accounts:
        same = account.network == network and world.hides_collections(account) == hidden
        if same and (hidden or followers(world, account)):
            return account
    raise AssertionError(f"world 0 has no such {network} account")


def _seeds(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "seeds.txt"
    path.write_text("# seeds\n" + "\n".join(lines) + "\n\n")
    return path


def test_mastodon_followers_to_depth_1_are_the_worlds_and_a_rerun_adds_nothing(
    services: Services, world: ArtWorld, tmp_path: Path
) -> None:
    seed = _seed(world, "mastodon")
    hidden = _seed(world, "mastodon", hidden=True)
    seeds = _seeds(tmp_path, seed.url, f"@{hidden.acct}", "not a seed!")
    run, final = crawl_graph(services, seeds, Plan((F,), depth=1))
    assert final.finished
    nodes, edges = follower_graph(world, [seed, hidden], 1)
    assert _edges(services, "mastodon") == edges  # duplicates inside pages made none
    assert set(_nodes(services, "mastodon")) == nodes
    assert _failures(services) == {"seed:3": "bad_input"}
    with services.engine.connect() as conn:
        c = graph_cursors.c
        state = conn.execute(
            sa.select(c.state).where(c.account_id == node(hidden), c.operation == "followers")
        ).scalar_one()
    assert state == "hidden" and final.count("hidden") >= 1

    again, second = crawl_graph(services, seeds, Plan((F,), depth=1))
    assert again != run and second.finished  # a finished crawl starts anew...
    assert _edges(services, "mastodon") == edges  # ...and adds no edge


def test_bluesky_analysis_selects_by_counts_from_get_profiles(
    services: Services, world: ArtWorld, tmp_path: Path
) -> None:
    seed = _seed(world, "bluesky")
    met = followers(world, seed)
    counts = sorted(len(world.followers(a)) for a in met)
    threshold = counts[len(counts) // 2]
    rule = f"followers_count > {threshold} and lang == 'en'"
    plan = Plan((F,), analyse=True, select=rule, depth=1)
    _, final = crawl_graph(services, _seeds(tmp_path, f"bluesky:{seed.id}"), plan)
    assert final.finished
    chosen = [a for a in met if len(world.followers(a)) > threshold]
    assert 0 < len(chosen) < len(met)
    states = _nodes(services, "bluesky")
    assert {i for i, s in states.items() if s == SELECTED} == {node(seed)} | {
        node(a) for a in chosen
    }
    expected = {(node(f), node(seed)) for f in met}
    expected |= {(node(f), node(a)) for a in chosen for f in followers(world, a)}
    assert _edges(services, "bluesky") == expected


def test_x_timeline_and_following_with_a_token_then_update(
    services: Services, world: ArtWorld, tmp_path: Path
) -> None:
    seed = _seed(world, "x")
    plan = Plan((T, FOLLOWING_OP), depth=0)
    _, final = crawl_graph(services, _seeds(tmp_path, f"https://x.com/{seed.username}"), plan)
    assert final.finished and final.count("crawled") == 3  # the seed, T, following
    assert _edges(services, "x") == {(seed.id, node(a)) for a in world.following(seed)}
    blob = services.blobs.path(timeline_key("x", seed.id), TIMELINE_EXT)
    assert blob.parent.name == seed.id[2:4] and blob.parent.parent.name == seed.id[:2]
    lines = [json.loads(line) for line in gzip.decompress(blob.read_bytes()).splitlines()]
    visible = [p for p in world.posts(seed) if not p.deleted and not p.repost_of]
    assert {p["id"] for p in lines} == {p.id for p in visible}
    assert [p["id"] for p in lines] == sorted((p["id"] for p in lines), key=int, reverse=True)

    before = {p["id"] for p in lines}
    _, update = crawl_graph(services, _seeds(tmp_path, seed.id), Plan(()), update=True)
    assert update.finished and update.count("crawled") == 2  # the seed and its U
    lines = [json.loads(line) for line in gzip.decompress(blob.read_bytes()).splitlines()]
    assert {p["id"] for p in lines} == before  # nothing newer in a still world


def test_a_cursor_sent_back_stops_the_job_with_a_recorded_error(
    tmp_path: Path, big_world: ArtWorld, stuck_url: str
) -> None:
    services = Services(graph_settings(tmp_path, stuck_url))
    try:
        seed = next(
            a
            for a in big_world.accounts
            if a.network == "bluesky" and len(big_world.followers(a)) > 100
        )
        _, final = crawl_graph(services, _seeds(tmp_path, seed.id), Plan((F,), depth=0))
        assert final.finished
        assert _failures(services) == {f"F:bluesky:{seed.id}": "stuck_cursor"}
        assert len(_edges(services, "bluesky")) == 100  # the first page's, committed with it
    finally:
        services.close()


def test_a_deeper_crawl_goes_on_from_the_lists_stored(
    services: Services, world: ArtWorld, tmp_path: Path
) -> None:
    seed = _seed(world, "mastodon")
    seeds = _seeds(tmp_path, seed.acct)
    assert crawl_graph(services, seeds, Plan((F,), depth=0))[1].finished
    assert _edges(services, "mastodon") == follower_graph(world, [seed], 0)[1]
    _, final = crawl_graph(services, seeds, Plan((F,), depth=1))
    assert final.finished
    nodes, edges = follower_graph(world, [seed], 1)
    assert _edges(services, "mastodon") == edges and set(_nodes(services, "mastodon")) == nodes
    with services.engine.connect() as conn:
        c = graph_cursors.c
        query = sa.select(c.pages).where(c.account_id == node(seed), c.operation == "followers")
        assert conn.execute(query).scalar_one() == 1  # its list was not read again


def test_the_crawl_on_each_deployment(
    deployment: dict[str, str], world: ArtWorld, emulator_url: str, tmp_path: Path
) -> None:
    """Embedded, and on PostgreSQL with the Redis queue (two worker processes, depth first,
    through A)."""
    env = {f"SLEUTH_SOURCES_{k.upper()}": v for k, v in emulator_sources(emulator_url).items()}
    env |= {"SLEUTH_NET_ALLOW_PRIVATE": "1", "SLEUTH_WORKER_PROCESSES": "2"}
    services = Services(load_settings(environ={**deployment, **env}))
    try:
        seed = _seed(world, "mastodon")
        plan = Plan((F,), analyse=True, select="followers_count >= 0", depth=1, order=DFS)
        _, final = crawl_graph(services, _seeds(tmp_path, seed.acct), plan)
        assert final.finished
        assert _edges(services, "mastodon") == follower_graph(world, [seed], 1)[1]
    finally:
        services.close()


def test_x_without_followers_in_the_tokens_tier_records_forbidden(
    tmp_path: Path, world: ArtWorld
) -> None:
    app = Flask(__name__)
    app.register_blueprint(x_blueprint(XEmulator(world, limits=None, followers_allowed=False)))
    with EmulatorServer(app) as url:
        services = Services(graph_settings(tmp_path, url))
        try:
            seed = _seed(world, "x")
            _, final = crawl_graph(services, _seeds(tmp_path, seed.id), Plan((F,)))
            assert final.finished and final.count("crawled") == 1  # the seed
            assert _failures(services) == {f"F:x:{seed.id}": "forbidden"}
            assert _edges(services, "x") == set()
        finally:
            services.close()
