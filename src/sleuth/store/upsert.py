"""Dialect-aware INSERT ... ON CONFLICT, the one way sleuth writes idempotently.

The statements of the hot paths (`insert_ignore`, `increment`) are built once per dialect and
table and executed with the row as parameters: building one from values each time costs
SQLAlchemy ~0.3 ms of Python (coercing every value, keying its statement cache), several
times what SQLite takes to run it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Table
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.sql import Insert


def insert_ignore(conn: Connection, table: Table, row: Mapping[str, Any]) -> bool:
    """Insert one row unless its key exists; True when this call inserted it."""
    stmt = _insert_ignore_one(conn.dialect.name, table)
    if conn.dialect.name == "mysql":  # no RETURNING there; its rowcount is reliable
        return conn.execute(stmt, dict(row)).rowcount == 1
    return conn.execute(stmt, dict(row)).first() is not None


@cache
def _insert_ignore_one(dialect: str, table: Table) -> Insert:
    stmt = _ignoring(dialect, table)
    if dialect == "mysql":
        return stmt
    # psycopg reports no rowcount for ON CONFLICT DO NOTHING; RETURNING tells for sure.
    return stmt.returning(next(iter(table.primary_key.columns)))


def insert_ignore_many(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert rows in one round trip, skipping those whose key exists."""
    if rows:
        conn.execute(_ignoring(conn.dialect.name, table), [dict(r) for r in rows])


@cache
def _ignoring(dialect: str, table: Table) -> Insert:
    stmt = _insert(dialect, table)
    if dialect == "mysql":
        return stmt.prefix_with("IGNORE")
    return stmt.on_conflict_do_nothing()  # type: ignore[attr-defined]


def increment(
    conn: Connection,
    table: Table,
    key: Mapping[str, Any],
    column: str,
    by: int = 1,
) -> None:
    """Atomically add `by` to `column` of the row with primary key `key`, creating it at `by`.

    One statement, so concurrent writers never lose an increment (creating the row and
    counting in two steps loses an event when two writers start the same row at once)."""
    stmt = _incrementing(conn.dialect.name, table, column)
    conn.execute(stmt, {**key, column: by, _BY: by})


_BY = "increment_by"


@cache
def _incrementing(dialect: str, table: Table, column: str) -> Insert:
    return _upsert(dialect, table, {column: table.c[column] + sa.bindparam(_BY)})


def insert_or_update(
    conn: Connection, table: Table, row: Mapping[str, Any], updates: Mapping[str, Any]
) -> None:
    """Insert `row`, or if its primary key exists set the `updates` (expressions of the
    existing row's columns) instead: one statement that locks the row, so concurrent callers
    apply their updates one after the other (no lost update, no deadlock)."""
    conn.execute(_upsert(conn.dialect.name, table, updates).values(dict(row)))


def _upsert(dialect: str, table: Table, updates: Mapping[str, Any]) -> Insert:
    stmt = _insert(dialect, table)
    if dialect == "mysql":
        return stmt.on_duplicate_key_update(dict(updates))  # type: ignore[attr-defined]
    return stmt.on_conflict_do_update(  # type: ignore[attr-defined]
        index_elements=list(table.primary_key.columns), set_=dict(updates)
    )


def _insert(name: str, table: Table) -> Insert:
    if name == "sqlite":
        return sqlite.insert(table)
    if name == "postgresql":
        return postgresql.insert(table)
    if name in {"mysql", "mariadb"}:
        return mysql.insert(table)
    raise RuntimeError(f"unsupported database dialect {name!r}")
