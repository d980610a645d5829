"""Statistics of a crawled forum, kept per (board, UTC day, user) and recomputed where it changed.

A crawl marks the (board, day, user) keys its posts touch (`records.mark_dirty`). `analyze`
takes the dirty keys a day at a time, reads that day's posts with their quotes and links, and
replaces the keys' rows in `forum_activity`, `forum_pair_days` and `forum_link_days`; then it
clears each key whose mark is still the one it read, so a key a crawl marked again meanwhile
stays for the next pass (at-least-once: a pass killed halfway leaves its keys dirty, and doing a
key twice writes the same rows). The cost follows the days that changed, not the forum's size.
`rebuild` marks every key of a site and analyzes them all (`sleuth forum analytics --full`).

Everything counted is what a post itself says (quotes inside quotes do not count), with no
cut-off: every user and every pair is kept, however few their posts (potstats2's later cut-offs
at 25 posts and 10 quotes hid most of a forum's people).
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from sleuth.apps.forum.models import (
    forum_activity,
    forum_dirty,
    forum_link_days,
    forum_links,
    forum_pair_days,
    forum_posts,
    forum_quotes,
    forum_stats_versions,
    forum_topics,
)
from sleuth.apps.forum.records import DAY, day_of, mark_dirty
from sleuth.store.upsert import insert_ignore_many, insert_or_update

Key = tuple[int, int]  # (board, user) within one day


@dataclass
class AnalyticsReport:
    """What one pass did: keys and days recomputed, posts read, the years they fall in."""

    keys: int = 0
    days: int = 0
    posts: int = 0
    years: dict[int, set[int]] = field(default_factory=dict)  # site -> years touched
    seconds: float = 0.0


def week_of(moment: datetime) -> int:
    """The week of the year, week 1 being January 1st to 7th (PostgreSQL's `WW`, potstats2's)."""
    return (moment.timetuple().tm_yday - 1) // 7 + 1


def analyze(engine: Engine, *, days_per_transaction: int = 1) -> AnalyticsReport:
    """Recompute every dirty key, a day (or `days_per_transaction` days) per transaction."""
    report = AnalyticsReport()
    started = time.monotonic()
    while True:
        with engine.connect() as conn:
            days = conn.execute(
                sa.select(forum_dirty.c.site_id, forum_dirty.c.day)
                .distinct()
                .order_by(forum_dirty.c.site_id, forum_dirty.c.day)
                .limit(days_per_transaction)
            ).all()
        if not days:
            break
        with engine.begin() as conn:
            for site, day in days:
                _analyze_day(conn, int(site), int(day), report)
    with engine.begin() as conn:
        for site, years in report.years.items():
            bump_versions(conn, site, years)
    report.seconds = time.monotonic() - started
    return report


def bump_versions(conn: Connection, site: int, years: Iterable[int]) -> None:
    """Make cached answers that read these years of `site` (and every all-years one) stale."""
    for year in sorted({0, *years}):
        row = {"site_id": site, "year": year, "version": 1}
        insert_or_update(
            conn, forum_stats_versions, row, {"version": forum_stats_versions.c.version + 1}
        )


def rebuild(engine: Engine, site: int) -> AnalyticsReport:
    """Mark every key of `site` dirty and recompute them all."""
    with engine.begin() as conn:
        for table in (forum_activity, forum_pair_days, forum_link_days):
            conn.execute(table.delete().where(table.c.site_id == site))
        rows = conn.execute(
            sa.select(forum_topics.c.board_id, forum_posts.c.created_at, forum_posts.c.user_id)
            .select_from(forum_posts)
            .join(forum_topics, _topic_of_post())
            .where(forum_posts.c.site_id == site)
        )
        mark_dirty(conn, site, {(int(b), day_of(c), int(u)) for b, c, u in rows})
    return analyze(engine)


def _topic_of_post() -> sa.ColumnElement[bool]:
    return (forum_topics.c.site_id == forum_posts.c.site_id) & (
        forum_topics.c.topic_id == forum_posts.c.topic_id
    )


def _length(conn: Connection) -> sa.Function[int]:
    """The characters of a post's text (MariaDB's and PostgreSQL's LENGTH counts bytes)."""
    if conn.dialect.name == "sqlite":
        return sa.func.length(forum_posts.c.raw)
    return sa.func.char_length(forum_posts.c.raw)


def _analyze_day(conn: Connection, site: int, day: int, report: AnalyticsReport) -> None:
    marks = {
        (int(r.board_id), int(r.user_id)): int(r.mark)
        for r in conn.execute(
            sa.select(forum_dirty.c.board_id, forum_dirty.c.user_id, forum_dirty.c.mark).where(
                (forum_dirty.c.site_id == site) & (forum_dirty.c.day == day)
            )
        )
    }
    keys = set(marks)
    posts = conn.execute(
        sa.select(
            forum_posts.c.post_id,
            forum_topics.c.board_id,
            forum_posts.c.user_id,
            forum_posts.c.created_at,
            forum_posts.c.number,
            forum_posts.c.edit_count,
            _length(conn).label("length"),
        )
        .select_from(forum_posts)
        .join(forum_topics, _topic_of_post())
        .where(
            (forum_posts.c.site_id == site)
            & (forum_posts.c.created_at >= day * DAY)
            & (forum_posts.c.created_at < (day + 1) * DAY)
        )
    ).all()
    mine = {int(p.post_id): (int(p.board_id), int(p.user_id)) for p in posts}
    mine = {post: key for post, key in mine.items() if key in keys}
    moment = datetime.fromtimestamp(day * DAY, UTC)
    year, week, weekday = moment.year, week_of(moment), moment.isoweekday()

    activity: dict[tuple[int, int, int], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for p in posts:
        key = (int(p.board_id), int(p.user_id))
        if key not in keys:
            continue
        hour = datetime.fromtimestamp(float(p.created_at), UTC).hour
        counts = activity[(*key, hour)]
        counts[0] += 1
        counts[1] += int(p.edit_count)
        counts[2] += int(p.length or 0)
        counts[3] += int(p.number) == 1
    pairs = _pairs(conn, site, mine)
    links = _links(conn, site, mine)

    for table in (forum_activity, forum_pair_days, forum_link_days):
        _delete_keys(conn, table, site, day, keys)
    base = {"site_id": site, "day": day, "year": year}
    insert_ignore_many(
        conn,
        forum_activity,
        [
            base
            | {"board_id": b, "user_id": u, "hour": h, "week": week, "weekday": weekday}
            | {"post_count": c[0], "edit_count": c[1], "length_sum": c[2]}
            | {"threads_created": c[3]}
            for (b, u, h), c in activity.items()
        ],
    )
    insert_ignore_many(
        conn,
        forum_pair_days,
        [
            base | {"board_id": b, "user_id": u, "kind": k, "target_user_id": t, "count": n}
            for (b, u, k, t), n in pairs.items()
        ],
    )
    insert_ignore_many(
        conn,
        forum_link_days,
        [
            base | {"board_id": b, "user_id": u, "kind": k, "domain": d, "count": n}
            for (b, u, k, d), n in links.items()
        ],
    )
    for (board, user), mark in marks.items():
        conn.execute(
            forum_dirty.delete().where(
                (forum_dirty.c.site_id == site)
                & (forum_dirty.c.board_id == board)
                & (forum_dirty.c.day == day)
                & (forum_dirty.c.user_id == user)
                & (forum_dirty.c.mark == mark)
            )
        )
    report.keys += len(keys)
    report.days += 1
    report.posts += len(mine)
    report.years.setdefault(site, set()).add(year)


def _delete_keys(conn: Connection, table: sa.Table, site: int, day: int, keys: set[Key]) -> None:
    pairs = sorted(keys)
    for start in range(0, len(pairs), 500):
        conn.execute(
            table.delete().where(
                (table.c.site_id == site)
                & (table.c.day == day)
                & sa.tuple_(table.c.board_id, table.c.user_id).in_(pairs[start : start + 500])
            )
        )


def _chunks(ids: Iterable[int], size: int = 500) -> Iterable[list[int]]:
    ordered = sorted(ids)
    for start in range(0, len(ordered), size):
        yield ordered[start : start + size]


def _pairs(
    conn: Connection, site: int, posts: dict[int, Key]
) -> Counter[tuple[int, int, str, int]]:
    """(board, quoter, kind, quoted user) counts of these posts' quotes and replies whose target
    post is stored (one not crawled yet counts once it is: the crawl marks its quoters)."""
    q = forum_quotes
    by_id, by_number = forum_posts.alias("by_id"), forum_posts.alias("by_number")
    counts: Counter[tuple[int, int, str, int]] = Counter()
    for chunk in _chunks(posts):
        rows = conn.execute(
            sa.select(q.c.post_id, q.c.kind, q.c.count, by_id.c.user_id, by_number.c.user_id)
            .select_from(q)
            .outerjoin(
                by_id,
                (by_id.c.site_id == q.c.site_id)
                & (q.c.target_post_id != 0)
                & (by_id.c.post_id == q.c.target_post_id),
            )
            .outerjoin(
                by_number,
                (by_number.c.site_id == q.c.site_id)
                & (q.c.target_post_id == 0)
                & (by_number.c.topic_id == q.c.target_topic_id)
                & (by_number.c.number == q.c.target_number),
            )
            .where((q.c.site_id == site) & q.c.post_id.in_(chunk))
        )
        for post_id, kind, count, user_a, user_b in rows:
            target = user_a if user_a is not None else user_b
            if target is not None:
                board, user = posts[int(post_id)]
                counts[(board, user, str(kind), int(target))] += int(count)
    return counts


def _links(
    conn: Connection, site: int, posts: dict[int, Key]
) -> Counter[tuple[int, int, str, str]]:
    """(board, user, kind, domain) counts of these posts' links, images and videos."""
    counts: Counter[tuple[int, int, str, str]] = Counter()
    for chunk in _chunks(posts):
        rows = conn.execute(
            sa.select(
                forum_links.c.post_id, forum_links.c.kind, forum_links.c.domain, forum_links.c.count
            ).where((forum_links.c.site_id == site) & forum_links.c.post_id.in_(chunk))
        )
        for post_id, kind, domain, count in rows:
            board, user = posts[int(post_id)]
            counts[(board, user, str(kind), str(domain))] += int(count)
    return counts
