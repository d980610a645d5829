"""Time to first response and thread lifetime, kept per topic and totalled per (board, year).

A topic's times are its second post's time and its last post's time (as the forum states it),
each less its creation time. `save_topic` marks the topic in `forum_dirty_topics` in the
transaction that writes it; `analyze_topics` recomputes the marked topics' rows of
`forum_topic_times`, marks the (board, year) scopes of the rows that changed (before and after)
in `forum_stale_threads`, and clears each topic mark still the one it read (at-least-once, as
the per-day keys). `refresh` then rewrites those scopes' `forum_thread_totals` rows and
their board 0 / year 0 rows, each from the per-topic rows: a count and a sum, and an exact median
read at its offset in the scope's index (`forum_topic_times` has one per scope kind), so no
request sorts anything.

Cost: a pass reads the marked topics, then per stale scope about half its topics' index entries
for each median; the every-board/every-year row is the whole site's, so a pass that changes any
topic reads about n/2 entries per measure of the site's n topics, and n/2 more for the board's
and the year's rows (a few hundred thousand index entries on a forum of 10M posts: tens of
milliseconds in PostgreSQL), whatever else it costs.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from sleuth.apps.forum.models import (
    ALL_BOARDS,
    ALL_YEARS,
    TIMES,
    forum_dirty_topics,
    forum_posts,
    forum_stale_threads,
    forum_thread_totals,
    forum_topic_times,
    forum_topics,
)
from sleuth.store.upsert import insert_ignore_many, insert_or_update

CHUNK = 5000
"""Topics recomputed in one transaction (at 500 the 89k topics of a bulk-loaded 1M-post forum
took 101 s, mostly round trips; at 5000, 32 s)."""
MARKS = 2000
Scope = tuple[int, int]  # (board, year); ALL_BOARDS / ALL_YEARS for every one


def mark_topic(conn: Connection, site: int, topic_id: int, mark: int) -> None:
    """Have analytics recompute this topic's times."""
    row = {"site_id": site, "topic_id": topic_id, "mark": mark}
    insert_or_update(conn, forum_dirty_topics, row, {"mark": mark})


def analyze_topics(conn: Connection, token: int) -> int:
    """Recompute the times of up to CHUNK marked topics of one site; how many were marked."""
    d = forum_dirty_topics.c
    first = conn.execute(sa.select(d.site_id).order_by(d.site_id).limit(1)).scalar()
    if first is None:
        return 0
    site = int(first)
    marks = conn.execute(
        sa.select(d.topic_id, d.mark).where(d.site_id == site).order_by(d.topic_id).limit(CHUNK)
    ).all()
    ids = [int(r.topic_id) for r in marks]
    old = _stored(conn, site, ids)
    new = _computed(conn, site, ids)
    times = forum_topic_times.c
    conn.execute(
        forum_topic_times.delete().where((times.site_id == site) & times.topic_id.in_(ids))
    )
    insert_ignore_many(
        conn, forum_topic_times, [{"site_id": site, "topic_id": t, **r} for t, r in new.items()]
    )
    stale = {
        (r["board_id"], r["year"])
        for t in ids
        if old.get(t) != new.get(t)
        for r in (old.get(t), new.get(t))
        if r is not None
    }
    for board, year in sorted(stale):
        row = {"site_id": site, "board_id": board, "year": year, "mark": token}
        insert_or_update(conn, forum_stale_threads, row, {"mark": token})
    # the marks read are those of every marked topic up to the last one read (one statement
    # read them, in topic order): a topic marked again since has a new mark and stays marked
    read = sorted({int(r.mark) for r in marks})
    for start in range(0, len(read), MARKS):
        conn.execute(
            forum_dirty_topics.delete().where(
                (d.site_id == site)
                & d.topic_id.between(ids[0], ids[-1])
                & d.mark.in_(read[start : start + MARKS])
            )
        )
    return len(ids)


def _stored(conn: Connection, site: int, ids: list[int]) -> dict[int, dict[str, Any]]:
    t = forum_topic_times.c
    rows = conn.execute(
        sa.select(t.topic_id, t.board_id, t.year, *(t[m] for m in TIMES)).where(
            (t.site_id == site) & t.topic_id.in_(ids)
        )
    ).mappings()
    return {int(r["topic_id"]): {k: v for k, v in r.items() if k != "topic_id"} for r in rows}


def _computed(conn: Connection, site: int, ids: list[int]) -> dict[int, dict[str, Any]]:
    """The times rows of these topics, from the topics and their second posts."""
    t, p = forum_topics.c, forum_posts.c
    second = dict(
        conn.execute(
            sa.select(p.topic_id, p.created_at).where(
                (p.site_id == site) & p.topic_id.in_(ids) & (p.number == 2)
            )
        ).all()
    )
    rows = conn.execute(
        sa.select(t.topic_id, t.board_id, t.created_at, t.last_posted_at).where(
            (t.site_id == site) & t.topic_id.in_(ids) & t.created_at.is_not(None)
        )
    )
    out: dict[int, dict[str, Any]] = {}
    for r in rows:
        created, answered = float(r.created_at), second.get(r.topic_id)
        out[int(r.topic_id)] = {
            "board_id": int(r.board_id),
            "year": datetime.fromtimestamp(created, UTC).year,
            "first_response": float(answered) - created if answered else None,
            "lifetime": float(r.last_posted_at) - created if r.last_posted_at else None,
        }
    return out


def refresh_site(conn: Connection, site: int) -> set[int]:
    """Rewrite the thread totals of the stale scopes of `site` with their every-board and
    every-year rows; the years whose totals changed."""
    s = forum_stale_threads.c
    rows = conn.execute(sa.select(s.board_id, s.year, s.mark).where(s.site_id == site)).all()
    scopes = {(int(r.board_id), int(r.year)) for r in rows}
    for board, year in sorted(_with_rolled(scopes)):
        _rewrite(conn, site, board, year)
    marks = sorted({int(r.mark) for r in rows})
    for start in range(0, len(marks), CHUNK):
        conn.execute(
            forum_stale_threads.delete().where(
                (s.site_id == site) & s.mark.in_(marks[start : start + CHUNK])
            )
        )
    return {year for _, year in scopes}


def _with_rolled(scopes: Iterable[Scope]) -> set[Scope]:
    """The scopes and the every-board, every-year and every-board-and-year scopes over them."""
    out: set[Scope] = set()
    for board, year in scopes:
        out |= {(board, year), (ALL_BOARDS, year), (board, ALL_YEARS), (ALL_BOARDS, ALL_YEARS)}
    return out


def _rewrite(conn: Connection, site: int, board: int, year: int) -> None:
    """One scope's totals row, from its topics' times (none when it has no topic)."""
    t, g = forum_topic_times.c, forum_thread_totals.c
    where = t.site_id == site
    if board != ALL_BOARDS:
        where = where & (t.board_id == board)
    if year != ALL_YEARS:
        where = where & (t.year == year)
    sums = conn.execute(
        sa.select(
            sa.func.count(),
            *(f(t[m]) for m in TIMES for f in (sa.func.count, sa.func.sum)),
        ).where(where)
    ).one()
    conn.execute(
        forum_thread_totals.delete().where(
            (g.site_id == site) & (g.board_id == board) & (g.year == year)
        )
    )
    if not sums[0]:
        return
    row: dict[str, Any] = {"site_id": site, "board_id": board, "year": year, "threads": sums[0]}
    for i, m in enumerate(TIMES):
        count = int(sums[1 + 2 * i])
        row[f"{m}_count"], row[f"{m}_sum"] = count, float(sums[2 + 2 * i] or 0.0)
        row[f"{m}_median"] = _median(conn, where, t[m], count)
    conn.execute(forum_thread_totals.insert().values(row))


def _median(
    conn: Connection, where: sa.ColumnElement[bool], column: sa.Column[Any], count: int
) -> float | None:
    """The exact median of the `count` values of `column` in `where`: the middle one or two,
    read at their offset in the index that orders the scope by `column`."""
    if not count:
        return None
    middle = conn.execute(
        sa.select(column)
        .where(where & column.is_not(None))
        .order_by(column)
        .offset((count - 1) // 2)
        .limit(2 - count % 2)
    ).scalars()
    values = [float(v) for v in middle]
    return sum(values) / len(values)
