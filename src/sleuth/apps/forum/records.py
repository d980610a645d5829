"""Idempotent writes of a crawled forum: every row is upserted on the forum's own ids.

`save_topic` writes a topic, its posts, their users and edits, and the topic's checkpoint in the
caller's transaction: the crawl commits a topic and its checkpoint together, so a killed crawl
loses at most the topic it was writing, and a re-crawl rewrites the same rows."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Table

from sleuth.apps.forum.models import (
    KINDS,
    forum_boards,
    forum_categories,
    forum_edits,
    forum_posts,
    forum_quotes,
    forum_sites,
    forum_topics,
    forum_user_names,
    forum_users,
)
from sleuth.sources.forumtypes import ForumBoard, ForumCategory, ForumPost, ForumTopic, ForumUser
from sleuth.store.upsert import insert_ignore, insert_or_update


def _upsert(
    conn: Connection, table: Table, row: Mapping[str, Any], keep: Iterable[str] = ()
) -> None:
    """Insert `row`, or set every column but the key (and `keep`) to its new value."""
    key = {c.name for c in table.primary_key.columns} | set(keep)
    insert_or_update(conn, table, row, {k: v for k, v in row.items() if k not in key})


def site_id(conn: Connection, kind: str, url: str, now: float) -> int:
    """The id of the forum at base `url` (created on its first crawl)."""
    if kind not in KINDS:
        raise ValueError(f"a forum is one of {KINDS}, not {kind!r}")
    insert_ignore(
        conn, forum_sites, {"kind": kind, "url": url, "first_crawled": now, "last_crawled": now}
    )
    where = (forum_sites.c.kind == kind) & (forum_sites.c.url == url)
    conn.execute(forum_sites.update().where(where).values(last_crawled=now))
    return int(conn.execute(sa.select(forum_sites.c.id).where(where)).scalar_one())


def save_boards(
    conn: Connection, site: int, categories: Sequence[ForumCategory], boards: Sequence[ForumBoard]
) -> None:
    for category in categories:
        _upsert(conn, forum_categories, {"site_id": site, **vars(category)})
    for board in boards:
        _upsert(conn, forum_boards, {"site_id": site, **vars(board)})


def save_users(conn: Connection, site: int, users: Iterable[ForumUser], now: float) -> None:
    """Each user's latest name and group, and every name seen (renames are kept)."""
    for user in {u.user_id: u for u in users}.values():
        row = {"site_id": site, "user_id": user.user_id, "name": user.name, "first_seen": now}
        row |= {"last_seen": now, "group_id": user.group_id}
        _upsert(conn, forum_users, row, keep=("first_seen",))
        row = {"site_id": site, "user_id": user.user_id, "name": user.name}
        _upsert(
            conn, forum_user_names, row | {"first_seen": now, "last_seen": now}, ("first_seen",)
        )


def save_topic(
    conn: Connection, site: int, topic: ForumTopic, posts: Sequence[ForumPost], now: float
) -> None:
    """Write the topic, its (new or changed) posts and the checkpoint that says it is crawled.

    `posts` need not be all of them: a re-crawl passes what changed, and the checkpoint counts
    the posts stored for the topic."""
    save_users(conn, site, (p.user for p in posts), now)
    for post in posts:
        row = {k: v for k, v in vars(post).items() if k != "user"}
        _upsert(conn, forum_posts, {"site_id": site, **row, "user_id": post.user.user_id})
        if post.edit_count:
            edit: dict[str, Any] = {"site_id": site, "post_id": post.post_id}
            edit["edit_count"] = post.edit_count
            edit |= {"edited_at": post.last_edit_at, "editor_id": post.last_edit_user_id}
            insert_ignore(conn, forum_edits, edit | {"seen_at": now})
        if post.reply_to_number is not None:
            reply: dict[str, Any] = {"site_id": site, "post_id": post.post_id, "kind": "reply"}
            reply |= {"target_topic_id": post.topic_id, "target_post_id": 0}
            reply |= {"target_number": post.reply_to_number, "quoted_name": "", "count": 1}
            insert_ignore(conn, forum_quotes, reply)
    stored = conn.execute(
        sa.select(sa.func.count())
        .select_from(forum_posts)
        .where((forum_posts.c.site_id == site) & (forum_posts.c.topic_id == topic.topic_id))
    ).scalar_one()
    row = {"site_id": site, **vars(topic), "crawled_posts": stored}
    row |= {"crawled_last_posted_at": topic.last_posted_at, "crawled_at": now}
    _upsert(conn, forum_topics, row)


def checkpoints(
    conn: Connection, site: int, topic_ids: Iterable[int]
) -> dict[int, tuple[int, float | None]]:
    """(posts stored, last post time seen) of each already crawled topic among `topic_ids`."""
    ids = list(topic_ids)
    if not ids:
        return {}
    rows = conn.execute(
        sa.select(
            forum_topics.c.topic_id,
            forum_topics.c.crawled_posts,
            forum_topics.c.crawled_last_posted_at,
        ).where((forum_topics.c.site_id == site) & forum_topics.c.topic_id.in_(ids))
    )
    return {int(r[0]): (int(r[1]), r[2]) for r in rows}


def stored_post_ids(conn: Connection, site: int, topic_id: int) -> set[int]:
    rows = conn.execute(
        sa.select(forum_posts.c.post_id).where(
            (forum_posts.c.site_id == site) & (forum_posts.c.topic_id == topic_id)
        )
    )
    return {int(r[0]) for r in rows}


def high_water(conn: Connection, site: int, board_id: int | None = None) -> float | None:
    """The newest bump time of the site's (or one board's) last complete crawl, if any."""
    if board_id is None:
        query = sa.select(forum_sites.c.high_water).where(forum_sites.c.id == site)
    else:
        where = (forum_boards.c.site_id == site) & (forum_boards.c.board_id == board_id)
        query = sa.select(forum_boards.c.high_water).where(where)
    return conn.execute(query).scalar()


def set_high_water(conn: Connection, site: int, value: float, board_id: int | None = None) -> None:
    """Record that every topic bumped no later than `value` is stored (never moves back)."""
    if board_id is None:
        table, where = forum_sites, forum_sites.c.id == site
    else:
        table = forum_boards
        where = (forum_boards.c.site_id == site) & (forum_boards.c.board_id == board_id)
    column = table.c.high_water
    conn.execute(
        table.update()
        .where(where & ((column.is_(None)) | (column < value)))
        .values(high_water=value)
    )
