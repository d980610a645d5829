"""Database engine and schema migrations, the same on SQLite, PostgreSQL and MySQL/MariaDB."""

from __future__ import annotations

import logging
import random
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import Dialect, make_url

from sleuth.app import AppError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
CORE_VERSIONS = MIGRATIONS_DIR / "versions"
MIGRATION_LOCK = "sleuth.migrate"
MIGRATION_LOCK_KEY = 0x736C65757468  # PostgreSQL advisory locks take a number: b"sleuth"
MIGRATION_LOCK_WAIT = 300  # seconds to wait for another process's migration
RECONNECT_PATIENCE = 120.0  # seconds a process waits for a database server it had reached

log = logging.getLogger(__name__)


SQLITE_BUSY_TIMEOUT = 30.0  # seconds a connection waits for another process's lock


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cur = dbapi_connection.cursor()
    cur.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT * 1000)}")
    # Switching a new file to WAL can answer "database is locked" at once, without waiting,
    # while another process switches it too (workers starting together): wait and ask again.
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


# The package extra that installs each server database's driver.
DRIVER_EXTRAS = {"postgresql": "postgres", "mysql": "mysql", "mariadb": "mysql"}


class MissingDriver(RuntimeError):
    """The database URL names a server whose Python driver is not installed."""

    def __init__(self, backend: str, cause: ImportError) -> None:
        extra = DRIVER_EXTRAS.get(backend)
        fix = f"pip install 'sleuth[{extra}]'" if extra else "install its driver"
        super().__init__(f"the {backend} database needs its driver ({cause}): {fix}")


def make_engine(url: str) -> Engine:
    """An engine with per-dialect settings: WAL and a busy timeout for SQLite (many worker
    processes share the file), pre-ping for servers that may restart under us."""
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername == "mysql":
        parsed = parsed.set(drivername="mysql+pymysql")
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    try:
        engine = create_engine(parsed, pool_pre_ping=True, pool_recycle=1800)
    except ImportError as exc:  # SQLAlchemy imports the driver here
        raise MissingDriver(parsed.get_backend_name(), exc) from None
    event.listen(engine, "do_connect", PatientConnect(RECONNECT_PATIENCE))
    return engine


class PatientConnect:
    """Opens the pool's connections to a database server. Once the server has answered, a
    refused connection (a restart, a failover) is tried again with backoff for up to
    `patience` seconds instead of failing whatever asked, so workers wait out a database
    restart rather than burn their jobs' attempts. The first connection of a process fails
    at once: a wrong URL is reported, not waited for."""

    def __init__(self, patience: float) -> None:
        self.patience = patience
        self.reached = False
        self.outage = False
        self._lock = threading.Lock()

    def __call__(self, dialect: Dialect, _record: object, cargs: list, cparams: dict) -> object:
        deadline = time.monotonic() + self.patience
        delay = 0.1
        while True:
            try:
                connection = dialect.connect(*cargs, **cparams)
            except dialect.loaded_dbapi.OperationalError as exc:
                if not self.reached or time.monotonic() + delay > deadline:
                    raise
                self._say(True, f"database unreachable ({_first_line(exc)}); reconnecting")
                time.sleep(random.uniform(delay / 2, delay))  # workers do not return in step
                delay = min(2 * delay, 2.0)
            else:
                self.reached = True
                self._say(False, "database reachable again")
                return connection

    def _say(self, outage: bool, message: str) -> None:
        """Log the start and the end of an outage once per process, not once per attempt."""
        with self._lock:
            if self.outage != outage:
                self.outage = outage
                log.warning("%s", message)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def alembic_config(engine: Engine, version_locations: Iterable[Path]) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    locations = [str(CORE_VERSIONS), *(str(p) for p in version_locations)]
    cfg.set_main_option("version_locations", " ".join(locations))
    cfg.set_main_option("path_separator", "space")
    cfg.attributes["engine"] = engine
    return cfg


@contextmanager
def _migration_lock(conn: Connection) -> Iterator[None]:
    """Hold the database-wide migration lock: workers that start together on a fresh
    database take turns, so none fails creating a table another has just created."""
    dialect = conn.dialect.name
    if dialect == "postgresql":  # held until the transaction ends
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        yield
    elif dialect in {"mysql", "mariadb"}:  # DDL commits at once there: a session lock
        got = conn.execute(
            text("SELECT GET_LOCK(:name, :wait)"),
            {"name": MIGRATION_LOCK, "wait": MIGRATION_LOCK_WAIT},
        ).scalar()
        if got != 1:
            raise RuntimeError(
                f"another process held the migration lock for {MIGRATION_LOCK_WAIT} s"
            )
        try:
            yield
        finally:
            conn.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": MIGRATION_LOCK})
    else:  # SQLite runs DDL outside transactions unless one is begun explicitly
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        yield


def _check_known_revisions(conn: Connection, cfg: Config) -> None:
    """Refuse a database migrated by an app this process does not have (uninstalled, or not
    installed on this machine), which Alembic would report as a bare unknown revision."""
    known = {script.revision for script in ScriptDirectory.from_config(cfg).walk_revisions()}
    unknown = sorted(set(MigrationContext.configure(conn).get_current_heads()) - known)
    if unknown:
        raise AppError(
            f"the database has schema revisions {unknown} that no installed app provides:"
            " install the app they belong to here (every machine of a deployment needs the"
            " same apps)"
        )


def migrate(engine: Engine, version_locations: Iterable[Path] = ()) -> None:
    """Bring the schema to the newest revision of the core and of every given app, in one
    transaction that commits before the migration lock is released."""
    with engine.connect() as conn, _migration_lock(conn):
        cfg = alembic_config(engine, version_locations)
        cfg.attributes["connection"] = conn
        _check_known_revisions(conn, cfg)
        command.upgrade(cfg, "heads")
        conn.commit()
