"""Fixtures shared by every test folder."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from sleuth.config import Settings, load_settings
from tests.apps.sample.plugin import sample_app  # noqa: F401  (a fixture for every folder)
from tests.jobs.conftest import redis_queue
from tests.servers import scratch_database

DATABASES = ["sqlite", "postgresql", "mysql"]
DEPLOYMENTS = ["embedded", "redis+postgresql"]


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database on each of SQLite, PostgreSQL and MariaDB."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    with scratch_database(request.param) as url:
        yield url


@pytest.fixture
def services(tmp_path: Path) -> Iterator[object]:
    """Embedded services (SQLite data and queue) in a temporary data folder."""
    from sleuth.services import Services

    svc = Services(Settings(data_dir=tmp_path / "data"))
    yield svc
    svc.close()


@contextmanager
def fresh_install(kind: str, tmp: Path) -> Iterator[dict[str, str]]:
    """The `SLEUTH_*` environment of a fresh install of `kind` (one of DEPLOYMENTS):
    embedded (SQLite data and queue in a data folder under `tmp`), or distributed (a new
    PostgreSQL database, a Redis queue of its own)."""
    env = {"SLEUTH_DATA_DIR": str(tmp / "data")}
    if kind == "embedded":
        yield env
        return
    with scratch_database("postgresql") as database, redis_queue(tmp) as queue:
        yield {**env, "SLEUTH_DATABASE_URL": database, "SLEUTH_QUEUE_URL": queue}


@pytest.fixture(params=DEPLOYMENTS)
def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """A fresh install of each deployment (`fresh_install`)."""
    with fresh_install(request.param, tmp_path) as env:
        yield env


@pytest.fixture
def deployed_services(deployment: dict[str, str]) -> Iterator[object]:
    """The services of the `deployment` install, as a worker on it would have them."""
    from sleuth.services import Services

    svc = Services(load_settings(environ=deployment))
    yield svc
    svc.close()
