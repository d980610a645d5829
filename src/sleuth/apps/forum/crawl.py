"""Crawling a forum into the forum app's tables, topic by topic, incrementally.

A crawl lists topics most recently bumped first (Discourse's `/latest.json`, a bB board's pages)
and crawls each topic whose stored checkpoint (posts stored, last bump seen) differs from what
the list says; each topic is written with its checkpoint in one transaction, so a killed crawl
loses at most the topic it was writing. The listing stops at the first page that reaches the
previous complete crawl's high-water mark (the newest bump it saw): every topic bumped no later
was stored then, and an unchanged forum costs two requests. The mark moves only when a crawl
ends, so a crawl killed halfway lists as far again the next time.

Discourse: a changed topic costs `/t/{id}.json` (its stream and first 20 posts; for a topic
stored before, `/t/{id}/{n}.json` near its first new post n) and `/t/{id}/posts.json` for the
post ids still missing, 20 a request. bB: a changed thread is read
from the page holding its first post not yet stored to the last page. Edits are caught where a
crawl reads anyway (the rescan window): the stored posts just before a changed Discourse topic's
first new one, the stored posts on a changed bB thread's first page read.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace

from sqlalchemy import Connection, Engine

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


@dataclass
class Listing:
    """A listing in progress: the forum's site id, the board (bB), the newest bump seen."""

    site: int
    board_id: int | None = None
    newest: float | None = None

    def saw(self, topics: list[ForumTopic]) -> None:
        bumps = [t.last_posted_at for t in topics if t.last_posted_at is not None]
        if bumps:
            self.newest = max([*bumps, self.newest or bumps[0]])

    def finish(self, engine: Engine) -> None:
        """Every changed topic listed is stored: move the high-water mark."""
        if self.newest is not None:
            with engine.begin() as conn:
                set_high_water(conn, self.site, self.newest, self.board_id)


async def discourse_listing(engine: Engine, client: DiscourseClient) -> Listing:
    """Save the forum's boards and open its listing."""
    with engine.begin() as conn:
        site = site_id(conn, "discourse", client.base, time.time())
    boards = await client.boards()
    with engine.begin() as conn:
        save_boards(conn, site, [], boards)
    return Listing(site)


async def discourse_changes(
    engine: Engine, client: DiscourseClient, listing: Listing
) -> AsyncIterator[list[ForumTopic]]:
    """The topics to crawl, a page of the list at a time, until the high-water mark."""
    with engine.connect() as conn:
        mark = high_water(conn, listing.site)
    page = 0
    while True:
        answer = await client.latest(page)
        listing.saw(answer.topics)
        with engine.connect() as conn:
            marks = checkpoints(conn, listing.site, [t.topic_id for t in answer.topics])
        yield _changed(answer.topics, marks)
        if not answer.more or _reached(answer.topics, mark):
            return
        page += 1


async def crawl_discourse(engine: Engine, client: DiscourseClient) -> CrawlReport:
    """Crawl the forum's boards and every topic bumped since the last complete crawl, here
    (the `forum.topic` jobs do the same on workers)."""
    listing = await discourse_listing(engine, client)
    report = CrawlReport(listing.site)
    async for topics in discourse_changes(engine, client, listing):
        for topic in topics:
            report.posts += await crawl_discourse_topic(engine, client, listing.site, topic)
            report.topics.append(topic.topic_id)
    listing.finish(engine)
    report.requests = client.requests
    return report


Settle = Callable[[Connection], None]
"""What else commits with a topic (the crawl layer resolving its item)."""


def _nothing(_: Connection) -> None:
    return None


async def crawl_discourse_topic(
    engine: Engine,
    client: DiscourseClient,
    site: int,
    listed: ForumTopic,
    settle: Settle = _nothing,
) -> int:
    """Fetch the topic's posts not yet stored and write them with the topic's checkpoint;
    returns posts written. A topic crawled before is asked for near its first new post, so
    the chunk also holds the few stored posts just before it: their recent edits come free."""
    with engine.connect() as conn:
        known = stored_post_ids(conn, site, listed.topic_id)
    page = await client.topic(listed.topic_id, near=len(known) + 1 if known else None)
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
        settle(conn)
    return len(posts)


async def bb_listing(engine: Engine, client: BbClient, board_id: int) -> Listing:
    """Save the forum's categories and boards and open the board's listing."""
    with engine.begin() as conn:
        site = site_id(conn, "bbxml", client.base, time.time())
    categories, boards = await client.boards()
    if board_id not in {b.board_id for b in boards}:
        raise ValueError(f"{client.base} has no board {board_id}")
    with engine.begin() as conn:
        save_boards(conn, site, categories, boards)
    return Listing(site, board_id)


async def bb_changes(
    engine: Engine, client: BbClient, listing: Listing
) -> AsyncIterator[list[tuple[ForumTopic, int]]]:
    """The board's threads to crawl with the posts stored of each, a page at a time."""
    assert listing.board_id is not None
    with engine.connect() as conn:
        mark = high_water(conn, listing.site, listing.board_id)
    page = 1
    while True:
        answer = await client.board(listing.board_id, page)
        listing.saw(answer.threads)
        with engine.connect() as conn:
            marks = checkpoints(conn, listing.site, [t.topic_id for t in answer.threads])
        changed = _changed(answer.threads, marks)
        yield [(t, marks.get(t.topic_id, (0, None))[0]) for t in changed]
        if len(answer.threads) < PAGE or _reached(answer.threads, mark):
            return
        page += 1


async def crawl_bb_board(engine: Engine, client: BbClient, board_id: int) -> CrawlReport:
    """Crawl one bB board: its threads bumped since the board's last complete crawl, here."""
    listing = await bb_listing(engine, client, board_id)
    report = CrawlReport(listing.site)
    async for threads in bb_changes(engine, client, listing):
        for thread, stored in threads:
            report.posts += await crawl_bb_thread(engine, client, listing.site, thread, stored)
            report.topics.append(thread.topic_id)
    listing.finish(engine)
    report.requests = client.requests
    return report


async def crawl_bb_thread(
    engine: Engine,
    client: BbClient,
    site: int,
    listed: ForumTopic,
    stored: int,
    settle: Settle = _nothing,
) -> int:
    """Read the thread from the page holding its first post not yet stored to its end, and
    write the posts of those pages with the thread's checkpoint; returns posts written."""
    posts: list[ForumPost] = []
    page = stored // PAGE + 1
    while True:
        answer = await client.thread(listed.topic_id, page)
        posts += answer.posts  # the older posts of the first page too: their edits come free
        if len(answer.posts) < PAGE:
            break
        page += 1
    with engine.begin() as conn:
        save_topic(conn, site, listed, posts, time.time())
        settle(conn)
    return len(posts)
