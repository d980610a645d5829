"""Per-minute outcome counters (success / error / duplicate, per app).

Each count is one atomic upsert in the same transaction as the event it counts, so no event
is lost or counted twice when a job runs again (the caller counts only state changes)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import Connection

from sleuth.store.schema import metadata
from sleuth.store.upsert import increment

OUTCOMES = ("success", "error", "duplicate")

outcome_counts = sa.Table(
    "outcome_counts",
    metadata,
    sa.Column("app", sa.String(32), primary_key=True),
    sa.Column("minute", sa.BigInteger, primary_key=True),  # epoch seconds, start of minute
    sa.Column("outcome", sa.String(16), primary_key=True),
    sa.Column("count", sa.BigInteger, nullable=False),
)


def minute_of(ts: float) -> int:
    return int(ts // 60) * 60


def count_outcome(conn: Connection, app: str, outcome: str, at: float | None = None) -> None:
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}")
    key = {"app": app, "minute": minute_of(time.time() if at is None else at), "outcome": outcome}
    increment(conn, outcome_counts, key, "count")


@dataclass(frozen=True)
class MinuteCounts:
    minute: int
    success: int = 0
    error: int = 0
    duplicate: int = 0

    @property
    def total(self) -> int:
        return self.success + self.error + self.duplicate


def histogram(conn: Connection, app: str, since: float | None = None) -> list[MinuteCounts]:
    """Counts per minute, oldest first, with empty minutes filled in so bars line up in time."""
    q = sa.select(outcome_counts.c.minute, outcome_counts.c.outcome, outcome_counts.c.count).where(
        outcome_counts.c.app == app
    )
    if since is not None:
        q = q.where(outcome_counts.c.minute >= minute_of(since))
    by_minute: dict[int, dict[str, int]] = {}
    for minute, outcome, count in conn.execute(q):
        by_minute.setdefault(int(minute), {})[outcome] = int(count)
    if not by_minute:
        return []
    first, last = min(by_minute), max(by_minute)
    return [MinuteCounts(minute=m, **by_minute.get(m, {})) for m in range(first, last + 60, 60)]
