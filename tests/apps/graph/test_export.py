"""`sleuth graph export` in every format, and the lookup service, on a crawled graph."""

from __future__ import annotations

import csv
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from sleuth.apps.graph.cli import crawl_graph
from sleuth.apps.graph.export import export
from sleuth.apps.graph.jobs import F, Plan
from sleuth.cli.main import cli
from sleuth.emulator.artworld import ArtWorld
from sleuth.emulator.cli import emulator_sources
from sleuth.services import Services
from sleuth.web.app import create_app
from tests.apps.graph.truth import follower_graph, followers, node


@pytest.fixture
def crawled(
    services: Services, world: ArtWorld, tmp_path: Path
) -> tuple[set[str], set[tuple[str, str]]]:
    """World 0's Bluesky followers to depth 0 from one seed: (node ids, edges), prefixed."""
    seed = next(a for a in world.accounts if a.network == "bluesky" and followers(world, a))
    seeds = tmp_path / "seeds.txt"
    seeds.write_text(f"bluesky:{seed.id}\n")
    assert crawl_graph(services, seeds, Plan((F,), depth=0))[1].finished
    nodes, edges = follower_graph(world, [seed], 0)
    return {f"bluesky:{n}" for n in nodes}, {(f"bluesky:{s}", f"bluesky:{d}") for s, d in edges}


def test_gephi_csv_has_its_exact_headers_and_edges_point_to_the_followed(
    services: Services, crawled: tuple[set[str], set[tuple[str, str]]], tmp_path: Path
) -> None:
    nodes, edges = crawled
    assert export(services.engine, "csv", tmp_path / "csv") == (len(nodes), len(edges))
    with (tmp_path / "csv" / "nodes.csv").open(newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["Id", "Label"] and {r[0] for r in rows[1:]} == nodes
    with (tmp_path / "csv" / "edges.csv").open(newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["Source", "Target", "Type", "Weight"]
    assert {(r[0], r[1]) for r in rows[1:]} == edges
    assert {(r[2], r[3]) for r in rows[1:]} == {("Directed", "1")}


def test_graphml_and_gexf_parse_with_the_same_graph(
    services: Services, crawled: tuple[set[str], set[tuple[str, str]]], tmp_path: Path
) -> None:
    nodes, edges = crawled
    export(services.engine, "graphml", tmp_path / "g.graphml")
    ns = {"g": "http://graphml.graphdrawing.org/xmlns"}
    root = ET.parse(tmp_path / "g.graphml").getroot()
    graph_el = root.find("g:graph", ns)
    assert graph_el is not None and graph_el.get("edgedefault") == "directed"
    assert {n.get("id") for n in graph_el.findall("g:node", ns)} == nodes
    got = {(e.get("source"), e.get("target")) for e in graph_el.findall("g:edge", ns)}
    assert got == edges

    export(services.engine, "gexf", tmp_path / "g.gexf")
    ns = {"x": "http://gexf.net/1.3"}
    root = ET.parse(tmp_path / "g.gexf").getroot()
    assert {n.get("id") for n in root.iterfind(".//x:node", ns)} == nodes
    assert {(e.get("source"), e.get("target")) for e in root.iterfind(".//x:edge", ns)} == edges


def test_parquet_holds_the_same_graph(
    services: Services, crawled: tuple[set[str], set[tuple[str, str]]], tmp_path: Path
) -> None:
    import pyarrow.parquet as pq

    nodes, edges = crawled
    assert export(services.engine, "parquet", tmp_path / "pq") == (len(nodes), len(edges))
    table = pq.read_table(tmp_path / "pq" / "nodes.parquet")
    assert set(table.column("id").to_pylist()) == nodes
    assert table.num_rows == len(nodes)
    table = pq.read_table(tmp_path / "pq" / "edges.parquet")
    assert table.column_names == ["source", "target"]
    got = zip(table.column("source").to_pylist(), table.column("target").to_pylist(), strict=True)
    assert set(got) == edges and table.num_rows == len(edges)


def test_the_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, world: ArtWorld, emulator_url: str
) -> None:
    monkeypatch.chdir(tmp_path)
    for name, value in emulator_sources(emulator_url).items():
        monkeypatch.setenv(f"SLEUTH_SOURCES_{name.upper()}", value)
    monkeypatch.setenv("SLEUTH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SLEUTH_NET_ALLOW_PRIVATE", "true")
    monkeypatch.setenv("SLEUTH_WORKER_PROCESSES", "1")
    seed = next(a for a in world.accounts if a.network == "mastodon" and followers(world, a))
    seeds = tmp_path / "seeds.txt"
    seeds.write_text(f"{seed.acct}\n")
    runner = CliRunner()
    crawl = ["graph", "crawl", "--seeds", str(seeds)]
    result = runner.invoke(cli, [*crawl, "-F", "-A", "--select", "__import__('os')"])
    assert result.exit_code == 2 and "Call is not part of the selection language" in result.output
    result = runner.invoke(cli, [*crawl, "--select", "lang == 'en'"])
    assert result.exit_code == 2 and "give -A too" in result.output
    result = runner.invoke(cli, [*crawl, "-F", "--depth", "0"])
    assert result.exit_code == 0, result.output
    assert "2 operations done, 0 lists hidden, 0 failed" in result.output
    result = runner.invoke(cli, ["graph", "export", "--format", "csv", "--out", "out"])
    edges = len(followers(world, seed))
    assert result.exit_code == 0 and f"{edges + 1} nodes, {edges} edges" in result.output
    result = runner.invoke(cli, ["status"])
    line = f"{edges + 1} accounts, {edges} follows (accounts/follows: mastodon {edges + 1}/{edges})"
    assert result.exit_code == 0 and line in result.output
    result = runner.invoke(cli, ["graph", "export", "--format", "parquet", "--out", "p"])
    assert result.exit_code == 0 and f"{edges + 1} nodes, {edges} edges" in result.output


def test_lookup_by_id_and_handle(
    services: Services, world: ArtWorld, crawled: tuple[set[str], set[tuple[str, str]]]
) -> None:
    seed = next(a for a in world.accounts if a.network == "bluesky" and followers(world, a))
    client = create_app(services).test_client()
    answer = client.get(f"/lookup/id/{seed.id}")
    assert answer.status_code == 200
    (account,) = answer.get_json()["accounts"]
    assert account["account_id"] == node(seed) and account["state"] == "selected"
    assert account["followers_stored"] == len(followers(world, seed))
    by_handle = client.get(f"/lookup/handle/@{seed.username}")
    assert by_handle.get_json() == answer.get_json()
    missing = client.get("/lookup/handle/nobody.example")
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "account_not_found"
