"""The record of every failed item: what it was, why (a reason code and a message), how many
times and when it failed, and in which run. Written in the transaction that fails the item,
so a job run twice records its failure once; marked resolved when a retry succeeds."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from sleuth.crawl.models import crawl_failures, crawl_run_items, crawl_runs
from sleuth.timefmt import iso_utc

MAX_MESSAGE = 2000  # characters of a failure's message that are kept

_F = crawl_failures.c
_OF_ITEM = (_F.run_id == sa.bindparam("w_run"), _F.item_key == sa.bindparam("w_key"))
_AGAIN = (
    sa.update(crawl_failures)
    .where(*_OF_ITEM)
    .values(
        attempts=_F.attempts + 1,
        reason=sa.bindparam("reason"),
        message=sa.bindparam("message"),
        http_status=sa.bindparam("http_status"),
        last_failed_at=sa.bindparam("at"),
        resolved_at=None,
    )
)
_FIRST = sa.insert(crawl_failures).values(
    run_id=sa.bindparam("w_run"),
    item_key=sa.bindparam("w_key"),
    reason=sa.bindparam("reason"),
    message=sa.bindparam("message"),
    http_status=sa.bindparam("http_status"),
    attempts=1,
    first_failed_at=sa.bindparam("at"),
    last_failed_at=sa.bindparam("at"),
)
_RESOLVED = (
    sa.update(crawl_failures)
    .where(*_OF_ITEM, _F.resolved_at.is_(None))
    .values(resolved_at=sa.bindparam("at"))
)


def record_failure(
    conn: Connection,
    run: str,
    key: str,
    reason: str,
    message: str,
    http_status: int | None,
    at: float,
) -> None:
    """Add a failure of the item, in the caller's transaction. The caller calls this only
    when it changed the item's state, and that row lock orders failures of one item."""
    values = {
        "w_run": run,
        "w_key": key,
        "reason": reason[:64],
        "message": message[:MAX_MESSAGE],
        "http_status": http_status,
        "at": at,
    }
    if conn.execute(_AGAIN, values).rowcount == 0:
        conn.execute(_FIRST, values)


def mark_resolved(conn: Connection, run: str, key: str, at: float) -> None:
    """The item succeeded: its failure, if it had one, is kept and marked resolved."""
    conn.execute(_RESOLVED, {"w_run": run, "w_key": key, "at": at})


@dataclass(frozen=True)
class Failure:
    """An unresolved failure, with the item it is about."""

    id: int
    run: str
    key: str
    target: str
    reason: str
    message: str
    http_status: int | None
    attempts: int
    first_failed_at: float
    last_failed_at: float

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "crawl": self.run,
            "item": self.key,
            "target": self.target,
            "reason": self.reason,
            "message": self.message,
            "http_status": self.http_status,
            "attempts": self.attempts,
            "first_failed": iso_utc(self.first_failed_at),
            "last_failed": iso_utc(self.last_failed_at),
        }


FIELDS = (
    "id",
    "crawl",
    "item",
    "target",
    "reason",
    "message",
    "http_status",
    "attempts",
    "first_failed",
    "last_failed",
)


def open_failures(
    app: str, run: str | None = None, reason: str | None = None
) -> sa.Select[tuple[Any, ...]]:
    """The app's unresolved failures, of one run and/or one reason when given, in id order."""
    query = (
        sa.select(
            _F.id,
            _F.run_id,
            _F.item_key,
            crawl_run_items.c.target,
            _F.reason,
            _F.message,
            _F.http_status,
            _F.attempts,
            _F.first_failed_at,
            _F.last_failed_at,
        )
        .join(crawl_runs, crawl_runs.c.id == _F.run_id)
        .join(
            crawl_run_items,
            sa.and_(
                crawl_run_items.c.run_id == _F.run_id,
                crawl_run_items.c.item_key == _F.item_key,
            ),
        )
        .where(crawl_runs.c.app == app, _F.resolved_at.is_(None))
        .order_by(_F.id)
    )
    if run is not None:
        query = query.where(_F.run_id == run)
    if reason is not None:
        query = query.where(_F.reason == reason)
    return query


def page(
    conn: Connection,
    app: str,
    *,
    run: str | None = None,
    reason: str | None = None,
    after: int = 0,
    limit: int = 100,
) -> list[Failure]:
    """At most `limit` failures with ids above `after` (keyset paging: a page costs the
    same however deep it is, and failures added meanwhile never shift it)."""
    rows = conn.execute(open_failures(app, run, reason).where(_F.id > after).limit(limit))
    return [
        Failure(
            id=int(r[0]),
            run=r[1],
            key=r[2],
            target=r[3],
            reason=r[4],
            message=r[5],
            http_status=r[6],
            attempts=int(r[7]),
            first_failed_at=float(r[8]),
            last_failed_at=float(r[9]),
        )
        for r in rows
    ]


def every_failure(
    engine: Engine, app: str, *, run: str | None = None, reason: str | None = None
) -> Iterator[Failure]:
    """Every matching failure, read page by page so memory stays bounded."""
    after = 0
    while True:
        with engine.connect() as conn:
            batch = page(conn, app, run=run, reason=reason, after=after, limit=1000)
        yield from batch
        if len(batch) < 1000:
            return
        after = batch[-1].id


def by_reason(conn: Connection, app: str, run: str | None = None) -> dict[str, int]:
    """Unresolved failures per reason code, most frequent first."""
    query = (
        sa.select(_F.reason, sa.func.count().label("n"))
        .join(crawl_runs, crawl_runs.c.id == _F.run_id)
        .where(crawl_runs.c.app == app, _F.resolved_at.is_(None))
        .group_by(_F.reason)
        .order_by(sa.desc("n"), _F.reason)
    )
    if run is not None:
        query = query.where(_F.run_id == run)
    return {reason: int(n) for reason, n in conn.execute(query)}
