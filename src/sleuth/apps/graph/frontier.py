"""The frontier written at the end of a crawl, as Twittomatic's master did: `frontier-<run>.gz`.

It holds the accounts the graph has found in a list and not expanded (nodes still in state
`seen`: beyond the crawl's depth, or met only by the lists of earlier crawls), the targets of
the next step of the traversal. It is gzip text, one seed a line as `sleuth graph crawl
--seeds` reads them (`network:account id`, e.g. `mastodon:ada@one.example`), the
most-followed first (accounts without a count last), then by network and id; a first line
starting with `#` says what it is. The file is written to a temporary name and renamed, so a
crash never leaves half a frontier, and the same run always writes the same file."""

from __future__ import annotations

import gzip
import os
import tempfile
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import Engine

from sleuth.apps.graph.models import SEEN, graph_nodes

BATCH = 5000


def frontier_path(folder: Path, run: str) -> Path:
    return folder / f"frontier-{run[:12]}.gz"


def write_frontier(engine: Engine, folder: Path, run: str) -> tuple[Path, int]:
    """Write the frontier of the graph as it stands, streamed; returns its path and how many
    accounts it holds."""
    n = graph_nodes.c
    query = (
        sa.select(n.network, n.account_id)
        .where(n.state == SEEN)
        .order_by(
            sa.case((n.followers_count.is_(None), 1), else_=0),
            n.followers_count.desc(),
            n.network,
            n.account_id,
        )
    )
    folder.mkdir(parents=True, exist_ok=True)
    final = frontier_path(folder, run)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".frontier-", suffix=".gz")
    count = 0
    try:
        with os.fdopen(fd, "wb") as raw, gzip.open(raw, "wt", encoding="utf-8") as out:
            out.write(f"# frontier of graph crawl {run}: accounts found, not expanded\n")
            with engine.connect() as conn:
                rows = conn.execution_options(stream_results=True, yield_per=BATCH).execute(query)
                for network, account in rows:
                    out.write(f"{network}:{account}\n")
                    count += 1
        os.replace(tmp, final)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return final, count
