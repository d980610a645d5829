"""Statistics of a crawled forum, kept per (board, UTC day, user) and recomputed where it changed.

A crawl marks the (board, day, user) keys its posts touch (`records.mark_dirty`). `analyze`
takes the dirty keys a day at a time, reads that day's posts with their quotes and links, and
replaces the keys' rows in `forum_activity`, `forum_pair_days` and `forum_link_days`; it moves
the keys to `forum_stale` and clears each dirty key whose mark is still the one it read, so a
key a crawl marked again meanwhile stays for the next pass (at-least-once: a pass killed
halfway leaves its keys dirty, and doing a key twice writes the same rows). The topics a crawl
saved get their times recomputed the same way (`threads.py`). Then `totals.refresh_site`
recomputes the totals the API reads from the stale keys, and `threads.refresh_site` those of
the stale thread scopes. The cost follows the days and topics that changed, not the forum's
size (but for the exact medians of thread times: see `threads.py`). `rebuild` marks every key
and topic of a site and analyzes them all (`sleuth forum analytics --full`).

Everything counted is what a post itself says (quotes inside quotes do not count), with no
cut-off: every user and every pair is kept, however few their posts (potstats2's later cut-offs
at 25 posts and 10 quotes hid most of a forum's people).
"""

from __future__ import annotations

import secrets
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from sleuth.apps.forum import threads, totals
from sleuth.apps.forum.models import (
    forum_activity,
    forum_dirty,
    forum_dirty_topics,
    forum_link_days,
    forum_links,
    forum_pair_days,
    forum_posts,
    forum_quotes,
    forum_stale,
    forum_stale_threads,
    forum_stats_versions,
    forum_thread_totals,
    forum_thread_versions,
    forum_topic_times,
    forum_topics,
)
from sleuth.apps.forum.records import DAY
from sleuth.apps.forum.totals import ROLLUPS, calendar
from sleuth.store.upsert import insert_ignore_many, insert_or_update

TOTALS = tuple(r.target for r in ROLLUPS)
THREADS = (forum_topic_times, forum_thread_totals)

Key = tuple[int, int, int]  # (day, board, user)


@dataclass
class AnalyticsReport:
    """What one pass did: keys, days and topics recomputed, posts read, the years they fall in."""

    keys: int = 0
    days: int = 0
    posts: int = 0
    topics: int = 0
    years: dict[int, set[int]] = field(default_factory=dict)  # site -> years whose totals changed
    thread_years: dict[int, set[int]] = field(default_factory=dict)  # ... thread totals changed
    seconds: float = 0.0
    stages: dict[str, float] = field(default_factory=dict)  # seconds of each part of the pass
    token: int = field(default_factory=lambda: secrets.randbits(62))  # this pass's stale mark


WINDOW_DAYS = 31
"""A pass reads the posts of at most this span of days at a time (one transaction): the
dirty days in it are recomputed together, so a rebuild costs a few hundred transactions and
an incremental pass reads no day that is not dirty but for its neighbours within the span."""


def each_stale_site(
    engine: Engine, stale: sa.Table, refresh_site: Callable[[Connection, int], set[int]]
) -> dict[int, set[int]]:
    """`refresh_site` for every site with rows in `stale`, a transaction per site; the years
    each site's refresh changed."""
    with engine.connect() as conn:
        sites = list(conn.execute(sa.select(stale.c.site_id).distinct()).scalars())
    changed: dict[int, set[int]] = {}
    for site in sites:
        with engine.begin() as conn:
            changed[int(site)] = refresh_site(conn, int(site))
    return changed


def analyze(engine: Engine) -> AnalyticsReport:
    """Recompute every dirty key, a window of days per transaction, and every dirty topic's
    times (`threads.py`); then the totals those feed (`each_stale_site`), and move the versions
    of what changed."""
    report = AnalyticsReport()
    started = time.monotonic()
    while True:
        with engine.connect() as conn:
            first = conn.execute(
                sa.select(forum_dirty.c.site_id, forum_dirty.c.day)
                .order_by(forum_dirty.c.site_id, forum_dirty.c.day)
                .limit(1)
            ).first()
        if first is None:
            break
        with engine.begin() as conn:
            _analyze_days(conn, int(first.site_id), int(first.day), report)
    report.stages["days"] = time.monotonic() - started
    while True:
        with engine.begin() as conn:
            done = threads.analyze_topics(conn, report.token)
        if not done:
            break
        report.topics += done
    report.stages["topics"] = time.monotonic() - started - sum(report.stages.values())
    report.years = each_stale_site(engine, forum_stale, totals.refresh_site)
    report.stages["totals"] = time.monotonic() - started - sum(report.stages.values())
    report.thread_years = each_stale_site(engine, forum_stale_threads, threads.refresh_site)
    report.stages["thread_totals"] = time.monotonic() - started - sum(report.stages.values())
    with engine.begin() as conn:
        for site, years in report.years.items():
            bump_versions(conn, site, years)
        for site, years in report.thread_years.items():
            bump_versions(conn, site, years, forum_thread_versions)
    report.seconds = time.monotonic() - started
    return report


def bump_versions(
    conn: Connection, site: int, years: Iterable[int], table: sa.Table = forum_stats_versions
) -> None:
    """Make cached answers that read these years of `site` (and every all-years one) stale:
    of the statistics (`forum_stats_versions`) or of the thread times (`forum_thread_versions`)."""
    for year in sorted({0, *years}):
        row = {"site_id": site, "year": year, "version": 1}
        insert_or_update(conn, table, row, {"version": table.c.version + 1})


def rebuild(engine: Engine, site: int) -> AnalyticsReport:
    """Mark every key and topic of `site` dirty and recompute them all. The marks are two
    set-based statements (one upsert a key was 10M round trips on a forum of 10M posts); the
    site's earlier marks go, as its per-day rows do: every key with a post is marked anew."""
    with engine.begin() as conn:
        for table in (forum_activity, forum_pair_days, forum_link_days, *TOTALS, *THREADS):
            conn.execute(table.delete().where(table.c.site_id == site))
        mark = sa.literal(secrets.randbits(62), sa.BigInteger)
        for table in (forum_dirty, forum_dirty_topics):
            conn.execute(table.delete().where(table.c.site_id == site))
        t, p = forum_topics.c, forum_posts.c
        conn.execute(
            forum_dirty_topics.insert().from_select(
                ["site_id", "topic_id", "mark"],
                sa.select(t.site_id, t.topic_id, mark).where(t.site_id == site),
            )
        )
        conn.execute(
            forum_dirty.insert().from_select(
                ["site_id", "board_id", "day", "user_id", "mark"],
                sa.select(p.site_id, t.board_id, _day(conn, p.created_at), p.user_id, mark)
                .select_from(forum_posts)
                .join(forum_topics, _topic_of_post())
                .where(p.site_id == site)
                .distinct(),
            )
        )
    return analyze(engine)


def _day(conn: Connection, moment: sa.ColumnElement[float]) -> sa.ColumnElement[int]:
    """`records.day_of` in SQL: the UTC day of an epoch time."""
    return _floor(conn, moment, DAY)


def _floor(conn: Connection, moment: sa.ColumnElement[float], unit: int) -> sa.ColumnElement[int]:
    """The whole `unit`s of seconds in an epoch time (SQLite's CAST truncates, which is the
    floor of a time after 1970; PostgreSQL's and MariaDB's round)."""
    if conn.dialect.name == "sqlite":
        return sa.cast(moment / _constant(unit), sa.BigInteger)
    return sa.cast(sa.func.floor(moment / _constant(unit)), sa.BigInteger)


def _topic_of_post() -> sa.ColumnElement[bool]:
    return (forum_topics.c.site_id == forum_posts.c.site_id) & (
        forum_topics.c.topic_id == forum_posts.c.topic_id
    )


def _length(conn: Connection) -> sa.Function[int]:
    """The characters of a post's text (MariaDB's and PostgreSQL's LENGTH counts bytes)."""
    if conn.dialect.name == "sqlite":
        return sa.func.length(forum_posts.c.raw)
    return sa.func.char_length(forum_posts.c.raw)


def _analyze_days(conn: Connection, site: int, first: int, report: AnalyticsReport) -> None:
    """Recompute the dirty keys of `site` in the window of days starting at `first`, in
    set-based statements: the keys are copied to `forum_stale` under this pass's token, and
    each per-day table's rows of those keys are replaced by one INSERT ... SELECT grouping
    the keys' posts, quotes or links (a row at a time in Python cost about 0.4 ms a post: an
    hour for a first pass over 10M posts)."""
    last = first + WINDOW_DAYS - 1
    d = forum_dirty.c
    window = (d.site_id == site) & d.day.between(first, last)
    read = conn.execute(sa.select(d.board_id, d.day, d.user_id, d.mark).where(window)).all()
    # The keys read are every key of the window whose mark is one read: a mark is new with
    # each transaction that marks keys, and that transaction's keys were all read or none
    # were (it committed before the read or after). A key marked again since keeps its new
    # mark, its rows and its place in `forum_dirty` for the next pass.
    marks = sorted({int(r.mark) for r in read})
    boards = sorted({int(r.board_id) for r in read})
    days = sorted({int(r.day) for r in read})
    chunks = [marks[i : i + MARKS] for i in range(0, len(marks), MARKS)]
    keys = Window(site, first, last, boards, report.token, _calendar(days))
    if _any_in(conn, forum_stale, keys):  # keys whose totals an earlier pass left stale
        _delete_keys(conn, forum_stale, site, [(r.day, r.board_id, r.user_id) for r in read])
    if conn.dialect.name == "mysql":  # its INSERT ... SELECT locks the rows it reads: a
        # crawl marking a key would wait for the pass to commit
        rows = [
            {"site_id": site, "board_id": r.board_id, "day": r.day, "user_id": r.user_id}
            | {"mark": report.token}
            for r in read
        ]
        insert_ignore_many(conn, forum_stale, rows)
    else:
        for chunk in chunks:
            conn.execute(
                forum_stale.insert().from_select(
                    ["site_id", "board_id", "day", "user_id", "mark"],
                    sa.select(
                        d.site_id, d.board_id, d.day, d.user_id, _constant(report.token)
                    ).where(window & d.mark.in_(chunk)),
                )
            )
    for table in (forum_activity, forum_pair_days, forum_link_days):
        if _any_in(conn, table, keys):  # none in a first pass or a rebuild
            conn.execute(table.delete().where(keys.own(table)))
    _activity(conn, keys)
    _pairs(conn, site, keys)
    _links(conn, keys)
    for chunk in chunks:
        conn.execute(forum_dirty.delete().where(window & d.mark.in_(chunk)))
    a = forum_activity.c
    report.posts += int(
        conn.execute(
            sa.select(sa.func.coalesce(sa.func.sum(a.post_count), 0)).where(
                keys.own(forum_activity)
            )
        ).scalar_one()
    )
    report.keys += len(read)
    report.days += len(days)


MARKS = 2000
"""Marks in one statement's IN list (a first crawl's window holds a mark per topic saved)."""


@dataclass(frozen=True)
class Window:
    """The keys a window's pass recomputes: its rows of `forum_stale` with this pass's token."""

    site: int
    first: int
    last: int
    boards: list[int]
    token: int
    calendar: dict[str, sa.ColumnElement[int]]  # year, week, weekday of the key's day

    def own(self, table: sa.Table) -> sa.ColumnElement[bool]:
        """The rows of a per-day table (primary key (site, board, day, ..., user, ...)) whose
        key is one of the window's."""
        t, s = table.c, forum_stale.c
        return (
            (t.site_id == self.site)
            & t.board_id.in_(self.boards)
            & t.day.between(self.first, self.last)
            & sa.exists().where(
                (s.site_id == t.site_id)
                & (s.board_id == t.board_id)
                & (s.day == t.day)
                & (s.user_id == t.user_id)
                & (s.mark == self.token)
            )
        )

    def posts(self, conn: Connection) -> tuple[sa.Select[Any], sa.ColumnElement[int]]:
        """The window's posts of its keys, each with its topic's board and its key's day."""
        p, t, s = forum_posts.c, forum_topics.c, forum_stale.c
        query = (
            sa.select()
            .select_from(forum_posts)
            .join(forum_topics, _topic_of_post())
            .join(
                forum_stale,
                (s.site_id == p.site_id)
                & (s.board_id == t.board_id)
                & (s.user_id == p.user_id)
                & (s.day == _day(conn, p.created_at))
                & (s.mark == self.token)
                # the key's day as a range of the post's time, for an index to find them by
                & (p.created_at >= s.day * _constant(DAY))
                & (p.created_at < (s.day + 1) * _constant(DAY)),
            )
            .where(
                (p.site_id == self.site)
                & (p.created_at >= self.first * DAY)
                & (p.created_at < (self.last + 1) * DAY)
                & s.day.between(self.first, self.last)
            )
        )
        return query, s.day


def _constant(value: int) -> sa.ColumnElement[int]:
    """An integer written into the statement: the same expression in SELECT and GROUP BY (a
    bound parameter in each is two expressions to PostgreSQL)."""
    return sa.literal_column(str(int(value)), sa.BigInteger)


def _any_in(conn: Connection, table: sa.Table, keys: Window) -> bool:
    """Whether `table` has rows of the window's site, boards and days (a range of its primary
    key, which leads with (site, board, day), per board)."""
    t = table.c
    found = conn.execute(
        sa.select(t.day)
        .where(
            (t.site_id == keys.site)
            & t.board_id.in_(keys.boards)
            & t.day.between(keys.first, keys.last)
        )
        .limit(1)
    ).first()
    return found is not None


def _by_board(keys: Iterable[tuple[int, int, int]]) -> dict[int, list[tuple[int, int]]]:
    """(day, board, user) keys as the (day, user) pairs of each board: every table's primary
    key starts (site, board, day), so a board's days are one index range."""
    groups: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for day, board, user in keys:
        groups[board].append((day, user))
    return groups


def _delete_keys(
    conn: Connection, table: sa.Table, site: int, keys: list[tuple[int, int, int]]
) -> None:
    """Delete the rows of these (day, board, user) keys."""
    t = table.c
    for board, pairs in sorted(_by_board(keys).items()):
        for start in range(0, len(pairs), CHUNK):
            chunk = pairs[start : start + CHUNK]
            conn.execute(
                table.delete().where(
                    (t.site_id == site)
                    & (t.board_id == board)
                    & t.day.between(min(d for d, _ in chunk), max(d for d, _ in chunk))
                    & sa.tuple_(t.day, t.user_id).in_(chunk)
                )
            )


CHUNK = 300


def _calendar(days: list[int]) -> dict[str, sa.ColumnElement[int]]:
    """The year, week and weekday of these days, as expressions of the stale key's day."""
    day = forum_stale.c.day
    if not days:
        return {name: _constant(0) for name in ("year", "week", "weekday")}
    values = {day_: calendar(day_) for day_ in days}
    return {
        name: sa.case(
            *((day == _constant(d), _constant(v[name])) for d, v in values.items()),
            else_=_constant(0),
        )
        for name in ("year", "week", "weekday")
    }


def _activity(conn: Connection, keys: Window) -> None:
    p, t = forum_posts.c, forum_topics.c
    query, day = keys.posts(conn)
    hour = _floor(conn, p.created_at, 3600) - _floor(conn, p.created_at, DAY) * _constant(24)
    query = query.with_only_columns(
        _constant(keys.site),
        t.board_id,
        day,
        hour,
        p.user_id,
        keys.calendar["year"],
        keys.calendar["week"],
        keys.calendar["weekday"],
        sa.func.count(),
        sa.func.coalesce(sa.func.sum(p.edit_count), 0),
        sa.func.coalesce(sa.func.sum(_length(conn)), 0),
        sa.func.sum(sa.case((p.number == 1, _constant(1)), else_=_constant(0))),
    ).group_by(t.board_id, day, hour, p.user_id)
    conn.execute(
        forum_activity.insert().from_select(
            [
                "site_id",
                "board_id",
                "day",
                "hour",
                "user_id",
                "year",
                "week",
                "weekday",
                "post_count",
                "edit_count",
                "length_sum",
                "threads_created",
            ],
            query,
        )
    )


def _pairs(conn: Connection, site: int, keys: Window) -> None:
    """The (board, day, quoter, kind, quoted user) counts of the keys' posts' quotes and
    replies whose target post is stored (one not crawled yet counts once it is: the crawl
    marks its quoters)."""
    q, p, t = forum_quotes.c, forum_posts.c, forum_topics.c
    by_id, by_number = forum_posts.alias("by_id"), forum_posts.alias("by_number")
    query, day = keys.posts(conn)
    target = sa.func.coalesce(by_id.c.user_id, by_number.c.user_id)
    query = (
        query.join(forum_quotes, (q.site_id == p.site_id) & (q.post_id == p.post_id))
        .outerjoin(
            by_id,
            (by_id.c.site_id == q.site_id)
            & (q.target_post_id != 0)
            & (by_id.c.post_id == q.target_post_id),
        )
        .outerjoin(
            by_number,
            (by_number.c.site_id == q.site_id)
            & (q.target_post_id == 0)
            & (by_number.c.topic_id == q.target_topic_id)
            & (by_number.c.number == q.target_number),
        )
        .where(target.is_not(None))
        .with_only_columns(
            _constant(site),
            t.board_id,
            day,
            p.user_id,
            q.kind,
            target,
            keys.calendar["year"],
            sa.func.sum(q["count"]),
        )
        .group_by(t.board_id, day, p.user_id, q.kind, target)
    )
    conn.execute(
        forum_pair_days.insert().from_select(
            ["site_id", "board_id", "day", "user_id", "kind", "target_user_id", "year", "count"],
            query,
        )
    )


def _links(conn: Connection, keys: Window) -> None:
    """The (board, day, user, kind, domain) counts of the keys' posts' links, images, videos."""
    link, p, t = forum_links.c, forum_posts.c, forum_topics.c
    query, day = keys.posts(conn)
    query = (
        query.join(forum_links, (link.site_id == p.site_id) & (link.post_id == p.post_id))
        .with_only_columns(
            _constant(keys.site),
            t.board_id,
            day,
            p.user_id,
            link.kind,
            link.domain,
            keys.calendar["year"],
            sa.func.sum(link["count"]),
        )
        .group_by(t.board_id, day, p.user_id, link.kind, link.domain)
    )
    conn.execute(
        forum_link_days.insert().from_select(
            ["site_id", "board_id", "day", "user_id", "kind", "domain", "year", "count"], query
        )
    )
