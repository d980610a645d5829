"""Fixtures shared by every test folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sleuth.config import Settings
from tests.servers import scratch_database

DATABASES = ["sqlite", "postgresql", "mysql"]


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
