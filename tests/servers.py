"""Real database and queue servers for the tests.

Each server is reached at its usual loopback port, or at the URL in an environment variable.
When one is unreachable the test is skipped with the way to enable it, except under CI
(`CI=true`), where `.ci/run` has started every server and a missing one is a failure."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from tests.patience import PATIENCE

POSTGRES_URL = os.environ.get(
    "SLEUTH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
MYSQL_URL = os.environ.get("SLEUTH_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
REDIS_URL = os.environ.get("SLEUTH_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")

HOW_TO = {
    "postgresql": "start PostgreSQL on 127.0.0.1:5432 (trust auth) or set SLEUTH_TEST_POSTGRES_URL",
    "mysql": "start MariaDB/MySQL on 127.0.0.1:3306 (root, no password) or set "
    "SLEUTH_TEST_MYSQL_URL",
    "redis": "start Redis on 127.0.0.1:6379 or set SLEUTH_TEST_REDIS_URL",
}


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require(kind: str, url: str) -> None:
    """Skip (or fail, under CI) when the server behind `url` does not accept connections."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port
    try:
        socket.create_connection((host, port), timeout=PATIENCE).close()
    except OSError as exc:
        message = f"{kind} not reachable at {host}:{port} ({exc}); {HOW_TO[kind]}"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)


@contextmanager
def scratch_database(kind: str) -> Iterator[str]:
    """A new, empty database on the server of `kind`, dropped afterwards; yields its URL."""
    if kind == "sqlite":
        raise ValueError("use a tmp_path file for SQLite")
    base = POSTGRES_URL if kind == "postgresql" else MYSQL_URL
    require(kind, base)
    name = f"sleuth_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    url = sa.engine.make_url(base).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            if kind == "postgresql":
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            else:
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()
