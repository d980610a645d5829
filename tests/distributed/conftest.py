"""Fixtures of the distributed tests: the offline web, fresh queues and databases on the
shared servers, private servers to restart, and clusters of worker machines."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sleuth.emulator.imagehost import create_imagehost_app
from sleuth.emulator.server import EmulatorServer
from tests.distributed.cluster import Cluster, PostgresServer, RedisServer
from tests.jobs.conftest import delete_prefix
from tests.servers import REDIS_URL, in_ci, require, scratch_database


@pytest.fixture
def image_host() -> Iterator[str]:
    """The picsum-shaped image host on loopback; yields its base URL."""
    with EmulatorServer(create_imagehost_app(seed=0)) as url:
        yield url


@pytest.fixture
def queue_url() -> Iterator[str]:
    """A queue of its own on the shared Redis (a key prefix nobody else uses), emptied after."""
    require("redis", REDIS_URL)
    prefix = f"sleuth-dist-{uuid.uuid4().hex[:12]}"
    try:
        yield f"{REDIS_URL}{'&' if '?' in REDIS_URL else '?'}prefix={prefix}"
    finally:
        delete_prefix(prefix)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh database on the shared PostgreSQL, dropped after."""
    with scratch_database("postgresql") as url:
        yield url


def _server_missing(kind: str, exc: Exception) -> None:
    message = f"cannot run a private {kind} server: {exc}"
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A private Redis with AOF on, which a test may restart."""
    try:
        server = RedisServer()
    except FileNotFoundError as exc:
        _server_missing("Redis", exc)
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def postgres_server() -> Iterator[PostgresServer]:
    """A private PostgreSQL cluster, which a test may restart."""
    try:
        server = PostgresServer()
    except FileNotFoundError as exc:
        _server_missing("PostgreSQL", exc)
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def make_cluster(tmp_path: Path) -> Iterator[Callable[..., Cluster]]:
    """`make_cluster(database_url, queue_url, **SLEUTH_settings)`: machines under a folder of
    their own; every machine still running at the end of the test is killed."""
    made: list[Cluster] = []

    def make(database_url: str, queue_url: str, **settings: str) -> Cluster:
        cluster = Cluster(tmp_path / f"cluster-{len(made) + 1}", database_url, queue_url, settings)
        made.append(cluster)
        return cluster

    yield make
    for cluster in made:
        cluster.__exit__(None, None, None)
