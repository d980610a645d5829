"""A migrated scratch database (SQLite, PostgreSQL, MariaDB) and a real job queue (SQLite,
Redis) for the crawl layer's tests, and toy items worked on by one queue of their own. Their
outcomes are counted as an installed app's (images), as counters take only declared ones."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from sleuth.config import Settings
from sleuth.crawl.runs import ItemJob, RunItem
from sleuth.jobs import open_queue
from sleuth.jobs.base import QueueBackend
from sleuth.jobs.tasks import Task
from sleuth.observe.counters import outcome_counts
from sleuth.services import Services
from tests.jobs.conftest import BACKENDS

APP = "images"


@dataclass(frozen=True)
class Toy:
    run: str
    key: str


WORK = Task("toy.work", Toy)


def toy_job(item: RunItem) -> ItemJob:
    return ItemJob(WORK, Toy(item.run, item.key), f"work:{item.run}:{item.key}")


@pytest.fixture
def engine(database_url: str, tmp_path: Path) -> Iterator[Engine]:
    """The database, migrated as every sleuth process migrates it (`Services`)."""
    services = Services(Settings(data_dir=tmp_path / "data", database_url=database_url))
    yield services.engine
    services.close()


@pytest.fixture(params=sorted(BACKENDS))
def queue(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[QueueBackend]:
    """A fresh queue on each backend: dedup keys must hold on both."""
    with BACKENDS[request.param](tmp_path) as url:
        backend = open_queue(url)
        yield backend
        backend.close()


def counted(engine: Engine, app: str = APP) -> dict[str, int]:
    """The app's per-minute outcome counters, summed over every minute."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(outcome_counts.c.outcome, sa.func.sum(outcome_counts.c.count))
            .where(outcome_counts.c.app == app)
            .group_by(outcome_counts.c.outcome)
        ).all()
    return {outcome: int(n) for outcome, n in rows}


def drain(queue: QueueBackend) -> list[dict[str, object]]:
    """Take and ack every ready `toy.work` job; their payloads, oldest first."""
    payloads = []
    while jobs := queue.reserve([WORK.queue], 100, 60.0, "test"):
        for job in jobs:
            payloads.append(job.payload)
            queue.ack(job)
    return payloads
