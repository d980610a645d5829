"""The totals the API reads, kept from the per-day tables for the keys an analytics pass changed.

Each totals table is a `Rollup` of a per-day table: its rows grouped by the rollup's dimensions,
plus one more row for "every board" (board 0), "every year" (year 0), "every kind" ("all") or
"every hour" (hour -1) wherever the rollup rolls that dimension, so an answer for any scope is a
range of one index. The rolled rows are summed from the less rolled rows of the same table (a
year's total from its boards' totals), never from the per-day rows again, so their cost stays
small.

`refresh` takes the stale keys (site, board, day, user) that analytics moved to `forum_stale`,
recomputes the totals rows those keys determine (a poster's year on a board, a board's day, ...),
and clears the keys it read in the same transaction (at-least-once: a killed refresh leaves them
for the next one, and refreshing twice writes the same rows). When more keys are stale than
`FULL_AFTER`, a site's totals are rebuilt whole, in a few set-based statements.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import combinations
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from sleuth.apps.forum.markup import KINDS as LINK_KINDS
from sleuth.apps.forum.models import (
    ALL_BOARDS,
    ALL_KINDS,
    ALL_WEEKDAYS,
    ALL_YEARS,
    forum_activity,
    forum_boards,
    forum_day_totals,
    forum_domain_totals,
    forum_hour_totals,
    forum_link_days,
    forum_pair_days,
    forum_pair_totals,
    forum_poster_totals,
    forum_stale,
    forum_topics,
    forum_user_domain_totals,
    forum_weekday_totals,
)
from sleuth.apps.forum.records import DAY

PAIR_KINDS = ("quote", "reply")

ALL_HOURS = -1
ALL: dict[str, Any] = {
    "board_id": ALL_BOARDS,
    "year": ALL_YEARS,
    "kind": ALL_KINDS,
    "hour": ALL_HOURS,
    "weekday": ALL_WEEKDAYS,
}
FULL_AFTER = 20_000
"""More stale keys than this in a site: rebuild its totals whole (a first crawl, `--full`)."""
CHUNK = 400


@dataclass(frozen=True)
class Rollup:
    """A totals table: `source` rows grouped by `dims` (besides the site), summing `sums` and
    carrying `carried` (columns the dims determine); every subset of `rolled` also gets its
    "every" rows. Stale keys pick the rows to recompute by `filters` (dims a key determines:
    its board, day, user, and the day's year, week and weekday)."""

    target: sa.Table
    source: sa.Table
    dims: tuple[str, ...]
    sums: tuple[str, ...]
    rolled: tuple[str, ...]
    filters: tuple[str, ...]
    carried: tuple[str, ...] = ()
    every_in_source: tuple[str, ...] = ()  # a totals source: its "every" rows left out
    source_every: tuple[str, ...] = ()  # a totals source: only its "every" rows of these dims


MEASURES = ("post_count", "edit_count", "length_sum", "threads_created")
ROLLUPS = (
    Rollup(
        forum_poster_totals,
        forum_activity,
        ("board_id", "year", "user_id"),
        MEASURES,
        rolled=("board_id", "year"),
        filters=("board_id", "year", "user_id"),
    ),
    Rollup(
        forum_day_totals,
        forum_activity,
        ("board_id", "day", "hour"),
        MEASURES,
        rolled=("board_id", "hour"),
        filters=("board_id", "day"),
        carried=("year", "week", "weekday"),
    ),
    Rollup(  # after the day totals it sums: a year's (week, weekday, hour) row is a day's hour
        forum_hour_totals,
        forum_day_totals,
        ("board_id", "week", "weekday", "hour"),
        MEASURES,
        rolled=("board_id",),
        filters=("board_id", "week", "weekday"),
        every_in_source=("board_id", "hour"),
    ),
    Rollup(  # after the day totals too: their whole-day rows by (board, year, weekday)
        forum_weekday_totals,
        forum_day_totals,
        ("board_id", "year", "weekday"),
        MEASURES,
        rolled=("board_id", "year", "weekday"),
        filters=("board_id", "year", "weekday"),
        every_in_source=("board_id",),
        source_every=("hour",),
    ),
    Rollup(
        forum_pair_totals,
        forum_pair_days,
        ("board_id", "year", "kind", "user_id", "target_user_id"),
        ("count",),
        rolled=("board_id", "year", "kind"),
        filters=("board_id", "year", "user_id"),
    ),
    Rollup(
        forum_user_domain_totals,
        forum_link_days,
        ("board_id", "year", "kind", "user_id", "domain"),
        ("count",),
        rolled=("board_id", "year", "kind"),
        filters=("board_id", "year", "user_id"),
    ),
    Rollup(
        forum_domain_totals,
        forum_link_days,
        ("board_id", "year", "kind", "domain"),
        ("count",),
        rolled=("board_id", "year", "kind"),
        filters=("board_id", "year"),
    ),
)


def week_of(moment: datetime) -> int:
    """The week of the year, week 1 being January 1st to 7th (PostgreSQL's `WW`, potstats2's)."""
    return (moment.timetuple().tm_yday - 1) // 7 + 1


def calendar(day: int) -> dict[str, int]:
    """The year, week (`week_of`) and ISO weekday of a UTC day."""
    moment = datetime.fromtimestamp(day * DAY, UTC)
    return {"year": moment.year, "week": week_of(moment), "weekday": moment.isoweekday()}


def refresh_site(conn: Connection, site: int, *, full_after: int = FULL_AFTER) -> set[int]:
    s = forum_stale.c
    stale = conn.execute(sa.select(sa.func.count()).where(s.site_id == site)).scalar_one()
    if stale > full_after:  # rebuilt whole: the keys themselves are not needed (10M at 10M posts)
        keys: list[dict[str, int]] | None = None
        days = conn.execute(sa.select(s.day).where(s.site_id == site).distinct()).scalars()
        years = {calendar(int(day))["year"] for day in days}
        marks = sorted(
            int(m)
            for m in conn.execute(sa.select(s.mark).where(s.site_id == site).distinct()).scalars()
        )
    else:
        rows = conn.execute(
            sa.select(s.board_id, s.day, s.user_id, s.mark).where(s.site_id == site)
        ).all()
        keys = [
            {"board_id": int(r.board_id), "day": int(r.day), "user_id": int(r.user_id)}
            | calendar(int(r.day))
            for r in rows
        ]
        years = {k["year"] for k in keys}
        marks = sorted({int(r.mark) for r in rows})
    if keys is None:
        _analyze(conn, forum_activity, forum_pair_days, forum_link_days)
    reals = _reals(conn, site)
    for rollup in ROLLUPS:
        for n, rolled in enumerate(_variants(rollup)):
            _refresh(conn, rollup, site, rolled, keys, reals)
            if keys is None and n == 0:  # the rolled rows are summed from these
                _analyze(conn, rollup.target)
    for start in range(0, len(marks), CHUNK):
        conn.execute(
            forum_stale.delete().where(
                (s.site_id == site) & s.mark.in_(marks[start : start + CHUNK])
            )
        )
    return years


def _analyze(conn: Connection, *tables: sa.Table) -> None:
    """Have PostgreSQL's planner count these tables' rows anew: a full refresh follows a pass
    that filled them, and where autovacuum has not run since (or is off) it planned on the
    counts from before, an empty table: at 1M posts one of its statements ran over a minute,
    and keyed deletes read a whole year's rows through the wrong index."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("ANALYZE " + ", ".join(t.name for t in tables)))


def _variants(rollup: Rollup) -> list[tuple[str, ...]]:
    """Which dims are rolled in each kind of row, least rolled first (each is summed from one
    that rolls one dim fewer)."""
    return [c for n in range(len(rollup.rolled) + 1) for c in combinations(rollup.rolled, n)]


def _reals(conn: Connection, site: int) -> dict[str, list[Any]]:
    """The real values of the dims whose "every" rows are summed from them: the site's boards
    (those listed and those its topics are on), the kinds, the hours."""
    boards = set(
        conn.execute(sa.select(forum_boards.c.board_id).where(forum_boards.c.site_id == site))
        .scalars()
        .all()
    )
    topics = forum_topics.c
    boards |= set(
        conn.execute(sa.select(topics.board_id).where(topics.site_id == site).distinct())
        .scalars()
        .all()
    )
    return {
        "board_id": sorted(int(b) for b in boards if b != ALL_BOARDS),
        "kind": sorted({*PAIR_KINDS, *LINK_KINDS}),
        "hour": list(range(24)),
        "weekday": list(range(1, 8)),
    }


def _real(column: sa.Column[Any], dim: str, reals: dict[str, list[Any]]) -> Any:
    """`column` holds a real value, not "every": a list of them where there is one, so an index
    that leads with the dim is read per value; `!=` is no index range, and a rolled row's
    source read that way was a scan of the whole totals table per chunk of keys (250 ms at 1M
    posts, growing with the table)."""
    if dim in reals:
        return column.in_(reals[dim])
    return column != ALL[dim]


def _refresh(
    conn: Connection,
    rollup: Rollup,
    site: int,
    rolled: tuple[str, ...],
    keys: Sequence[dict[str, int]] | None,
    reals: dict[str, list[Any]],
) -> None:
    target = rollup.target
    filters = [f for f in rollup.filters if f not in rolled]
    # A real value in a dim the keys pick needs no `!= ALL` test: the keys are real. Leaving
    # it out is not only shorter: MariaDB 10.11 drops groups when `board_id != 0` meets a
    # list of (board_id, user_id) pairs on the primary key.
    real = [d for d in rollup.rolled if d not in rolled and (keys is None or d not in filters)]
    # the rows of this kind: "every" in the rolled dims, a real value in the others
    mine = [target.c.site_id == site]
    mine += [target.c[d] == ALL[d] for d in rolled] + [_real(target.c[d], d, reals) for d in real]
    if rolled:  # summed from the rows that roll one dim fewer
        source = target
        unrolled = rolled[-1]
        where = [source.c.site_id == site]
        where += [source.c[d] == ALL[d] for d in rolled if d != unrolled]
        where += [_real(source.c[d], d, reals) for d in (*real, unrolled)]
    else:
        source = rollup.source
        where = [source.c.site_id == site]
        where += [
            _real(source.c[d], d, reals)
            for d in rollup.every_in_source
            if keys is None or d not in filters  # as `real`: keys pick real values
        ]
        where += [source.c[d] == ALL[d] for d in rollup.source_every]
    group = [source.c[d] for d in rollup.dims if d not in rolled]
    # the selected values are named apart from the columns they read (so no database takes a
    # name in GROUP BY for the other); `names` places them by position
    columns: list[Any] = [sa.literal(site).label("v_site_id")]
    columns += [
        (sa.literal(ALL[d]) if d in rolled else source.c[d]).label(f"v_{d}") for d in rollup.dims
    ]
    columns += [sa.func.max(source.c[c]).label(f"v_{c}") for c in rollup.carried]
    columns += [sa.func.sum(source.c[m]).label(f"v_{m}") for m in rollup.sums]
    names = ["site_id", *rollup.dims, *rollup.carried, *rollup.sums]
    if target is forum_poster_totals:
        posts = sa.func.sum(source.c.post_count)
        length = sa.cast(sa.func.sum(source.c.length_sum), sa.Float)
        columns.append(
            sa.case((posts > 0, length / posts), else_=sa.literal(0.0)).label("v_avg_post_length")
        )
        names.append("avg_post_length")
    if keys is None:
        chunks: Iterable[list[tuple[int, ...]] | None] = [None]
    else:
        wanted = sorted({tuple(k[f] for f in filters) for k in keys})
        chunks = [wanted[i : i + CHUNK] for i in range(0, len(wanted), CHUNK)]
    for chunk in chunks:
        picked_target = sa.and_(*mine, *_picked(target, filters, chunk))
        picked_source = sa.and_(*where, *_picked(source, filters, chunk))
        conn.execute(target.delete().where(picked_target))
        select = sa.select(*columns).where(picked_source).group_by(*group)
        conn.execute(target.insert().from_select(names, select))


def _picked(
    table: sa.Table, filters: list[str], chunk: list[tuple[int, ...]] | None
) -> list[sa.ColumnElement[bool]]:
    if chunk is None or not filters:
        return []
    *prefix, last = (table.c[f] for f in filters)
    if not prefix:
        return [last.in_([v[0] for v in chunk])]
    # grouped by the leading dims (a few boards and years): each an index range, where a
    # list of row values would be read by a scan
    groups: dict[tuple[Any, ...], list[Any]] = {}
    for value in chunk:
        groups.setdefault(tuple(value[:-1]), []).append(value[-1])
    return [
        sa.or_(
            *(
                sa.and_(*(c == v for c, v in zip(prefix, lead, strict=True)), last.in_(tails))
                for lead, tails in groups.items()
            )
        )
    ]
