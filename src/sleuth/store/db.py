"""Database engine and schema migrations, the same on SQLite, PostgreSQL and MySQL/MariaDB."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
CORE_VERSIONS = MIGRATIONS_DIR / "versions"

log = logging.getLogger(__name__)


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def make_engine(url: str) -> Engine:
    """An engine with per-dialect settings: WAL and a busy timeout for SQLite (many worker
    processes share the file), pre-ping for servers that may restart under us."""
    parsed = make_url(url)
    if parsed.drivername.startswith("postgresql") and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername == "mysql":
        parsed = parsed.set(drivername="mysql+pymysql")
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(parsed, pool_pre_ping=True, pool_recycle=1800)


def alembic_config(engine: Engine, version_locations: Iterable[Path]) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    locations = [str(CORE_VERSIONS), *(str(p) for p in version_locations)]
    cfg.set_main_option("version_locations", " ".join(locations))
    cfg.set_main_option("path_separator", "space")
    cfg.attributes["engine"] = engine
    return cfg


def migrate(engine: Engine, version_locations: Iterable[Path] = ()) -> None:
    """Bring the schema to the newest revision of the core and of every given app."""
    with engine.begin() as conn:
        cfg = alembic_config(engine, version_locations)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "heads")
