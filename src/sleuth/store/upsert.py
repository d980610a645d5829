"""Dialect-aware INSERT ... ON CONFLICT, the one way sleuth writes idempotently."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.sql import Insert


def insert_ignore(conn: Connection, table: Table, row: Mapping[str, Any]) -> bool:
    """Insert one row unless its key exists; True when this call inserted it."""
    stmt = _ignoring(conn, table).values(dict(row))
    if conn.dialect.name == "mysql":  # no RETURNING there; its rowcount is reliable
        return conn.execute(stmt).rowcount == 1
    # psycopg reports no rowcount for ON CONFLICT DO NOTHING; RETURNING tells for sure.
    key = next(iter(table.primary_key.columns))
    return conn.execute(stmt.returning(key)).first() is not None


def insert_ignore_many(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert rows in one round trip, skipping those whose key exists."""
    if rows:
        conn.execute(_ignoring(conn, table), [dict(r) for r in rows])


def _ignoring(conn: Connection, table: Table) -> Insert:
    stmt = _insert(conn, table)
    if conn.dialect.name == "mysql":
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

    One statement, so concurrent writers never lose an increment (the seed lost the first
    event of every minute creating the row and counting in two steps)."""
    insert_or_update(conn, table, {**key, column: by}, {column: table.c[column] + by})


def insert_or_update(
    conn: Connection, table: Table, row: Mapping[str, Any], updates: Mapping[str, Any]
) -> None:
    """Insert `row`, or if its primary key exists set the `updates` (expressions of the
    existing row's columns) instead: one statement that locks the row, so concurrent callers
    apply their updates one after the other (no lost update, no deadlock)."""
    stmt = _insert(conn, table).values(dict(row))
    if conn.dialect.name == "mysql":
        stmt = stmt.on_duplicate_key_update(dict(updates))  # type: ignore[attr-defined]
    else:
        stmt = stmt.on_conflict_do_update(  # type: ignore[attr-defined]
            index_elements=list(table.primary_key.columns), set_=dict(updates)
        )
    conn.execute(stmt)


def _insert(conn: Connection, table: Table) -> Insert:
    name = conn.dialect.name
    if name == "sqlite":
        return sqlite.insert(table)
    if name == "postgresql":
        return postgresql.insert(table)
    if name in {"mysql", "mariadb"}:
        return mysql.insert(table)
    raise RuntimeError(f"unsupported database dialect {name!r}")
