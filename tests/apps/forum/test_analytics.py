"""Analytics of crawled emulated forums equal the generator's ground truth (thread times: a
computation from the stored topics), on SQLite, PostgreSQL and MariaDB; after a forum moves on,
a pass recomputes only the days and topics that changed, to what a rebuild makes."""

from __future__ import annotations

import asyncio
import statistics
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from sleuth.app import migration_dirs
from sleuth.apps.forum import stats
from sleuth.apps.forum.analytics import THREADS, analyze, rebuild
from sleuth.apps.forum.crawl import crawl_bb_board, crawl_discourse
from sleuth.apps.forum.models import (
    forum_activity,
    forum_dirty,
    forum_dirty_topics,
    forum_posts,
    forum_sites,
    forum_stale,
    forum_stale_threads,
    forum_topics,
)
from sleuth.apps.forum.totals import ROLLUPS, refresh_site, week_of
from sleuth.emulator import EmulatorServer, create_imagehost_app
from sleuth.emulator.forums import Forum, Forums, GroundTruth
from sleuth.net.fetcher import Fetcher
from sleuth.sources.bbxml import BbClient, xml_base
from sleuth.sources.discourse import DiscourseClient, forum_base, profile
from sleuth.store.db import make_engine, migrate

LOOPBACK = "127.0.0.1"


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    migrate(engine, migration_dirs())
    yield engine
    engine.dispose()


@pytest.fixture
def served() -> Iterator[tuple[str, Forum]]:
    forum = Forum(11, 900)
    forums = Forums({"main": forum}, rate_limits=False)
    with EmulatorServer(create_imagehost_app(seed=0, forums=forums)) as url:
        yield url, forum


def _crawl(engine: Engine, url: str, kind: str, forum: Forum) -> None:
    async def go() -> None:
        async with Fetcher(allow_private=True) as fetcher:
            if kind == "discourse":
                base = forum_base(f"{url}/discourse/main/latest")
                await crawl_discourse(engine, DiscourseClient(fetcher, base, profile(0)))
                return
            client = BbClient(fetcher, xml_base(f"{url}/bb/main/"))
            for board in forum.boards:
                await crawl_bb_board(engine, client, board.id)

    asyncio.run(go())


def _site(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(forum_sites.c.id)).scalar_one())


def _posts(rows: dict[str, dict[str, object]]) -> Counter[str]:
    return Counter({k: int(v["post_count"]) for k, v in rows.items()})  # type: ignore[call-overload]


def _check(engine: Engine, truth: GroundTruth, kind: str) -> None:
    site = _site(engine)
    scope = stats.Scope(site)
    with engine.connect() as conn:
        assert _posts(stats.daily_stats(conn, scope)) == Counter(truth.posts_by_day)
        assert _posts(stats.year_stats(conn, scope)) == Counter(
            {str(y): n for y, n in truth.posts_by_year.items()}
        )
        assert _posts(stats.weekday_stats(conn, scope)) == Counter(
            {str(d): n for d, n in truth.posts_by_weekday.items()}
        )
        hourly = _posts(stats.hourly_stats(conn, scope))
        assert sum(hourly.values()) == truth.posts
        by_hour: Counter[int] = Counter()
        for slot, n in hourly.items():
            by_hour[int(slot.split(":")[2])] += n
        assert by_hour == truth.posts_by_hour
        rows, following = stats.poster_stats(conn, scope, limit=100_000)
        assert following is None
        assert {r["user"]["uid"]: r["post_count"] for r in rows} == dict(truth.posts_by_user)
        assert {r["user"]["uid"]: r["threads_created"] for r in rows if r["threads_created"]} == (
            dict(truth.topics_by_user)
        )
        assert {r["user"]["uid"]: r["user"]["name"] for r in rows} == truth.usernames
        quotes = stats.social_graph(conn, scope, limit=100_000, kind="quote")
        assert {(r["from"]["uid"], r["to"]["uid"]): r["count"] for r in quotes} == dict(
            truth.quote_pairs
        )
        replies = stats.social_graph(conn, scope, limit=100_000, kind="reply")
        expected_replies = truth.reply_pairs if kind == "discourse" else Counter()
        assert {(r["from"]["uid"], r["to"]["uid"]): r["count"] for r in replies} == dict(
            expected_replies
        )
        host = Forum(0, 1).host  # relative links are on the forum's own host: here, loopback
        found = stats.domains(conn, scope, kind=None, limit=100_000)
        by_kind = {
            k: stats.domains(conn, scope, kind=k, limit=100_000) for k in ("link", "image", "video")
        }
        expected = Counter()
        for (domain, link_kind), n in truth.links.items():
            expected[(LOOPBACK if domain == host else domain, link_kind)] += n
        assert {(r["domain"], k): r["count"] for k, rs in by_kind.items() for r in rs} == dict(
            expected
        )
        total: Counter[str] = Counter()
        for (domain, _), n in expected.items():
            total[domain] += n
        assert {r["domain"]: r["count"] for r in found} == dict(total)
        users = stats.user_domains(conn, scope, kind=None, limit=100_000)
        expected_users: Counter[tuple[int, str]] = Counter()
        for (uid, domain, _), n in truth.user_links.items():
            expected_users[(uid, LOOPBACK if domain == host else domain)] += n
        assert {(r["user"]["uid"], r["domain"]): r["count"] for r in users} == dict(expected_users)
        _check_threads(conn, site)


def _check_threads(conn: sa.Connection, site: int) -> None:
    """Every scope's thread times equal what the topics and their second posts say."""
    t, p = forum_topics.c, forum_posts.c
    second = dict(conn.execute(sa.select(p.topic_id, p.created_at).where(p.number == 2)).all())
    topics = [
        (int(r.board_id), datetime.fromtimestamp(r.created_at, UTC).year, r)
        for r in conn.execute(sa.select(forum_topics).where(t.created_at.is_not(None)))
    ]
    boards = sorted({b for b, _, _ in topics})
    years = sorted({y for _, y, _ in topics})
    scopes = [(None, None), *((b, None) for b in boards), *((None, y) for y in years)]
    scopes += [(boards[0], years[-1]), (boards[-1], years[0]), (boards[0], 1999)]
    for board, year in scopes:
        mine = [r for b, y, r in topics if board in (None, b) and year in (None, y)]
        responses = [second[r.topic_id] - r.created_at for r in mine if second.get(r.topic_id)]
        lifetimes = [r.last_posted_at - r.created_at for r in mine if r.last_posted_at]
        answer = stats.thread_stats(conn, stats.Scope(site, year, board))
        assert answer == {
            "threads": len(mine),
            "first_response": _summary(responses),
            "lifetime": _summary(lifetimes),
        }, (board, year)
    assert len(topics) > 30 and len(years) > 1 and len(boards) > 1


def _summary(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"count": 0, "median_seconds": None, "mean_seconds": None}
    mean = pytest.approx(statistics.fmean(values), rel=1e-12)
    return {"count": len(values), "median_seconds": statistics.median(values), "mean_seconds": mean}


@pytest.mark.parametrize("kind", ["discourse", "bbxml"])
def test_statistics_equal_the_ground_truth_then_follow_the_forum(
    engine: Engine, served: tuple[str, Forum], kind: str
) -> None:
    url, forum = served
    _crawl(engine, url, kind, forum)
    first = analyze(engine)
    assert first.posts == forum.ground_truth().posts
    _check(engine, forum.ground_truth(), kind)
    again = analyze(engine)
    assert (again.keys, again.topics) == (0, 0)  # nothing changed: nothing recomputed

    forum.advance(forum.topic_gap * 3)  # replies, new topics, edits, renames
    _crawl(engine, url, kind, forum)
    later = analyze(engine)
    assert 0 < later.days < first.days / 5  # the days of new and edited posts only
    assert 0 < later.topics < first.topics / 3  # the topics crawled again only
    _check(engine, forum.ground_truth(), kind)
    kept = _totals(engine)
    with engine.begin() as conn:  # the same totals made whole, in set-based statements
        conn.execute(
            forum_stale.insert().from_select(
                ["site_id", "board_id", "day", "user_id", "mark"],
                sa.select(
                    forum_activity.c.site_id,
                    forum_activity.c.board_id,
                    forum_activity.c.day,
                    forum_activity.c.user_id,
                    sa.literal(0),
                ).distinct(),
            )
        )
        refresh_site(conn, _site(engine), full_after=0)
    assert _totals(engine) == kept
    rebuild(engine, _site(engine))  # and every topic's times and thread totals from scratch
    assert _totals(engine) == kept


def _totals(engine: Engine) -> dict[str, list[object]]:
    with engine.connect() as conn:
        return {
            table.name: conn.execute(sa.select(table).order_by(*table.primary_key.columns)).all()
            for table in (*(r.target for r in ROLLUPS), *THREADS)
        }


def test_rebuild_recomputes_everything_to_the_same_rows(
    engine: Engine, served: tuple[str, Forum]
) -> None:
    url, forum = served
    _crawl(engine, url, "discourse", forum)
    analyze(engine)
    query = sa.select(forum_activity).order_by(*forum_activity.primary_key.columns)
    with engine.connect() as conn:
        before = conn.execute(query).all()
    totals = _totals(engine)
    report = rebuild(engine, _site(engine))
    with engine.connect() as conn:
        assert conn.execute(query).all() == before
        assert conn.execute(sa.select(sa.func.count()).select_from(forum_dirty)).scalar() == 0
        for table in (forum_stale, forum_dirty_topics, forum_stale_threads):
            assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() == 0
    assert _totals(engine) == totals
    assert report.posts == forum.ground_truth().posts


def test_a_key_marked_again_during_a_pass_stays_dirty(
    engine: Engine, served: tuple[str, Forum]
) -> None:
    """A crawl that commits after analytics read a day re-marks its keys: the pass leaves them."""
    from sleuth.apps.forum.records import mark_dirty

    url, forum = served
    _crawl(engine, url, "discourse", forum)
    site = _site(engine)
    with engine.connect() as conn:
        board, day, user = conn.execute(
            sa.select(forum_dirty.c.board_id, forum_dirty.c.day, forum_dirty.c.user_id).limit(1)
        ).one()
    import sleuth.apps.forum.analytics as analytics

    original = analytics._pairs

    def crawl_meanwhile(conn, site_id, posts):  # type: ignore[no-untyped-def]
        with engine.begin() as other:
            mark_dirty(other, site, {(int(board), int(day), int(user))})
        return original(conn, site_id, posts)

    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite serializes writers: a crawl cannot commit inside a pass")
    analytics._pairs = crawl_meanwhile  # type: ignore[assignment]
    try:
        with engine.begin() as conn:
            report = analytics.AnalyticsReport()
            analytics._analyze_days(conn, site, int(day), report)
    finally:
        analytics._pairs = original  # type: ignore[assignment]
    with engine.connect() as conn:
        left = conn.execute(
            sa.select(forum_dirty.c.day).where(
                (forum_dirty.c.board_id == board) & (forum_dirty.c.user_id == user)
            )
        ).all()
    assert (int(day),) in [(int(d),) for (d,) in left]


def test_weeks_start_on_january_first() -> None:
    from datetime import UTC, datetime

    assert week_of(datetime(2021, 1, 1, tzinfo=UTC)) == 1
    assert week_of(datetime(2021, 1, 7, tzinfo=UTC)) == 1
    assert week_of(datetime(2021, 1, 8, tzinfo=UTC)) == 2
    assert week_of(datetime(2020, 12, 31, tzinfo=UTC)) == 53
