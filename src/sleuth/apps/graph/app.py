"""The graph app's declaration: what the engine runs, serves and shows for it.

The engine reads it whenever settings load, so it imports only `sleuth.app` at first; the
crawler, the blueprint and the command are imported when the engine asks for them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sleuth.app import App, Outcome, StatusLine

if TYPE_CHECKING:
    import click
    from flask import Blueprint

    from sleuth.crawl.runs import JobFor
    from sleuth.jobs.worker import Kind
    from sleuth.net.fetcher import Fetcher
    from sleuth.services import Services

NAME = "graph"
ANALYSIS_QUEUE = "graph.analysis"  # seeds, and the accounts a list met (A)
TIMELINE_QUEUE = "graph.timeline"  # T
FOLLOWERS_QUEUE = "graph.followers"  # F
FOLLOWING_QUEUE = "graph.following"  # --following
UPDATE_QUEUE = "graph.update"  # U
QUEUES = (ANALYSIS_QUEUE, TIMELINE_QUEUE, FOLLOWERS_QUEUE, FOLLOWING_QUEUE, UPDATE_QUEUE)
CRAWLED = "crawled"  # an operation done on an account
HIDDEN = "hidden"  # a list its owner hides (empty while the profile counts some)


@dataclass(frozen=True)
class GraphSettings:
    # Pages of posts T reads per account (Mastodon 40 a page, Bluesky 100, X 100).
    timeline_pages: int = 5


def _job_kinds(services: Services, fetcher: Fetcher) -> list[Kind]:
    from sleuth.apps.graph.jobs import graph_kinds

    return list(graph_kinds(services, fetcher))


def _cli() -> click.Group:
    from sleuth.apps.graph.cli import graph

    return graph


def _blueprints() -> list[Blueprint]:
    from sleuth.apps.graph.api import lookup_blueprint
    from sleuth.apps.graph.page import monitor_blueprint

    return [lookup_blueprint(), monitor_blueprint()]


def _crawl_jobs() -> JobFor:
    from sleuth.apps.graph.jobs import item_job

    return item_job


def _status(services: Services) -> list[StatusLine]:
    """Accounts and follows stored, in all and by network."""
    import sqlalchemy as sa

    from sleuth.apps.graph.models import graph_edges, graph_nodes

    with services.engine.connect() as conn:
        nodes = dict(
            conn.execute(
                sa.select(graph_nodes.c.network, sa.func.count()).group_by(graph_nodes.c.network)
            ).all()
        )
        edges = dict(
            conn.execute(
                sa.select(graph_edges.c.network, sa.func.count()).group_by(graph_edges.c.network)
            ).all()
        )
    if not nodes:
        return [StatusLine("graph", "no accounts crawled")]
    each = ", ".join(f"{net} {n}/{edges.get(net, 0)}" for net, n in sorted(nodes.items()))
    total = f"{sum(nodes.values())} accounts, {sum(edges.values())} follows"
    return [StatusLine("graph", f"{total} (accounts/follows: {each})")]


app = App(
    name=NAME,
    description="The Mastodon, Bluesky and X follow graphs crawled breadth-first from seeds.",
    settings=GraphSettings,
    migrations=Path(__file__).parent / "migrations",
    queues=QUEUES,
    job_kinds=_job_kinds,
    blueprints=_blueprints,
    pages=(("graph", "/graph"),),
    cli=_cli,
    status=_status,
    outcomes=(
        Outcome(CRAWLED, "crawled", "#1b9e77"),
        Outcome(HIDDEN, "hidden", "#7570b3"),
        Outcome("error", "error", "#d7301f"),
    ),
    outcome_unit="operations",
    crawl_jobs=_crawl_jobs,
)
