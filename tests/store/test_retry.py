"""A real deadlock on PostgreSQL and MariaDB: the transaction the server aborts runs again and
both commit. (SQLite has one writer at a time: it waits, it does not deadlock.)"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from sleuth.store.db import make_engine
from sleuth.store.retry import in_transaction
from tests.patience import PATIENCE
from tests.servers import scratch_database

rows = sa.Table(
    "retry_rows",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("n", sa.Integer, nullable=False),
)


@pytest.fixture(params=["postgresql", "mysql"])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    with scratch_database(request.param) as url:
        engine = make_engine(url)
        rows.metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(sa.insert(rows), [{"id": 1, "n": 0}, {"id": 2, "n": 0}])
        yield engine
        engine.dispose()


def cross_update(engine: Engine, attempts: int) -> tuple[list[str], list[BaseException]]:
    """Two threads update rows 1 then 2, and 2 then 1, each waiting for the other's first
    update on its first run: a deadlock the server must break."""
    both_locked = threading.Barrier(2)
    runs: list[str] = []
    errors: list[BaseException] = []

    def work(first: int, second: int) -> None:
        def body(conn: Connection) -> None:
            runs.append(f"{first}{second}")
            conn.execute(sa.update(rows).where(rows.c.id == first).values(n=rows.c.n + 1))
            if runs.count(f"{first}{second}") == 1:
                both_locked.wait(PATIENCE)
            conn.execute(sa.update(rows).where(rows.c.id == second).values(n=rows.c.n + 1))

        try:
            in_transaction(engine, body, attempts=attempts)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=pair) for pair in ((1, 2), (2, 1))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(PATIENCE)
    return runs, errors


def test_the_aborted_transaction_runs_again_and_both_commit(engine: Engine) -> None:
    runs, errors = cross_update(engine, attempts=3)
    assert errors == []
    assert sorted(runs) in (["12", "12", "21"], ["12", "21", "21"])  # one ran twice
    with engine.connect() as conn:
        assert list(conn.execute(sa.select(rows.c.n).order_by(rows.c.id)).scalars()) == [2, 2]


def test_with_one_attempt_the_deadlock_is_raised(engine: Engine) -> None:
    runs, errors = cross_update(engine, attempts=1)
    assert len(runs) == 2 and len(errors) == 1 and isinstance(errors[0], DBAPIError)
    with engine.connect() as conn:
        assert list(conn.execute(sa.select(rows.c.n).order_by(rows.c.id)).scalars()) == [1, 1]


def test_other_errors_are_not_retried(engine: Engine) -> None:
    calls: list[int] = []

    def duplicate(conn: Connection) -> None:
        calls.append(1)
        conn.execute(sa.insert(rows).values(id=1, n=5))

    with pytest.raises(DBAPIError):
        in_transaction(engine, duplicate)
    assert calls == [1]
