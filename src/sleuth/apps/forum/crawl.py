"""Crawling a forum into the forum app's tables, topic by topic, incrementally.

A crawl lists topics most recently bumped first (Discourse's `/latest.json`, a bB board's pages)
and crawls each topic whose stored checkpoint (posts stored, last bump seen) differs from what
the list says; each topic is written with its checkpoint in one transaction, so a killed crawl
loses at most the topic it was writing. The listing stops at the first page that reaches the
previous complete crawl's high-water mark (the newest bump it saw): every topic bumped no later
was stored then, and an unchanged forum costs two requests. The mark moves only when a crawl
ends, so a crawl killed halfway lists as far again the next time.

Discourse: a changed topic costs `/t/{id}.json` (its stream and first 20 posts) and
`/t/{id}/posts.json` for the post ids not yet stored, 20 a request. bB: a changed thread is read
from the page holding its first post not yet stored to the last page.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

from sqlalchemy import Engine

from sleuth.apps.forum.records import (
    checkpoints,
    high_water,
    save_boards,
    save_topic,
    set_high_water,
    site_id,
    stored_post_ids,
)
from sleuth.sources.bbxml import PAGE, BbClient
from sleuth.sources.discourse import DiscourseClient
from sleuth.sources.forumtypes import ForumPost, ForumTopic


@dataclass
class CrawlReport:
    """What one crawl did: topics written, posts written, requests sent."""

    site: int
    topics: list[int] = field(default_factory=list)
    posts: int = 0
    requests: int = 0


def _changed(
    topics: list[ForumTopic], marks: dict[int, tuple[int, float | None]]
) -> list[ForumTopic]:
    return [t for t in topics if marks.get(t.topic_id) != (t.posts_count, t.last_posted_at)]


def _reached(topics: list[ForumTopic], mark: float | None) -> bool:
    return mark is not None and any(
        t.last_posted_at is not None and t.last_posted_at <= mark for t in topics
    )


async def crawl_discourse(engine: Engine, client: DiscourseClient) -> CrawlReport:
    """Crawl the forum's boards and every topic bumped since the last complete crawl."""
    now = time.time()
    with engine.begin() as conn:
        site = site_id(conn, "discourse", client.base, now)
        mark = high_water(conn, site)
    report = CrawlReport(site)
    boards = await client.boards()
    with engine.begin() as conn:
        save_boards(conn, site, [], boards)
    newest: float | None = None
    page = 0
    while True:
        listing = await client.latest(page)
        bumps = [t.last_posted_at for t in listing.topics if t.last_posted_at is not None]
        newest = max([*bumps, newest or 0.0]) or None
        with engine.connect() as conn:
            marks = checkpoints(conn, site, [t.topic_id for t in listing.topics])
        for topic in _changed(listing.topics, marks):
            report.posts += await crawl_discourse_topic(engine, client, site, topic)
            report.topics.append(topic.topic_id)
        if not listing.more or _reached(listing.topics, mark):
            break
        page += 1
    if newest is not None:
        with engine.begin() as conn:
            set_high_water(conn, site, newest)
    report.requests = client.requests
    return report


async def crawl_discourse_topic(
    engine: Engine, client: DiscourseClient, site: int, listed: ForumTopic
) -> int:
    """Fetch the topic's posts not yet stored (and its first chunk again, which shows recent
    edits there for free) and write them with the topic's checkpoint; returns posts written."""
    page = await client.topic(listed.topic_id)
    with engine.connect() as conn:
        known = stored_post_ids(conn, site, listed.topic_id)
    have = {p.post_id for p in page.posts}
    # a post without raw (a forum that ignores include_raw there) is asked for again by id
    missing = [i for i in page.stream if i not in known and i not in have]
    missing += [p.post_id for p in page.posts if not p.raw and p.post_id not in known]
    fetched = {p.post_id: p for p in await client.posts(listed.topic_id, missing)}
    posts: list[ForumPost] = [fetched.get(p.post_id, p) for p in page.posts]
    posts += [fetched[i] for i in page.stream if i in fetched and i not in have]
    topic = replace(page.topic, last_posted_at=listed.last_posted_at)
    with engine.begin() as conn:
        save_topic(conn, site, topic, posts, time.time())
    return len(posts)


async def crawl_bb_board(engine: Engine, client: BbClient, board_id: int) -> CrawlReport:
    """Crawl one bB board: its threads bumped since the board's last complete crawl."""
    now = time.time()
    with engine.begin() as conn:
        site = site_id(conn, "bbxml", client.base, now)
    categories, boards = await client.boards()
    if board_id not in {b.board_id for b in boards}:
        raise ValueError(f"{client.base} has no board {board_id}")
    with engine.begin() as conn:
        save_boards(conn, site, categories, boards)
        mark = high_water(conn, site, board_id)
    report = CrawlReport(site)
    newest: float | None = None
    page = 1
    while True:
        listing = await client.board(board_id, page)
        bumps = [t.last_posted_at for t in listing.threads if t.last_posted_at is not None]
        newest = max([*bumps, newest or 0.0]) or None
        with engine.connect() as conn:
            marks = checkpoints(conn, site, [t.topic_id for t in listing.threads])
        for thread in _changed(listing.threads, marks):
            stored = marks.get(thread.topic_id, (0, None))[0]
            report.posts += await crawl_bb_thread(engine, client, site, thread, stored)
            report.topics.append(thread.topic_id)
        if len(listing.threads) < PAGE or _reached(listing.threads, mark):
            break
        page += 1
    if newest is not None:
        with engine.begin() as conn:
            set_high_water(conn, site, newest, board_id)
    report.requests = client.requests
    return report


async def crawl_bb_thread(
    engine: Engine, client: BbClient, site: int, listed: ForumTopic, stored: int
) -> int:
    """Read the thread from the page holding its first post not yet stored to its end, and
    write those posts with the thread's checkpoint; returns posts written."""
    posts: list[ForumPost] = []
    page = stored // PAGE + 1
    while True:
        answer = await client.thread(listed.topic_id, page)
        posts += [p for p in answer.posts if p.number > stored]
        if len(answer.posts) < PAGE:
            break
        page += 1
    with engine.begin() as conn:
        save_topic(conn, site, listed, posts, time.time())
    return len(posts)
