"""Per-minute outcome counters, per app, of the outcomes each app declares (`App.outcomes`).

Each count is one atomic upsert in the same transaction as the event it counts, so no event
is lost or counted twice when a job runs again (the caller counts only state changes)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy import Connection

from sleuth.app import get_app
from sleuth.store.schema import metadata
from sleuth.store.upsert import increment

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


def declared_outcomes(app: str) -> tuple[str, ...]:
    """The outcome names the installed app `app` declares, in its order; a `ValueError`
    for an app that is not installed."""
    try:
        return get_app(app).outcome_names()
    except KeyError as exc:
        raise ValueError(exc.args[0]) from None


def count_outcome(conn: Connection, app: str, outcome: str, at: float | None = None) -> None:
    names = declared_outcomes(app)
    if outcome not in names:
        raise ValueError(f"app {app!r} declares no outcome {outcome!r}; it has {list(names)}")
    key = {"app": app, "minute": minute_of(time.time() if at is None else at), "outcome": outcome}
    increment(conn, outcome_counts, key, "count")


@dataclass(frozen=True)
class MinuteCounts:
    """One minute's count of each outcome the app declares (zero where none happened)."""

    minute: int
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def histogram(conn: Connection, app: str, since: float | None = None) -> list[MinuteCounts]:
    """Counts per minute, oldest first, with empty minutes filled in so bars line up in time.
    Only the outcomes the app declares now are shown."""
    names = declared_outcomes(app)
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
    return [
        MinuteCounts(m, {name: by_minute.get(m, {}).get(name, 0) for name in names})
        for m in range(first, last + 60, 60)
    ]
