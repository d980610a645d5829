"""The statistics potstats2's API answers, read from the analytics tables.

Each function takes a connection and a `Scope` (which site, and optionally which year and
board) and returns plain values in potstats2's shapes; `api.py` turns arguments into scopes and
these values into JSON. Users are `{"name", "uid"}` with their latest name. Times are UTC.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from sleuth.apps.forum.models import (
    forum_activity,
    forum_boards,
    forum_link_days,
    forum_pair_days,
    forum_posts,
    forum_topics,
    forum_users,
)

ORDER_COLUMNS = ("post_count", "edit_count", "avg_post_length", "threads_created")
PAIR_KINDS = ("quote", "reply")


@dataclass(frozen=True)
class Scope:
    site: int
    year: int | None = None
    board: int | None = None

    def where(self, table: sa.Table) -> sa.ColumnElement[bool]:
        clause: sa.ColumnElement[bool] = table.c.site_id == self.site
        if self.year is not None:
            clause = clause & (table.c.year == self.year)
        if self.board is not None:
            clause = clause & (table.c.board_id == self.board)
        return clause


def _sums() -> list[sa.Label[Any]]:
    a = forum_activity.c
    return [
        sa.func.sum(a.post_count).label("post_count"),
        sa.func.sum(a.edit_count).label("edit_count"),
        sa.func.sum(a.length_sum).label("length_sum"),
        sa.func.sum(a.threads_created).label("threads_created"),
    ]


def _numbers(row: Any) -> dict[str, Any]:
    posts = int(row.post_count or 0)
    return {
        "post_count": posts,
        "edit_count": int(row.edit_count or 0),
        "avg_post_length": float(row.length_sum or 0) / posts if posts else 0.0,
        "threads_created": int(row.threads_created or 0),
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
    posts = dict(
        conn.execute(
            sa.select(forum_activity.c.board_id, sa.func.sum(forum_activity.c.post_count))
            .where(forum_activity.c.site_id == site)
            .group_by(forum_activity.c.board_id)
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
    a = forum_activity.c
    sums = _sums()
    value: sa.ColumnElement[Any]
    if order_by == "avg_post_length":
        value = sa.cast(sa.func.sum(a.length_sum), sa.Float) / sa.func.sum(a.post_count)
    else:
        value = sa.func.sum(getattr(a, order_by))
    query = (
        sa.select(a.user_id, *sums, value.label("sort_value"))
        .where(scope.where(forum_activity))
        .group_by(a.user_id)
    )
    if after is not None:
        bound_value = after.value
        if bound_value is None:
            own = query.having(a.user_id == after.uid).with_only_columns(value)
            bound_value = float(conn.execute(own).scalar() or 0)
        if after.uid is None:
            query = query.having(value < bound_value if descending else value > bound_value)
        else:
            key = sa.tuple_(value, a.user_id)
            bound = sa.tuple_(sa.literal(bound_value), sa.literal(after.uid))
            query = query.having(key < bound if descending else key > bound)
    order = (value.desc(), a.user_id.desc()) if descending else (value.asc(), a.user_id.asc())
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


def _by(conn: Connection, scope: Scope, *columns: sa.Column[Any]) -> Iterator[tuple[Any, dict]]:
    query = (
        sa.select(*columns, *_sums())
        .where(scope.where(forum_activity))
        .group_by(*columns)
        .order_by(*columns)
    )
    for row in conn.execute(query):
        yield tuple(row[: len(columns)]), _numbers(row)


def weekday_stats(conn: Connection, scope: Scope) -> dict[str, dict[str, Any]]:
    """By ISO weekday, "1" (Monday) to "7"."""
    return {str(k[0]): v for k, v in _by(conn, scope, forum_activity.c.weekday)}


def hourly_stats(conn: Connection, scope: Scope) -> dict[str, dict[str, Any]]:
    """By week of the year, weekday and hour: "WW:D:HH", as PostgreSQL's 'WW:ID:HH24'."""
    a = forum_activity.c
    rows: dict[str, dict[str, Any]] = {}
    for (week, weekday, hour), numbers in _by(conn, scope, a.week, a.weekday, a.hour):
        slot = f"{int(week):02d}:{int(weekday)}:{int(hour):02d}"
        rows[slot] = _merge(rows.get(slot), numbers)
    return rows


def _merge(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """Two rows of the same slot added (the same week of different years)."""
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
    return {str(k[0]): v for k, v in _by(conn, scope, forum_activity.c.year)}


def daily_stats(conn: Connection, scope: Scope) -> dict[str, dict[str, Any]]:
    """By UTC day, "YYYY-MM-DD"."""
    epoch = date(1970, 1, 1)
    return {
        (epoch + timedelta(days=int(k[0]))).isoformat(): v
        for k, v in _by(conn, scope, forum_activity.c.day)
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
    conn: Connection, scope: Scope, *, limit: int = 1000, kinds: Sequence[str] = PAIR_KINDS
) -> list[dict[str, Any]]:
    """Who quotes (or answers) whom, most first; intensity is a pair's count over the largest."""
    p = forum_pair_days.c
    count = sa.func.sum(p.count).label("n")
    rows = conn.execute(
        sa.select(p.user_id, p.target_user_id, count)
        .where(scope.where(forum_pair_days) & p.kind.in_(list(kinds)))
        .group_by(p.user_id, p.target_user_id)
        .order_by(count.desc(), p.user_id, p.target_user_id)
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
    d = forum_link_days.c
    count = sa.func.sum(d.count).label("n")
    where = scope.where(forum_link_days) & (d.kind == kind if kind else sa.true())
    rows = conn.execute(
        sa.select(d.user_id, d.domain, count)
        .where(where)
        .group_by(d.user_id, d.domain)
        .order_by(count.desc(), d.domain, d.user_id)
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
    d = forum_link_days.c
    count = sa.func.sum(d.count).label("n")
    where = scope.where(forum_link_days) & (d.kind == kind if kind else sa.true())
    rows = conn.execute(
        sa.select(d.domain, count)
        .where(where)
        .group_by(d.domain)
        .order_by(count.desc(), d.domain)
        .limit(limit)
    ).all()
    return [{"count": int(r.n), "domain": r.domain} for r in rows]


def _year_bounds(year: int) -> tuple[float, float]:
    start = datetime(year, 1, 1, tzinfo=UTC).timestamp()
    return start, datetime(year + 1, 1, 1, tzinfo=UTC).timestamp()


def thread_stats(conn: Connection, scope: Scope) -> dict[str, Any]:
    """Time to first response and thread lifetime (first to last post) of topics started in
    the scope: how many, and their median and mean in seconds."""
    t = forum_topics.c
    second = forum_posts.alias("second")
    where = t.site_id == scope.site
    if scope.board is not None:
        where = where & (t.board_id == scope.board)
    if scope.year is not None:
        start, end = _year_bounds(scope.year)
        where = where & (t.created_at >= start) & (t.created_at < end)
    rows = conn.execute(
        sa.select(t.created_at, t.last_posted_at, second.c.created_at.label("answered"))
        .select_from(forum_topics)
        .outerjoin(
            second,
            (second.c.site_id == t.site_id)
            & (second.c.topic_id == t.topic_id)
            & (second.c.number == 2),
        )
        .where(where & t.created_at.is_not(None))
    ).all()
    responses = sorted(float(r.answered) - float(r.created_at) for r in rows if r.answered)
    lifetimes = sorted(
        float(r.last_posted_at) - float(r.created_at) for r in rows if r.last_posted_at
    )
    return {
        "threads": len(rows),
        "first_response": _summary(responses),
        "lifetime": _summary(lifetimes),
    }


def _summary(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"count": 0, "median_seconds": None, "mean_seconds": None}
    middle = len(values) // 2
    median = values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2
    return {
        "count": len(values),
        "median_seconds": median,
        "mean_seconds": sum(values) / len(values),
    }
