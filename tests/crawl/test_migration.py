"""A database made by the release before the crawl layer keeps working: the images app's
crawls and lines are carried over into the layer's tables (and back on downgrade), on
SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import Engine

import sleuth.apps.images
from sleuth.apps.images.crawl import error_reasons, progress
from sleuth.crawl import runs
from sleuth.crawl.failures import every_failure
from sleuth.crawl.models import crawl_run_items, crawl_runs
from sleuth.store.db import alembic_config, make_engine, migrate

IMAGES_MIGRATIONS = [Path(sleuth.apps.images.__file__).parent / "migrations"]

OLD_CRAWLS = sa.table(
    "crawls",
    sa.column("id"),
    sa.column("source"),
    sa.column("created_at"),
    sa.column("lines_total"),
)
OLD_ITEMS = sa.table(
    "crawl_items",
    sa.column("crawl_id"),
    sa.column("line_no"),
    sa.column("url"),
    sa.column("outcome"),
    sa.column("reason"),
    sa.column("detail"),
    sa.column("http_status"),
    sa.column("md5"),
    sa.column("finished_at"),
)
DONE_CRAWL, HALF_CRAWL = "a" * 40, "b" * 40
LINES = [
    # crawl, line, url, outcome, reason, detail, status, md5, finished_at
    (DONE_CRAWL, 1, "http://h/1.jpg", "success", None, None, None, "1" * 32, 100.0),
    (DONE_CRAWL, 2, "http://h/1.jpg", "duplicate", None, None, None, "1" * 32, 101.0),
    (DONE_CRAWL, 3, "http://h/e", "error", "http_status", "HTTP 404", 404, None, 102.5),
    (DONE_CRAWL, 10, "http://h/x", "error", None, None, None, None, 103.0),
    (HALF_CRAWL, 1, "http://h/2.jpg", "success", None, None, None, "2" * 32, 200.0),
    (HALF_CRAWL, 2, "http://h/3.jpg", None, None, None, None, None, None),
]
COLUMNS = ("crawl_id", "line_no", "url", "outcome", "reason", "detail", "http_status", "md5")


def _to(engine: Engine, *revisions: str, down: bool = False) -> None:
    with engine.begin() as conn:
        cfg = alembic_config(engine, IMAGES_MIGRATIONS)
        cfg.attributes["connection"] = conn
        for revision in revisions:
            (command.downgrade if down else command.upgrade)(cfg, revision)


@pytest.fixture
def old_database(database_url: str) -> Iterator[Engine]:
    """A database at the schema of the release before the crawl layer, with two crawls."""
    engine = make_engine(database_url)
    _to(engine, "core_0003", "images_0001")
    with engine.begin() as conn:
        conn.execute(
            sa.insert(OLD_CRAWLS),
            [
                {
                    "id": DONE_CRAWL,
                    "source": "/lists/done.txt",
                    "created_at": 90.0,
                    "lines_total": 4,
                },
                {
                    "id": HALF_CRAWL,
                    "source": "/lists/half.txt",
                    "created_at": 190.0,
                    "lines_total": None,
                },
            ],
        )
        conn.execute(
            sa.insert(OLD_ITEMS),
            [dict(zip((*COLUMNS, "finished_at"), line, strict=True)) for line in LINES],
        )
    yield engine
    engine.dispose()


def test_old_crawls_become_runs_items_and_failures(old_database: Engine) -> None:
    engine = old_database
    migrate(engine, IMAGES_MIGRATIONS)
    assert not {"crawls", "crawl_items"} & set(sa.inspect(engine).get_table_names())
    with engine.connect() as conn:
        found = {
            r.id: (r.app, r.name, r.created_at, r.finished_at, r.total)
            for r in conn.execute(sa.select(crawl_runs))
        }
        items = {
            (r.run_id, r.item_key): (r.target, r.state, r.outcome, r.result)
            for r in conn.execute(sa.select(crawl_run_items))
        }
    assert found == {
        DONE_CRAWL: ("images", "/lists/done.txt", 90.0, 103.0, 4),
        HALF_CRAWL: ("images", "/lists/half.txt", 190.0, None, None),
    }
    assert items == {
        (DONE_CRAWL, "1"): ("http://h/1.jpg", "done", "success", "1" * 32),
        (DONE_CRAWL, "2"): ("http://h/1.jpg", "done", "duplicate", "1" * 32),
        (DONE_CRAWL, "3"): ("http://h/e", "failed", "error", None),
        (DONE_CRAWL, "10"): ("http://h/x", "failed", "error", None),
        (HALF_CRAWL, "1"): ("http://h/2.jpg", "done", "success", "2" * 32),
        (HALF_CRAWL, "2"): ("http://h/3.jpg", "queued", None, None),
    }
    failures = [
        (f.key, f.target, f.reason, f.message, f.http_status, f.attempts, f.last_failed_at)
        for f in every_failure(engine, "images")
    ]
    assert sorted(failures) == [
        ("10", "http://h/x", "unknown", "", None, 1, 103.0),
        ("3", "http://h/e", "http_status", "HTTP 404", 404, 1, 102.5),
    ]
    done = progress(engine, DONE_CRAWL)
    assert (done.success, done.duplicate, done.error, done.finished) == (1, 1, 2, True)
    assert error_reasons(engine, DONE_CRAWL) == [("http_status", 1), ("unknown", 1)]
    # The unfinished crawl resumes where it was: only its queued line is unresolved.
    assert runs.is_resolved(engine, HALF_CRAWL, "1")
    assert not runs.is_resolved(engine, HALF_CRAWL, "2")


def test_downgrade_gives_the_old_rows_back(old_database: Engine) -> None:
    engine = old_database
    migrate(engine, IMAGES_MIGRATIONS)
    _to(engine, "images_0001", down=True)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(*(OLD_ITEMS.c[name] for name in COLUMNS))).all()
        crawls = conn.execute(sa.select(OLD_CRAWLS)).all()
        left = conn.execute(sa.select(sa.func.count()).select_from(crawl_runs)).scalar()
    # An error line without a reason came back with the one it was given on the way up.
    want = [
        line[:4] + (("unknown", "") if line[1] == 10 else line[4:6]) + line[6:8] for line in LINES
    ]
    assert sorted(map(tuple, rows), key=repr) == sorted(want, key=repr)
    assert sorted(map(tuple, crawls)) == [
        (DONE_CRAWL, "/lists/done.txt", 90.0, 4),
        (HALF_CRAWL, "/lists/half.txt", 190.0, None),
    ]
    assert left == 0
