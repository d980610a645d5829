"""The statistics potstats2's API answers, read from the analytics tables.

Each function takes a connection and a `Scope` (which site, and optionally which year and
board) and returns plain values in potstats2's shapes; `api.py` turns arguments into scopes and
these values into JSON. Users are `{"name", "uid"}` with their latest name. Times are UTC.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

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
    forum_pair_totals,
    forum_poster_totals,
    forum_thread_totals,
    forum_topics,
    forum_user_domain_totals,
    forum_users,
    forum_weekday_totals,
)
from sleuth.apps.forum.totals import ALL_HOURS, MEASURES

ORDER_COLUMNS = ("post_count", "edit_count", "avg_post_length", "threads_created")
PAIR_KINDS = ("quote", "reply")
SLOTS = {
    (week, weekday, hour): f"{week:02d}:{weekday}:{hour:02d}"
    for week in range(1, 54)
    for weekday in range(1, 8)
    for hour in range(24)
}
"""The names of the hourly answer's slots, made once: about a tenth of a 9k-slot answer's time
went to formatting them."""
PART = 500
"""Rows of a long answer read at a time: all 9k rows of an hourly answer at once survive the
collector's young generations, and its full collections then cost about twice the answer's own
time (1.3 s against 0.3 s over 30 answers); a row at a time, each is a fetch of its own."""


@dataclass(frozen=True)
class Scope:
    site: int
    year: int | None = None
    board: int | None = None

    def where(self, table: sa.Table) -> sa.ColumnElement[bool]:
        """The rows of a per-day table in the scope."""
        clause: sa.ColumnElement[bool] = table.c.site_id == self.site
        if self.year is not None:
            clause = clause & (table.c.year == self.year)
        if self.board is not None:
            clause = clause & (table.c.board_id == self.board)
        return clause

    def totals(self, table: sa.Table) -> sa.ColumnElement[bool]:
        """The one row set of a totals table that answers for the scope (see `totals.py`)."""
        clause = (table.c.site_id == self.site) & (
            table.c.board_id == (ALL_BOARDS if self.board is None else self.board)
        )
        if "hour" in table.c:  # the day totals have no all-years rows: a year is a day range
            return clause if self.year is None else clause & (table.c.year == self.year)
        return clause & (table.c.year == (ALL_YEARS if self.year is None else self.year))


def _sums() -> list[sa.Label[Any]]:
    """The per-day measures summed, named as the API names them."""
    return [sa.func.sum(forum_activity.c[m]).label(m) for m in MEASURES]


def _numbers(row: Any) -> dict[str, Any]:
    return _measures(row.post_count, row.edit_count, row.length_sum, row.threads_created)


def _measures(posts: Any, edits: Any, length: Any, threads: Any) -> dict[str, Any]:
    """A row's numbers as the API gives them (sums may be None or Decimal)."""
    posts = int(posts or 0)
    return {
        "post_count": posts,
        "edit_count": int(edits or 0),
        "avg_post_length": float(length or 0) / posts if posts else 0.0,
        "threads_created": int(threads or 0),
    }


def user(uid: int, names: dict[int, str]) -> dict[str, Any]:
    return {"name": names.get(uid, ""), "uid": uid}


def names_of(conn: Connection, site: int, uids: Sequence[int]) -> dict[int, str]:
    """The latest names of these users."""
    names: dict[int, str] = {}
    ordered = sorted(set(uids))
    for start in range(0, len(ordered), 500):
        rows = conn.execute(
            sa.select(forum_users.c.user_id, forum_users.c.name).where(
                (forum_users.c.site_id == site)
                & forum_users.c.user_id.in_(ordered[start : start + 500])
            )
        )
        names.update({int(u): str(n) for u, n in rows})
    return names


def boards(conn: Connection, site: int) -> dict[str, dict[str, Any]]:
    """Each board with the topics and posts stored for it."""
    b, t = forum_boards.c, forum_topics.c
    topics = dict(
        conn.execute(
            sa.select(t.board_id, sa.func.count()).where(t.site_id == site).group_by(t.board_id)
        ).all()
    )
    w = forum_weekday_totals.c
    posts = dict(
        conn.execute(
            sa.select(w.board_id, w.post_count).where(
                (w.site_id == site)
                & (w.board_id != ALL_BOARDS)
                & (w.year == ALL_YEARS)
                & (w.weekday == ALL_WEEKDAYS)
            )
        ).all()
    )
    rows = conn.execute(
        sa.select(b.board_id, b.name, b.description).where(b.site_id == site).order_by(b.board_id)
    )
    return {
        str(r.board_id): {
            "name": r.name,
            "description": r.description,
            "thread_count": int(topics.get(r.board_id, 0)),
            "post_count": int(posts.get(r.board_id, 0) or 0),
        }
        for r in rows
    }


@dataclass(frozen=True)
class After:
    """Where a keyset page starts: after the row with this sort value and user id. Without a
    uid, after every row of that value; without a value, after that user's own row (a user with
    no posts in the scope sorts as 0)."""

    value: float | None
    uid: int | None = None


def poster_stats(
    conn: Connection,
    scope: Scope,
    *,
    order_by: str = "post_count",
    descending: bool = True,
    limit: int = 1000,
    after: After | None = None,
) -> tuple[list[dict[str, Any]], After | None]:
    """A page of users by `order_by`, ties by uid; and where the next page starts (None at the
    end). Pages are keyset, so a deep page costs what the first does."""
    if order_by not in ORDER_COLUMNS:
        raise ValueError(f"Invalid order_by_column: {order_by}")
    t = forum_poster_totals.c
    value = getattr(t, order_by)
    query = sa.select(
        t.user_id,
        t.post_count,
        t.edit_count,
        t.length_sum,
        t.threads_created,
        value.label("sort_value"),
    ).where(scope.totals(forum_poster_totals))
    if after is not None:
        bound_value = after.value
        if bound_value is None:
            own = query.where(t.user_id == after.uid).with_only_columns(value)
            bound_value = float(conn.execute(own).scalar() or 0)
        if after.uid is None:
            query = query.where(value < bound_value if descending else value > bound_value)
        else:
            key = sa.tuple_(value, t.user_id)
            bound = sa.tuple_(sa.literal(bound_value), sa.literal(after.uid))
            query = query.where(key < bound if descending else key > bound)
    order = (value.desc(), t.user_id.desc()) if descending else (value.asc(), t.user_id.asc())
    rows = conn.execute(query.order_by(*order).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    names = names_of(conn, scope.site, [int(r.user_id) for r in rows])
    out = [{"user": user(int(r.user_id), names)} | _numbers(r) for r in rows]
    following = None
    if more and rows:
        last = rows[-1]
        following = After(float(last.sort_value or 0), int(last.user_id))
    return out, following


def weekday_stats(conn: Connection, scope: Scope) -> dict[str, dict[str, Any]]:
    """By ISO weekday, "1" (Monday) to "7"."""
    w = forum_weekday_totals.c
    where = scope.totals(forum_weekday_totals) & (w.weekday != ALL_WEEKDAYS)
    return {str(weekday): numbers for weekday, numbers in _weekday_rows(conn, w.weekday, where)}


def _weekday_rows(
    conn: Connection, column: sa.Column[Any], where: sa.ColumnElement[bool]
) -> Iterator[tuple[Any, dict[str, Any]]]:
    """The weekday totals' rows picked by `where`, by `column`, with their numbers."""
    w = forum_weekday_totals.c
    query = sa.select(column, *(w[m] for m in MEASURES)).where(where).order_by(column)
    for value, posts, edits, length, threads in conn.execute(query):
        yield value, _measures(posts, edits, length, threads)


def hourly_stats(conn: Connection, scope: Scope) -> dict[str, dict[str, Any]]:
    """By week of the year, weekday and hour: "WW:D:HH", as PostgreSQL's 'WW:ID:HH24'. Each
    slot is one ready row: of the hour totals over every year, or in a year of its day totals
    (a (week, weekday) of a year is one day)."""
    table = forum_day_totals if scope.year is not None else forum_hour_totals
    t = table.c
    query = (
        sa.select(t.week, t.weekday, t.hour, *(t[m] for m in MEASURES))
        .where(scope.totals(table) & (t.hour != ALL_HOURS))
        .order_by(t.week, t.weekday, t.hour)
    )
    return {
        SLOTS[week, weekday, hour]: _measures(posts, edits, length, threads)
        for part in conn.execute(query).partitions(PART)
        for week, weekday, hour, posts, edits, length, threads in part
    }


def _merge(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """Two rows of the same slot added (two days of one month)."""
    if old is None:
        return new
    posts = old["post_count"] + new["post_count"]
    length = old["avg_post_length"] * old["post_count"] + new["avg_post_length"] * new["post_count"]
    return {
        "post_count": posts,
        "edit_count": old["edit_count"] + new["edit_count"],
        "avg_post_length": length / posts if posts else 0.0,
        "threads_created": old["threads_created"] + new["threads_created"],
    }


def year_stats(conn: Connection, scope: Scope) -> dict[str, dict[str, Any]]:
    """By year."""
    w = forum_weekday_totals.c
    where = (w.site_id == scope.site) & (w.weekday == ALL_WEEKDAYS)
    where &= w.board_id == (ALL_BOARDS if scope.board is None else scope.board)
    where &= w.year != ALL_YEARS if scope.year is None else w.year == scope.year
    return {str(year): numbers for year, numbers in _weekday_rows(conn, w.year, where)}


def daily_stats(conn: Connection, scope: Scope) -> dict[str, dict[str, Any]]:
    """By UTC day, "YYYY-MM-DD": each day one ready row of the day totals (its whole day)."""
    d = forum_day_totals.c
    query = (
        sa.select(d.day, *(d[m] for m in MEASURES))
        .where(scope.totals(forum_day_totals) & (d.hour == ALL_HOURS))
        .order_by(d.day)
    )
    epoch = date(1970, 1, 1)
    return {
        (epoch + timedelta(days=day)).isoformat(): _measures(posts, edits, length, threads)
        for part in conn.execute(query).partitions(PART)
        for day, posts, edits, length, threads in part
    }


def poster_development(conn: Connection, scope: Scope, uid: int) -> dict[str, dict[str, Any]]:
    """One user's numbers by month, "YYYY-MM"."""
    epoch = date(1970, 1, 1)
    months: dict[str, dict[str, Any]] = {}
    a = forum_activity.c
    query = (
        sa.select(a.day, *_sums())
        .where(scope.where(forum_activity) & (a.user_id == uid))
        .group_by(a.day)
        .order_by(a.day)
    )
    for row in conn.execute(query):
        month = (epoch + timedelta(days=int(row.day))).strftime("%Y-%m")
        months[month] = _merge(months.get(month), _numbers(row))
    return months


def social_graph(
    conn: Connection, scope: Scope, *, limit: int = 1000, kind: str | None = None
) -> list[dict[str, Any]]:
    """Who quotes (or answers, `kind` one of PAIR_KINDS; both if None) whom, most first, ties
    by the higher ids first (as in poster_stats: the order of an index read backwards);
    intensity is a pair's count over the largest."""
    p = forum_pair_totals.c
    rows = conn.execute(
        sa.select(p.user_id, p.target_user_id, p.count.label("n"))
        .where(scope.totals(forum_pair_totals) & (p.kind == (kind or ALL_KINDS)))
        .order_by(p.count.desc(), p.user_id.desc(), p.target_user_id.desc())
        .limit(limit)
    ).all()
    names = names_of(conn, scope.site, [int(u) for r in rows for u in r[:2]])
    top = max((int(r.n) for r in rows), default=0)
    return [
        {
            "from": user(int(r.user_id), names),
            "to": user(int(r.target_user_id), names),
            "count": int(r.n),
            "intensity": int(r.n) / top,
        }
        for r in rows
    ]


def user_domains(
    conn: Connection, scope: Scope, *, kind: str | None, limit: int = 1000
) -> list[dict[str, Any]]:
    """(user, domain) pairs by how often the user linked the domain, most first."""
    d = forum_user_domain_totals.c
    rows = conn.execute(
        sa.select(d.user_id, d.domain, d.count.label("n"))
        .where(scope.totals(forum_user_domain_totals) & (d.kind == (kind or ALL_KINDS)))
        .order_by(d.count.desc(), d.domain, d.user_id)
        .limit(limit)
    ).all()
    names = names_of(conn, scope.site, [int(r.user_id) for r in rows])
    return [
        {"user": user(int(r.user_id), names), "domain": r.domain, "count": int(r.n)} for r in rows
    ]


def domains(
    conn: Connection, scope: Scope, *, kind: str | None, limit: int = 1000
) -> list[dict[str, Any]]:
    """Domains by how often they were linked, most first."""
    d = forum_domain_totals.c
    rows = conn.execute(
        sa.select(d.domain, d.count.label("n"))
        .where(scope.totals(forum_domain_totals) & (d.kind == (kind or ALL_KINDS)))
        .order_by(d.count.desc(), d.domain)
        .limit(limit)
    ).all()
    return [{"count": int(r.n), "domain": r.domain} for r in rows]


def thread_stats(conn: Connection, scope: Scope) -> dict[str, Any]:
    """Time to first response and thread lifetime (first to last post) of topics started in
    the scope: how many, and their median and mean in seconds (`threads.py` keeps them)."""
    row = conn.execute(
        sa.select(forum_thread_totals).where(scope.totals(forum_thread_totals))
    ).first()
    return {
        "threads": int(row.threads) if row is not None else 0,
        "first_response": _summary(row, "first_response"),
        "lifetime": _summary(row, "lifetime"),
    }


def _summary(row: Any, time: str) -> dict[str, Any]:
    count = int(getattr(row, f"{time}_count", 0))
    if not count:
        return {"count": 0, "median_seconds": None, "mean_seconds": None}
    return {
        "count": count,
        "median_seconds": float(getattr(row, f"{time}_median")),
        "mean_seconds": float(getattr(row, f"{time}_sum")) / count,
    }
