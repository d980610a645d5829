"""The forum app's tables on SQLite, PostgreSQL and MariaDB: re-crawls are upserts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from sleuth.app import migration_dirs
from sleuth.apps.forum.models import (
    forum_edits,
    forum_posts,
    forum_quotes,
    forum_topics,
    forum_user_names,
    forum_users,
)
from sleuth.apps.forum.records import (
    checkpoints,
    save_boards,
    save_topic,
    site_id,
    stored_post_ids,
)
from sleuth.sources.forumtypes import ForumBoard, ForumCategory, ForumPost, ForumTopic, ForumUser
from sleuth.store.db import make_engine, migrate


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    migrate(engine, migration_dirs())
    yield engine
    engine.dispose()


def _post(number: int, user: ForumUser, raw: str, edits: int = 0) -> ForumPost:
    return ForumPost(
        post_id=7000 + number,
        topic_id=7,
        number=number,
        user=user,
        created_at=1000.0 + number,
        updated_at=1000.0 + number + edits,
        edit_count=edits,
        last_edit_user_id=user.user_id if edits else None,
        last_edit_at=1000.0 + number + edits if edits else None,
        reply_to_number=1 if number > 1 else None,
        title="",
        raw=raw,
        cooked=f"<p>{raw}</p>",
    )


TOPIC = ForumTopic(7, 3, "Größe zählt", "", "grosse-zahlt", 1, 1001.0, 1002.0, 2)


def test_sites_are_keyed_by_kind_and_url(engine: Engine) -> None:
    with engine.begin() as conn:
        a = site_id(conn, "discourse", "https://meta.example", 1.0)
        b = site_id(conn, "bbxml", "https://meta.example", 2.0)
        assert site_id(conn, "discourse", "https://meta.example", 3.0) == a != b
        with pytest.raises(ValueError, match="not 'forum'"):
            site_id(conn, "forum", "https://x.example", 1.0)


def test_a_recrawl_upserts_posts_users_renames_and_edits(engine: Engine) -> None:
    ada, bob = ForumUser(1, "Ada", 3), ForumUser(2, "Bob")
    with engine.begin() as conn:
        site = site_id(conn, "bbxml", "https://forum.example/bb", 1.0)
        save_boards(
            conn,
            site,
            [ForumCategory(1, "Allgemein", "")],
            [ForumBoard(3, 1, "Plauderecke", "plauderecke", "", 1, 2)],
        )
        save_topic(conn, site, TOPIC, [_post(1, ada, "hallo"), _post(2, bob, "[quote]x")], 10.0)
    # again, later: Ada renamed, post 1 edited, a third post
    ada2 = ForumUser(1, "Ada Lovelace", 3)
    topic = ForumTopic(7, 3, "Größe zählt", "", "grosse-zahlt", 1, 1001.0, 1003.0, 3)
    with engine.begin() as conn:
        save_topic(
            conn, site, topic, [_post(1, ada2, "hallo!", edits=1), _post(3, ada2, "ü")], 20.0
        )
        assert checkpoints(conn, site, [7, 8]) == {7: (3, 1003.0)}
        assert stored_post_ids(conn, site, 7) == {7001, 7002, 7003}
        posts = conn.execute(
            sa.select(forum_posts.c.post_id, forum_posts.c.raw, forum_posts.c.edit_count)
            .where(forum_posts.c.site_id == site)
            .order_by(forum_posts.c.post_id)
        ).all()
        assert [tuple(p) for p in posts] == [
            (7001, "hallo!", 1),
            (7002, "[quote]x", 0),
            (7003, "ü", 0),
        ]
        user = conn.execute(sa.select(forum_users).where(forum_users.c.user_id == 1)).one()
        assert (user.name, user.first_seen, user.last_seen) == ("Ada Lovelace", 10.0, 20.0)
        names = conn.execute(
            sa.select(forum_user_names.c.name).where(forum_user_names.c.user_id == 1)
        ).scalars()
        assert sorted(names) == ["Ada", "Ada Lovelace"]
        assert conn.execute(sa.select(sa.func.count()).select_from(forum_edits)).scalar() == 1
        replies = conn.execute(sa.select(forum_quotes.c.post_id, forum_quotes.c.kind)).all()
        assert sorted(tuple(r) for r in replies) == [(7002, "reply"), (7003, "reply")]
        title = conn.execute(sa.select(forum_topics.c.title)).scalar_one()
        assert title == "Größe zählt"
