"""Crawling the emulated forums into SQLite: complete, then incremental within the stated
request bounds (counted by the emulator)."""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from sleuth.app import migration_dirs
from sleuth.apps.forum.crawl import CrawlReport, crawl_bb_board, crawl_discourse
from sleuth.apps.forum.models import forum_posts, forum_topics, forum_users
from sleuth.emulator import EmulatorServer, create_imagehost_app
from sleuth.emulator.forums import Forum, Forums
from sleuth.net.errors import FetchError
from sleuth.net.fetcher import Fetcher
from sleuth.sources.bbxml import BbClient, xml_base
from sleuth.sources.discourse import DiscourseClient, forum_base, profile
from sleuth.store.db import make_engine, migrate
from tests.apps.forum.helpers import Failing


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'forum.db'}")
    migrate(engine, migration_dirs())
    yield engine
    engine.dispose()


@pytest.fixture
def served() -> Iterator[tuple[str, Forum, Forums]]:
    forum = Forum(7, 1500)
    forums = Forums({"main": forum}, rate_limits=False)
    with EmulatorServer(create_imagehost_app(seed=0, forums=forums)) as url:
        yield url, forum, forums


def _discourse(engine: Engine, url: str) -> CrawlReport:
    async def go() -> CrawlReport:
        async with Fetcher(allow_private=True) as fetcher:
            base = forum_base(f"{url}/discourse/main/latest")
            client = DiscourseClient(fetcher, base, profile(0))  # as fast as it answers
            return await crawl_discourse(engine, client)

    return asyncio.run(go())


def _bb(engine: Engine, url: str, board: int) -> CrawlReport:
    async def go() -> CrawlReport:
        async with Fetcher(allow_private=True) as fetcher:
            client = BbClient(fetcher, xml_base(f"{url}/bb/main/"))
            return await crawl_bb_board(engine, client, board)

    return asyncio.run(go())


def _stored(engine: Engine, topic_ids: set[int] | None = None) -> Counter[int]:
    """Posts stored per user (of the given topics only, if given)."""
    query = sa.select(forum_posts.c.user_id, forum_posts.c.topic_id)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return Counter(r.user_id for r in rows if topic_ids is None or r.topic_id in topic_ids)


def test_discourse_crawl_is_complete_then_incremental(
    engine: Engine, served: tuple[str, Forum, Forums]
) -> None:
    url, forum, forums = served
    report = _discourse(engine, url)
    truth = forum.ground_truth()
    assert _stored(engine) == truth.posts_by_user
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(forum_topics)).scalar() == (
            truth.topics
        )
        names = dict(conn.execute(sa.select(forum_users.c.user_id, forum_users.c.name)).all())
        raws = conn.execute(sa.select(forum_posts.c.raw)).scalars().all()
    assert names == truth.usernames
    assert all(raws)
    assert report.requests == forums.requests[("discourse", "main")]

    # nothing changed: two requests (the boards, the first page of the list)
    before = forums.requests[("discourse", "main")]
    again = _discourse(engine, url)
    assert forums.requests[("discourse", "main")] - before == 2 and again.topics == []

    # k topics bumped, m new posts
    counts = {t.id: t.count for t in forum.topics_by_activity()}
    forum.advance(forum.topic_gap * 6)
    bumped = [t for t in forum.topics_by_activity() if t.count != counts.get(t.id)]
    k = len(bumped)
    per_topic = [t.count - counts.get(t.id, 0) for t in bumped]
    m = sum(per_topic)
    assert k >= 3
    before = forums.requests[("discourse", "main")]
    update = _discourse(engine, url)
    spent = forums.requests[("discourse", "main")] - before
    assert sorted(update.topics) == sorted(t.id for t in bumped)
    # each bumped topic: its page (stream + first 20), then the rest 20 a request
    batches = sum(
        math.ceil(max(0, n - (20 if counts.get(t.id) is None else 0)) / 20)
        for t, n in zip(bumped, per_topic, strict=True)
    )
    assert spent <= math.ceil(k / 30) + k + batches + 1
    # the bound; it holds here, though a topic whose new posts start past its first
    # chunk may cost one batch more than the pooled ceil(m / 20) counts
    assert spent <= math.ceil(k / 30) + k + math.ceil(m / 20) + 1
    assert _stored(engine) == forum.ground_truth().posts_by_user
    # the rescan window: the five stored posts before each bumped topic's first new one are
    # as the forum has them now, edits included
    window = {
        p.id: len(p.edits)
        for t in bumped
        if t.id in counts
        for p in forum.posts(t)[max(0, counts[t.id] - 5) : counts[t.id]]
    }
    assert window
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(forum_posts.c.post_id, forum_posts.c.edit_count).where(
                forum_posts.c.post_id.in_(list(window))
            )
        ).all()
    assert dict((r.post_id, r.edit_count) for r in rows) == window


def test_bb_board_crawl_is_complete_then_incremental(
    engine: Engine, served: tuple[str, Forum, Forums]
) -> None:
    url, forum, forums = served
    truth = forum.ground_truth()
    board = max(forum.boards, key=lambda b: truth.topics_by_board[b.id]).id
    report = _bb(engine, url, board)
    ids = {t.id for t in forum.topics_by_activity(board)}
    assert len(report.topics) == len(ids) > 30  # more than one page of threads
    expected = Counter(p.user_id for t in forum.topics_by_activity(board) for p in forum.posts(t))
    assert _stored(engine) == expected
    before = forums.requests[("bbxml", "main")]
    assert _bb(engine, url, board).topics == []
    assert forums.requests[("bbxml", "main")] - before == 2

    counts = {t.id: t.count for t in forum.topics_by_activity(board)}
    forum.advance(forum.topic_gap * 8)
    bumped = [t for t in forum.topics_by_activity(board) if t.count != counts.get(t.id)]
    before = forums.requests[("bbxml", "main")]
    update = _bb(engine, url, board)
    spent = forums.requests[("bbxml", "main")] - before
    assert sorted(update.topics) == sorted(t.id for t in bumped)
    pages = sum(
        t.count // 30 - counts.get(t.id, 0) // 30 + 1 for t in bumped
    )  # from the page of the first new post to the last
    assert spent <= 1 + math.ceil(len(bumped) / 30) + 1 + pages
    expected = Counter(p.user_id for t in forum.topics_by_activity(board) for p in forum.posts(t))
    assert _stored(engine) == expected


def test_discourse_rate_limits_are_waited_out(engine: Engine) -> None:
    """Limits far below Discourse's (10 requests a second): whatever the crawl meets, each 429's
    Retry-After is waited out through the shared budget and nothing is lost."""
    forum = Forum(3, 600)
    forums = Forums({"main": forum}, limits=((1.0, 10, "ip_10_secs_limit"),))
    with EmulatorServer(create_imagehost_app(seed=0, forums=forums)) as url:
        report = _discourse(engine, url)
    assert report.requests == forums.requests[("discourse", "main")]  # every refusal retried
    assert _stored(engine) == forum.ground_truth().posts_by_user


def test_a_crawl_that_dies_partway_resumes_with_what_is_missing(engine: Engine) -> None:
    forum = Forum(9, 900)
    order = forum.topics_by_activity()
    victim = order[40]  # on the second page of the list
    app = Failing(
        create_imagehost_app(seed=0, forums=Forums({"main": forum}, rate_limits=False)),
        f"/discourse/main/t/{victim.id}.json",
    )
    with EmulatorServer(app) as url:
        with pytest.raises(FetchError, match="404"):
            _discourse(engine, url)
        with engine.connect() as conn:
            stored = set(conn.execute(sa.select(forum_topics.c.topic_id)).scalars())
        assert stored == {t.id for t in order[:40]}  # every topic before the failure, committed
        app.on = False
        resumed = _discourse(engine, url)
    assert set(resumed.topics) == {t.id for t in order[40:]}
    assert _stored(engine) == forum.ground_truth().posts_by_user
