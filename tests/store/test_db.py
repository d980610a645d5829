"""Migrations and idempotent writes on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import importlib
import pkgutil
import threading

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import sleuth
from sleuth.app import migration_dirs
from sleuth.observe.counters import count_outcome, histogram, outcome_counts
from sleuth.store.db import alembic_config, make_engine, migrate
from sleuth.store.schema import fulltext_objects, metadata
from sleuth.store.upsert import insert_ignore, insert_ignore_many

TABLES = {
    "outcome_counts",
    "workers",
    "worker_metrics",
    "stack_requests",
    "stack_dumps",
    "schedules",
    "leases",
    "host_clocks",
    "rate_budgets",
    "images",
    "image_sources",
    "crawl_runs",
    "crawl_run_items",
    "crawl_failures",
}


def declare_every_table() -> None:
    """Import every module of the package, so that every table the code declares is on
    `metadata` (`__main__` modules run a command when imported: not those)."""
    for module in pkgutil.walk_packages(sleuth.__path__, "sleuth."):
        if not module.name.endswith(".__main__"):
            importlib.import_module(module.name)


def test_migrations_create_every_table_and_rerun_is_harmless(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate(engine, migration_dirs())
    migrate(engine, migration_dirs())
    assert set(sa.inspect(engine).get_table_names()) >= TABLES
    engine.dispose()


def test_migrations_create_exactly_the_tables_the_code_declares(database_url: str) -> None:
    """Columns, types, keys and indexes of every table, compared by Alembic's autogenerate:
    a model changed without a migration (or the other way round) shows up here, per dialect."""
    declare_every_table()
    engine = make_engine(database_url)
    migrate(engine, migration_dirs())
    with engine.connect() as conn:
        # A dialect's own full-text objects are no table's: they are left out.
        opts = {"include_name": lambda name, kind, parents: name not in fulltext_objects}
        assert compare_metadata(MigrationContext.configure(conn, opts=opts), metadata) == []
    assert set(metadata.tables) >= TABLES
    engine.dispose()


def test_every_migration_downgrades_and_upgrades_again(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate(engine, migration_dirs())
    with engine.begin() as conn:
        cfg = alembic_config(engine, migration_dirs())
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    assert set(sa.inspect(engine).get_table_names()) <= {"alembic_version"}
    migrate(engine, migration_dirs())
    assert set(sa.inspect(engine).get_table_names()) >= TABLES
    engine.dispose()


def test_concurrent_increments_lose_nothing(database_url: str) -> None:
    """The seed lost the first event of every minute; 8 threads × 50 events must all count."""
    engine = make_engine(database_url)
    migrate(engine, migration_dirs())

    def work() -> None:
        for _ in range(50):
            with engine.begin() as conn:
                count_outcome(conn, "images", "success", at=600.0)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with engine.connect() as conn:
        assert conn.execute(sa.select(outcome_counts.c.count)).scalar_one() == 400
        (minute,) = histogram(conn, "images")
    assert (minute.minute, minute.counts) == (600, {"success": 400, "duplicate": 0, "error": 0})
    engine.dispose()


def test_histogram_fills_empty_minutes(database_url: str, sample_app: object) -> None:
    engine = make_engine(database_url)
    migrate(engine, migration_dirs())
    with engine.begin() as conn:
        count_outcome(conn, "images", "error", at=60.5)
        count_outcome(conn, "images", "duplicate", at=240.0)
        count_outcome(conn, "sample", "saved", at=120.0)  # another app's counts stay out
    with engine.connect() as conn:
        bars = histogram(conn, "images")
    assert [(b.minute, b.counts["error"], b.counts["duplicate"]) for b in bars] == [
        (60, 1, 0),
        (120, 0, 0),
        (180, 0, 0),
        (240, 0, 1),
    ]
    engine.dispose()


def test_insert_ignore_reports_whether_it_inserted(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate(engine, migration_dirs())
    row = {"app": "a", "minute": 0, "outcome": "success", "count": 1}
    with engine.begin() as conn:
        assert insert_ignore(conn, outcome_counts, row) is True
        assert insert_ignore(conn, outcome_counts, {**row, "count": 5}) is False
        insert_ignore_many(conn, outcome_counts, [row, {**row, "minute": 60}])
    with engine.connect() as conn:
        counts = conn.execute(sa.select(outcome_counts.c.count).order_by("minute")).scalars()
        assert list(counts) == [1, 1]
    engine.dispose()
