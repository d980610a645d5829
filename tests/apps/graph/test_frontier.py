"""The frontier of a finished crawl (`frontier-<run>.gz`: the accounts found and not expanded,
most-followed first, as seeds of the next step) and the `--frontier` order (the queue serves
the most-followed accounts' operations first), over loopback on world 0."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from sleuth.apps.graph.app import FOLLOWERS_QUEUE
from sleuth.apps.graph.cli import crawl_graph, open_graph_run, read_seeds
from sleuth.apps.graph.frontier import frontier_path, write_frontier
from sleuth.apps.graph.jobs import (
    FRONTIER,
    FRONTIER_FIRST,
    F,
    Plan,
    account_item,
    item_job,
    seed_item,
)
from sleuth.apps.graph.models import SELECTED, graph_nodes
from sleuth.apps.graph.networks import parse_seed
from sleuth.cli.main import cli
from sleuth.crawl import runs
from sleuth.emulator.artworld import ArtWorld
from sleuth.emulator.cli import emulator_sources
from sleuth.services import Services
from tests.apps.graph.test_crawl import _seed, _seeds
from tests.apps.graph.truth import follower_graph, node


def _lines(path: Path) -> list[str]:
    return gzip.decompress(path.read_bytes()).decode().splitlines()


def _counts(services: Services) -> dict[str, tuple[int | None, str]]:
    n = graph_nodes.c
    with services.engine.connect() as conn:
        rows = conn.execute(sa.select(n.network, n.account_id, n.followers_count, n.state))
        return {f"{net}:{ident}": (count, state) for net, ident, count, state in rows}


def test_the_frontier_is_the_accounts_found_and_not_expanded_and_seeds_the_next_step(
    services: Services, world: ArtWorld, tmp_path: Path
) -> None:
    seed = _seed(world, "mastodon")
    run, final = crawl_graph(services, _seeds(tmp_path, seed.url), Plan((F,), depth=1))
    assert final.finished
    path, count = write_frontier(services.engine, tmp_path / "out", run)
    assert path == frontier_path(tmp_path / "out", run) and path.name == f"frontier-{run[:12]}.gz"
    lines = _lines(path)
    assert lines[0].startswith(f"# frontier of graph crawl {run}")
    accounts = lines[1:]
    # Met in the lists of the accounts at depth 1, never expanded: the world's depth-2 ring.
    reached, _ = follower_graph(world, [seed], 1)
    expanded, _ = follower_graph(world, [seed], 0)
    assert count == len(accounts) == len(reached - expanded) > 0
    assert set(accounts) == {f"mastodon:{a}" for a in reached - expanded}
    # Most-followed first, as the database counts them; none of them selected.
    stored = _counts(services)
    ranks = [stored[a][0] for a in accounts]
    known = [r for r in ranks if r is not None]
    assert known == sorted(known, reverse=True) and ranks[: len(known)] == known
    assert all(stored[a][1] != SELECTED for a in accounts)
    assert list(tmp_path.joinpath("out").iterdir()) == [path]  # no temporary file left

    # Written again for the same run: the same file; read back, the seeds of the next step.
    assert write_frontier(services.engine, tmp_path / "out", run) == (path, count)
    seeds = read_seeds(path)
    assert seeds == accounts and all(parse_seed(s) == tuple(s.split(":", 1)) for s in seeds)
    _, step = crawl_graph(services, path, Plan((F,), depth=0))
    assert step.finished and step.count("crawled") + step.count("hidden") == 2 * count
    after = _counts(services)
    assert all(after[a][1] == SELECTED for a in accounts)
    _, left = write_frontier(services.engine, tmp_path / "out", run)
    assert left == sum(1 for count, state in after.values() if state == "seen")


def test_the_frontier_order_serves_the_most_followed_first(services: Services) -> None:
    plan = Plan((F,), depth=2, order=FRONTIER)
    run = open_graph_run(services.engine, "frontier order")
    counts = {"few": 3, "unknown": None, "many": 5000, "some": 200, "none": 0}
    items = [
        account_item(run, F, "x", ident, 1, plan, followers) for ident, followers in counts.items()
    ]
    runs.add_items(services.engine, services.queue, items, item_job)
    jobs = services.queue.reserve([FOLLOWERS_QUEUE], 10, 60.0, "test")
    served = [job.payload["key"].rsplit(":", 1)[1] for job in jobs]
    assert served[:3] == ["many", "some", "few"] and set(served[3:]) == {"unknown", "none"}
    assert [job.priority for job in jobs][:3] == [13, 8, 2]  # powers of two of the followers

    # Seeds and analyses come before any operation: they choose and rank the accounts.
    assert item_job(seed_item(run, 1, "x:1", plan)).task.priority == FRONTIER_FIRST
    with pytest.raises(ValueError, match="the order is one of"):
        Plan((F,), order="random")


def test_the_command_writes_the_frontier_of_a_finished_crawl(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, world: ArtWorld, emulator_url: str
) -> None:
    monkeypatch.chdir(tmp_path)
    for name, value in emulator_sources(emulator_url).items():
        monkeypatch.setenv(f"SLEUTH_SOURCES_{name.upper()}", value)
    monkeypatch.setenv("SLEUTH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SLEUTH_NET_ALLOW_PRIVATE", "true")
    monkeypatch.setenv("SLEUTH_WORKER_PROCESSES", "1")
    seed = _seed(world, "mastodon")
    seeds = _seeds(tmp_path, seed.acct)
    crawl = ["graph", "crawl", "--seeds", str(seeds), "-F", "--depth", "0", "--frontier"]
    result = CliRunner().invoke(cli, [*crawl, "--frontier-dir", "fr"])
    assert result.exit_code == 0, result.output
    (path,) = (tmp_path / "fr").iterdir()
    accounts = _lines(path)[1:]
    reached, _ = follower_graph(world, [seed], 0)
    assert set(accounts) == {f"mastodon:{a}" for a in reached - {node(seed)}}
    assert f"Frontier ({len(accounts)} accounts found, not expanded) saved into" in result.output
    assert path.name in result.output.replace("\n", "")
