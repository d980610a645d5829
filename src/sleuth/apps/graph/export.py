"""Exports of the graph, streamed: rows are read from the database a batch at a time and
written as they come, so memory stays bounded whatever the graph's size.

Edges point follower -> followed (Twittomatic's own GraphML script had them backwards). A
node's id in every format is `network:account id`, so the networks share one file. Gephi's
CSV import is two files with exactly the headers `Id,Label` and `Source,Target,Type,Weight`.
Parquet needs pyarrow (`pip install sleuth[parquet]`); without it that export says so."""

from __future__ import annotations

import csv
import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any
from xml.sax.saxutils import escape, quoteattr

import sqlalchemy as sa
from sqlalchemy import Engine

from sleuth.apps.graph.models import graph_edges, graph_nodes

FORMATS = ("graphml", "gexf", "csv", "parquet")
BATCH = 5000
_ATTRIBUTES = (
    "network",
    "handle",
    "followers_count",
    "following_count",
    "statuses_count",
    "lang",
    "depth",
    "state",
)


class ExportError(ValueError):
    """An export that cannot be written as asked."""


def _nodes(engine: Engine, network: str | None) -> Iterator[dict[str, Any]]:
    n = graph_nodes.c
    query = sa.select(n.account_id, *(n[a] for a in _ATTRIBUTES)).order_by(n.network, n.account_id)
    if network is not None:
        query = query.where(n.network == network)
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=BATCH).execute(query)
        for row in result:
            values = dict(row._mapping)
            values["id"] = f"{values['network']}:{values.pop('account_id')}"
            yield values


def _edges(engine: Engine, network: str | None) -> Iterator[tuple[str, str]]:
    e = graph_edges.c
    query = sa.select(e.network, e.src, e.dst).order_by(e.network, e.src, e.dst)
    if network is not None:
        query = query.where(e.network == network)
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=BATCH).execute(query)
        for net, src, dst in result:
            yield f"{net}:{src}", f"{net}:{dst}"


def _csv(engine: Engine, out: Path, network: str | None) -> tuple[int, int]:
    out.mkdir(parents=True, exist_ok=True)
    counts = [0, 0]
    with (out / "nodes.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["Id", "Label"])
        for node in _nodes(engine, network):
            writer.writerow([node["id"], node["handle"]])
            counts[0] += 1
    with (out / "edges.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["Source", "Target", "Type", "Weight"])
        for src, dst in _edges(engine, network):
            writer.writerow([src, dst, "Directed", 1])
            counts[1] += 1
    return counts[0], counts[1]


_GRAPHML_TYPES = {
    "followers_count": "int",
    "following_count": "int",
    "statuses_count": "int",
    "depth": "int",
}


def _graphml(engine: Engine, fh: IO[str], network: str | None) -> tuple[int, int]:
    fh.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    fh.write('<graphml xmlns="http://graphml.graphdrawing.org/xmlns">\n')
    for name in _ATTRIBUTES:
        kind = _GRAPHML_TYPES.get(name, "string")
        fh.write(f'  <key id="{name}" for="node" attr.name="{name}" attr.type="{kind}"/>\n')
    fh.write('  <graph id="follows" edgedefault="directed">\n')
    nodes = edges = 0
    for node in _nodes(engine, network):
        fh.write(f"    <node id={quoteattr(node['id'])}>")
        for name in _ATTRIBUTES:
            if node[name] is not None:
                fh.write(f'<data key="{name}">{escape(str(node[name]))}</data>')
        fh.write("</node>\n")
        nodes += 1
    for src, dst in _edges(engine, network):
        fh.write(f"    <edge source={quoteattr(src)} target={quoteattr(dst)}/>\n")
        edges += 1
    fh.write("  </graph>\n</graphml>\n")
    return nodes, edges


def _gexf(engine: Engine, fh: IO[str], network: str | None) -> tuple[int, int]:
    fh.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    fh.write('<gexf xmlns="http://gexf.net/1.3" version="1.3">\n')
    fh.write('  <graph defaultedgetype="directed" mode="static">\n    <attributes class="node">\n')
    for index, name in enumerate(_ATTRIBUTES):
        kind = "integer" if name in _GRAPHML_TYPES else "string"
        fh.write(f'      <attribute id="{index}" title="{name}" type="{kind}"/>\n')
    fh.write("    </attributes>\n    <nodes>\n")
    nodes = edges = 0
    for node in _nodes(engine, network):
        fh.write(
            f"      <node id={quoteattr(node['id'])} label={quoteattr(node['handle'])}><attvalues>"
        )
        for index, name in enumerate(_ATTRIBUTES):
            if node[name] is not None:
                fh.write(f'<attvalue for="{index}" value={quoteattr(str(node[name]))}/>')
        fh.write("</attvalues></node>\n")
        nodes += 1
    fh.write("    </nodes>\n    <edges>\n")
    for src, dst in _edges(engine, network):
        fh.write(f'      <edge id="{edges}" source={quoteattr(src)} target={quoteattr(dst)}/>\n')
        edges += 1
    fh.write("    </edges>\n  </graph>\n</gexf>\n")
    return nodes, edges


def _parquet(engine: Engine, out: Path, network: str | None) -> tuple[int, int]:
    import pyarrow as pa  # type: ignore[import-not-found,unused-ignore]
    import pyarrow.parquet as pq  # type: ignore[import-not-found,unused-ignore]

    out.mkdir(parents=True, exist_ok=True)
    node_schema = pa.schema(
        [("id", pa.string())]
        + [(a, pa.int64() if a in _GRAPHML_TYPES else pa.string()) for a in _ATTRIBUTES]
    )
    counts = [0, 0]
    with pq.ParquetWriter(out / "nodes.parquet", node_schema) as writer:
        batch: list[dict[str, Any]] = []
        for node in _nodes(engine, network):
            batch.append(node)
            if len(batch) == BATCH:
                writer.write_table(pa.Table.from_pylist(batch, node_schema))
                counts[0] += len(batch)
                batch = []
        if batch:
            writer.write_table(pa.Table.from_pylist(batch, node_schema))
            counts[0] += len(batch)
    edge_schema = pa.schema([("source", pa.string()), ("target", pa.string())])
    with pq.ParquetWriter(out / "edges.parquet", edge_schema) as writer:
        pairs: list[dict[str, str]] = []
        for src, dst in _edges(engine, network):
            pairs.append({"source": src, "target": dst})
            if len(pairs) == BATCH:
                writer.write_table(pa.Table.from_pylist(pairs, edge_schema))
                counts[1] += len(pairs)
                pairs = []
        if pairs:
            writer.write_table(pa.Table.from_pylist(pairs, edge_schema))
            counts[1] += len(pairs)
    return counts[0], counts[1]


def export(engine: Engine, fmt: str, out: Path, network: str | None = None) -> tuple[int, int]:
    """Write the graph (or one network's) as `fmt` to `out`; returns (nodes, edges) written."""
    if fmt not in FORMATS:
        raise ExportError(f"the export formats are {FORMATS}, not {fmt!r}")
    if fmt == "parquet" and importlib.util.find_spec("pyarrow") is None:
        raise ExportError("the parquet export needs pyarrow: pip install pyarrow")
    if fmt == "csv":
        return _csv(engine, out, network)
    if fmt == "parquet":
        return _parquet(engine, out, network)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as fh:
        return _graphml(engine, fh, network) if fmt == "graphml" else _gexf(engine, fh, network)
