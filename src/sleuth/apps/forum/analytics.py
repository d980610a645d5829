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
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

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
from sleuth.apps.forum.records import DAY, day_of
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
    while True:
        with engine.begin() as conn:
            done = threads.analyze_topics(conn, report.token)
        if not done:
            break
        report.topics += done
    report.years = each_stale_site(engine, forum_stale, totals.refresh_site)
    report.thread_years = each_stale_site(engine, forum_stale_threads, threads.refresh_site)
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
    """`records.day_of` in SQL: the UTC day of an epoch time (SQLite's CAST truncates, which
    is the floor of a time after 1970; PostgreSQL's and MariaDB's round)."""
    if conn.dialect.name == "sqlite":
        return sa.cast(moment / DAY, sa.BigInteger)
    return sa.cast(sa.func.floor(moment / DAY), sa.BigInteger)


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
    """Recompute the dirty keys of `site` in the window of days starting at `first`."""
    last = first + WINDOW_DAYS - 1
    d = forum_dirty.c
    marks = {
        (int(r.day), int(r.board_id), int(r.user_id)): int(r.mark)
        for r in conn.execute(
            sa.select(d.day, d.board_id, d.user_id, d.mark).where(
                (d.site_id == site) & (d.day >= first) & (d.day <= last)
            )
        )
    }
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
            & (forum_posts.c.created_at >= first * DAY)
            & (forum_posts.c.created_at < (last + 1) * DAY)
        )
    ).all()
    mine: dict[int, tuple[int, int, int]] = {}  # post -> its (day, board, user) key
    activity: dict[tuple[int, int, int, int], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for p in posts:
        key = (day_of(float(p.created_at)), int(p.board_id), int(p.user_id))
        if key not in marks:
            continue
        mine[int(p.post_id)] = key
        counts = activity[(*key, int(float(p.created_at) // 3600) % 24)]  # UTC: 24 h a day
        counts[0] += 1
        counts[1] += int(p.edit_count)
        counts[2] += int(p.length or 0)
        counts[3] += int(p.number) == 1
    pairs = _pairs(conn, site, mine)
    links = _links(conn, site, mine)

    keys = sorted(marks)
    boards = sorted({b for _, b, _ in keys})
    for table in (forum_activity, forum_pair_days, forum_link_days, forum_stale):
        if _any_in(conn, table, site, boards, first, last):  # none in a first pass or rebuild
            _delete_keys(conn, table, site, keys)
    insert_ignore_many(
        conn,
        forum_activity,
        [
            _day_columns(site, day)
            | {"board_id": b, "user_id": u, "hour": h}
            | {"post_count": c[0], "edit_count": c[1], "length_sum": c[2]}
            | {"threads_created": c[3]}
            for (day, b, u, h), c in activity.items()
        ],
    )
    insert_ignore_many(
        conn,
        forum_pair_days,
        [
            _day_columns(site, day, week=False)
            | {"board_id": b, "user_id": u, "kind": k, "target_user_id": t, "count": n}
            for (day, b, u, k, t), n in pairs.items()
        ],
    )
    insert_ignore_many(
        conn,
        forum_link_days,
        [
            _day_columns(site, day, week=False)
            | {"board_id": b, "user_id": u, "kind": k, "domain": dom, "count": n}
            for (day, b, u, k, dom), n in links.items()
        ],
    )
    insert_ignore_many(
        conn,
        forum_stale,
        [
            {"site_id": site, "day": day, "board_id": b, "user_id": u, "mark": report.token}
            for day, b, u in keys
        ],
    )
    # The keys read are every key of the window whose mark is one read: a mark is new with
    # each transaction that marks keys, and that transaction's keys were all read or none
    # were (it committed before the read or after). A key marked again since keeps its new mark.
    read_marks = sorted(set(marks.values()))
    for start in range(0, len(read_marks), CHUNK):
        conn.execute(
            forum_dirty.delete().where(
                (d.site_id == site)
                & d.day.between(first, last)
                & d.mark.in_(read_marks[start : start + CHUNK])
            )
        )
    report.keys += len(keys)
    report.days += len({day for day, _, _ in keys})
    report.posts += len(mine)


def _day_columns(site: int, day: int, *, week: bool = True) -> dict[str, int]:
    columns = {"site_id": site, "day": day} | calendar(day)
    if not week:
        del columns["week"], columns["weekday"]
    return columns


def _by_board(keys: Iterable[tuple[int, int, int]]) -> dict[int, list[tuple[int, int]]]:
    """(day, board, user) keys as the (day, user) pairs of each board: every table's primary
    key starts (site, board, day), so a board's days are one index range."""
    groups: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for day, board, user in keys:
        groups[board].append((day, user))
    return groups


def _any_in(
    conn: Connection, table: sa.Table, site: int, boards: list[int], first: int, last: int
) -> bool:
    """Whether `table` has rows of `site` on these boards on the days `first`..`last` (a range
    of its primary key, which leads with (site, board, day), per board)."""
    t = table.c
    found = conn.execute(
        sa.select(t.day)
        .where((t.site_id == site) & t.board_id.in_(boards) & t.day.between(first, last))
        .limit(1)
    ).first()
    return found is not None


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


def _chunks(ids: Iterable[int], size: int = 500) -> Iterable[list[int]]:
    ordered = sorted(ids)
    for start in range(0, len(ordered), size):
        yield ordered[start : start + size]


def _pairs(
    conn: Connection, site: int, posts: dict[int, Key]
) -> Counter[tuple[int, int, int, str, int]]:
    """(day, board, quoter, kind, quoted user) counts of these posts' quotes and replies whose
    target post is stored (one not crawled yet counts once it is: the crawl marks its quoters)."""
    q = forum_quotes
    by_id, by_number = forum_posts.alias("by_id"), forum_posts.alias("by_number")
    counts: Counter[tuple[int, int, int, str, int]] = Counter()
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
                day, board, user = posts[int(post_id)]
                counts[(day, board, user, str(kind), int(target))] += int(count)
    return counts


def _links(
    conn: Connection, site: int, posts: dict[int, Key]
) -> Counter[tuple[int, int, int, str, str]]:
    """(day, board, user, kind, domain) counts of these posts' links, images and videos."""
    counts: Counter[tuple[int, int, int, str, str]] = Counter()
    for chunk in _chunks(posts):
        rows = conn.execute(
            sa.select(
                forum_links.c.post_id, forum_links.c.kind, forum_links.c.domain, forum_links.c.count
            ).where((forum_links.c.site_id == site) & forum_links.c.post_id.in_(chunk))
        )
        for post_id, kind, domain, count in rows:
            day, board, user = posts[int(post_id)]
            counts[(day, board, user, str(kind), str(domain))] += int(count)
    return counts
