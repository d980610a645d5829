"""Idempotent writes of a crawled forum: every row is upserted on the forum's own ids.

`save_topic` writes a topic, its posts, their users, edits, quotes and links, the statistics
keys they touch (`forum_dirty`), the topic's mark for its thread times (`forum_dirty_topics`),
and the topic's checkpoint in the caller's transaction: the
crawl commits a topic and its checkpoint together, so a killed crawl loses at most the topic
it was writing, and a re-crawl rewrites the same rows."""

from __future__ import annotations

import hashlib
import secrets
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Table

from sleuth.apps.forum.markup import LinkRef, read_post
from sleuth.apps.forum.models import (
    KINDS,
    forum_boards,
    forum_categories,
    forum_dirty,
    forum_edits,
    forum_links,
    forum_posts,
    forum_quotes,
    forum_sites,
    forum_topics,
    forum_user_names,
    forum_users,
)
from sleuth.apps.forum.threads import mark_topic
from sleuth.sources.forumtypes import ForumBoard, ForumCategory, ForumPost, ForumTopic, ForumUser
from sleuth.store.upsert import insert_ignore, insert_ignore_many, insert_or_update

DAY = 86400


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
    """Write the topic, its (new or changed) posts with what their text quotes and links, the
    statistics keys they touch, and the checkpoint that says the topic is crawled.

    `posts` need not be all of them: a re-crawl passes what changed, and the checkpoint counts
    the posts stored for the topic."""
    kind, base = _site(conn, site)
    before = _stored_posts(conn, site, [p.post_id for p in posts])
    changed = [p for p in posts if before.get(p.post_id) != _content(p)]
    moved_from = _moved_from(conn, site, topic)
    save_users(conn, site, (p.user for p in posts), now)
    for post in posts:
        row = {k: v for k, v in vars(post).items() if k != "user"}
        _upsert(conn, forum_posts, {"site_id": site, **row, "user_id": post.user.user_id})
        if post.edit_count:
            edit: dict[str, Any] = {"site_id": site, "post_id": post.post_id}
            edit["edit_count"] = post.edit_count
            edit |= {"edited_at": post.last_edit_at, "editor_id": post.last_edit_user_id}
            insert_ignore(conn, forum_edits, edit | {"seen_at": now})
    _save_markup(conn, site, kind, base, changed)
    keys = {(topic.board_id, day_of(p.created_at), p.user.user_id) for p in changed}
    if moved_from is not None:  # every post of the topic leaves one board for another
        for board in (moved_from, topic.board_id):
            keys |= {(board, d, u) for d, u in _post_keys(conn, site, topic.topic_id)}
    keys |= _quoters_of(conn, site, [p for p in posts if p.post_id not in before])
    mark_dirty(conn, site, keys)
    mark_topic(conn, site, topic.topic_id, secrets.randbits(62))
    stored = conn.execute(
        sa.select(sa.func.count())
        .select_from(forum_posts)
        .where((forum_posts.c.site_id == site) & (forum_posts.c.topic_id == topic.topic_id))
    ).scalar_one()
    row = {"site_id": site, **vars(topic), "crawled_posts": stored}
    row |= {"crawled_last_posted_at": topic.last_posted_at, "crawled_at": now}
    _upsert(conn, forum_topics, row)


def _content(post: ForumPost) -> tuple[Any, ...]:
    """What the statistics read of a post: a re-read post that differs in none is unchanged."""
    return (
        post.topic_id,
        post.number,
        post.user.user_id,
        post.created_at,
        post.edit_count,
        post.reply_to_number,
        post.raw,
        post.cooked,
    )


def _stored_posts(conn: Connection, site: int, ids: Sequence[int]) -> dict[int, tuple[Any, ...]]:
    p = forum_posts.c
    columns = (p.topic_id, p.number, p.user_id, p.created_at, p.edit_count, p.reply_to_number)
    found: dict[int, tuple[Any, ...]] = {}
    for start in range(0, len(ids), 500):
        rows = conn.execute(
            sa.select(p.post_id, *columns, p.raw, p.cooked).where(
                (p.site_id == site) & p.post_id.in_(ids[start : start + 500])
            )
        )
        found.update({int(r[0]): tuple(r[1:]) for r in rows})
    return found


def day_of(moment: float) -> int:
    """The UTC day (days since 1970-01-01) of an epoch time: the statistics' unit."""
    return int(moment // DAY)


def mark_dirty(conn: Connection, site: int, keys: Iterable[tuple[int, int, int]]) -> None:
    """Have analytics recompute these (board, day, user) keys. Each gets a new mark, so an
    analytics pass that read the posts before this transaction leaves the key dirty."""
    mark = secrets.randbits(62)
    for board, day, user in sorted(keys):
        row = {"site_id": site, "board_id": board, "day": day, "user_id": user, "mark": mark}
        insert_or_update(conn, forum_dirty, row, {"mark": mark})


def _site(conn: Connection, site: int) -> tuple[str, str]:
    row = conn.execute(
        sa.select(forum_sites.c.kind, forum_sites.c.url).where(forum_sites.c.id == site)
    ).one()
    return str(row.kind), str(row.url)


def _moved_from(conn: Connection, site: int, topic: ForumTopic) -> int | None:
    """The board the topic was stored on, when it has since moved to another."""
    board = conn.execute(
        sa.select(forum_topics.c.board_id).where(
            (forum_topics.c.site_id == site) & (forum_topics.c.topic_id == topic.topic_id)
        )
    ).scalar()
    return None if board is None or board == topic.board_id else int(board)


def _post_keys(conn: Connection, site: int, topic_id: int) -> set[tuple[int, int]]:
    rows = conn.execute(
        sa.select(forum_posts.c.created_at, forum_posts.c.user_id).where(
            (forum_posts.c.site_id == site) & (forum_posts.c.topic_id == topic_id)
        )
    )
    return {(day_of(r.created_at), int(r.user_id)) for r in rows}


def _save_markup(
    conn: Connection, site: int, kind: str, base: str, posts: Sequence[ForumPost]
) -> None:
    """Replace each post's quotes, reply and links with what its text says now."""
    ids = [p.post_id for p in posts]
    for table in (forum_quotes, forum_links):
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            conn.execute(
                table.delete().where((table.c.site_id == site) & table.c.post_id.in_(chunk))
            )
    quotes: Counter[tuple[int, str, int, int, int, str]] = Counter()
    links: Counter[tuple[int, LinkRef]] = Counter()
    for post in posts:
        markup = read_post(kind, post.raw, post.cooked, base)
        for quote in markup.quotes:
            target = (quote.topic_id, quote.post_id or 0, quote.number or 0)
            quotes[(post.post_id, "quote", *target, quote.name[:255])] += 1
        if post.reply_to_number is not None:
            quotes[(post.post_id, "reply", post.topic_id, 0, post.reply_to_number, "")] += 1
        for link, count in markup.links.items():
            links[(post.post_id, link)] += count
    quote_rows = [
        {"site_id": site, "post_id": p, "kind": k, "target_topic_id": t}
        | {"target_post_id": tp, "target_number": n, "quoted_name": name, "count": count}
        for (p, k, t, tp, n, name), count in quotes.items()
    ]
    link_rows = [
        {"site_id": site, "post_id": p, "url_key": hashlib.sha1(link.url.encode()).hexdigest()}
        | {"kind": link.kind, "url": link.url, "domain": link.domain[:255], "count": count}
        for (p, link), count in links.items()
    ]
    insert_ignore_many(conn, forum_quotes, quote_rows)
    insert_ignore_many(conn, forum_links, link_rows)


def _quoters_of(
    conn: Connection, site: int, posts: Sequence[ForumPost]
) -> set[tuple[int, int, int]]:
    """The (board, day, user) keys of stored posts that quote or answer one of these new posts:
    a quote crawled before the post it quotes counts once that post is in."""
    if not posts:
        return set()
    by_id = [p.post_id for p in posts]
    by_number = [(p.topic_id, p.number) for p in posts]
    q, quoter, topics = forum_quotes, forum_posts.alias("quoter"), forum_topics
    target = q.c.target_post_id.in_(by_id) | sa.tuple_(q.c.target_topic_id, q.c.target_number).in_(
        by_number
    )
    rows = conn.execute(
        sa.select(topics.c.board_id, quoter.c.created_at, quoter.c.user_id)
        .select_from(q)
        .join(quoter, (quoter.c.site_id == q.c.site_id) & (quoter.c.post_id == q.c.post_id))
        .join(
            topics,
            (topics.c.site_id == quoter.c.site_id) & (topics.c.topic_id == quoter.c.topic_id),
        )
        .where((q.c.site_id == site) & target)
    )
    return {(int(r.board_id), day_of(r.created_at), int(r.user_id)) for r in rows}


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
