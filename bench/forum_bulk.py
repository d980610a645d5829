"""A bulk loader for the forum benchmark: a generated bB forum of millions of posts written
straight into the forum app's tables with PostgreSQL's COPY, as a complete crawl would leave
them (an in-process crawl runs at about 170 posts/s, so a 10M-post forum needs this).

The forum has the emulator's shape (`sleuth.emulator.forums`: categories of three boards, topics
of Pareto-tailed length (mean about 12 posts, at most 600), posters drawn by a power law, four
in ten replies quoting an earlier post of the topic, a few a second one, two links in some posts
(links, images and videos by domain), a tenth of the posts edited), drawn with numpy a chunk of
topics at a time so memory stays bounded, over `years` years from 2006, with an hour-of-day and
weekday pattern (a monotone warp of each week, so a topic's posts stay in order). The emulator's
own generator costs about 90 us a post in Python, 15 minutes for 10M before any text is written.

What is written is what `records.save_topic` writes for a first crawl of the bB XML API
(`sources/bbxml.py`: raw BBCode, no cooked HTML, no reply numbers): sites, categories, boards,
users with their one name seen, topics with their checkpoint, posts, edits, quotes and links as
`markup.read_bbcode` reads them from the raw text (checked on a sample: `check_markup`), every
(board, day, user) key in `forum_dirty` and every topic in `forum_dirty_topics`; the schema is
the app's migrations (`Services.engine`). `Truth` is what the generator counted: posts by day,
weekday, year and user.
"""

from __future__ import annotations

import hashlib
import io
import math
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy import Engine

from sleuth.apps.forum.markup import read_bbcode
from sleuth.apps.forum.models import forum_topics
from sleuth.apps.forum.records import save_topic
from sleuth.emulator.forums import (
    _IMAGE_DOMAINS,
    _LINK_DOMAINS,
    _NAME_HEADS,
    _NAME_TAILS,
    _VIDEO_DOMAINS,
    _WORDS,
    BOARDS_PER_CATEGORY,
    MAX_POSTS,
    MEAN_POSTS,
    MODERATORS,
)
from sleuth.sources.forumtypes import ForumPost, ForumTopic, ForumUser

DAY, WEEK = 86400, 7 * 86400
START = 1_136_073_600  # 2006-01-01T00:00:00Z
MONDAY = 4 * DAY  # 1970-01-05, a Monday: weeks are warped from here
BASE = "https://forum.example/bb/"
CHUNK_TOPICS = 20_000
# 00..23 UTC: evenings busy, nights quiet
_NIGHT_TO_NOON = (3, 2, 1.2, 0.8, 0.5, 0.5, 0.8, 1.5, 2.5, 3.5, 4, 4.5)
_NOON_TO_NIGHT = (5, 5, 4.5, 4.5, 5, 5.5, 6, 7, 8, 8, 6.5, 4.5)
HOUR_WEIGHTS = np.array([*_NIGHT_TO_NOON, *_NOON_TO_NIGHT])
WEEKDAY_WEIGHTS = np.array([1.1, 1.15, 1.1, 1.05, 0.95, 0.8, 0.85])  # Monday .. Sunday
LINK_POOLS = (
    ("link", _LINK_DOMAINS),
    ("link", _LINK_DOMAINS),
    ("image", _IMAGE_DOMAINS),
    ("video", _VIDEO_DOMAINS),
)
PHRASES = 4096
NULL = "\\N"  # COPY's text format


def _week_warp() -> np.ndarray:
    """The cumulative share of a week's posts at each of its 168 hour boundaries."""
    weights = (WEEKDAY_WEIGHTS[:, None] * HOUR_WEIGHTS[None, :]).ravel()
    return np.concatenate([[0.0], np.cumsum(weights) / weights.sum()])


WARP = _week_warp()


def warp(times: np.ndarray) -> np.ndarray:
    """Each time moved within its week so that the week's hours fill as the weights say (an
    even share of the week mapped through the inverse of the weights' cumulative share):
    monotone, so the order of a topic's posts is kept."""
    week, into = np.divmod(times - MONDAY, WEEK)
    return MONDAY + week * WEEK + np.interp(into / WEEK, WARP, np.linspace(0.0, WEEK, 169))


def username(user_id: int) -> str:
    return (
        f"{_NAME_HEADS[user_id % len(_NAME_HEADS)]}"
        f"{_NAME_TAILS[(user_id // 16) % len(_NAME_TAILS)]}{user_id}"
    )


@dataclass
class Truth:
    """What the generator wrote, counted as it wrote it."""

    day0: int
    days: np.ndarray  # posts per day from day0
    users: np.ndarray  # posts per user id (index = id)
    posts: int = 0
    topics: int = 0

    def add(self, day: np.ndarray, user: np.ndarray) -> None:
        self.days += np.bincount(day - self.day0, minlength=len(self.days))[: len(self.days)]
        self.users += np.bincount(user, minlength=len(self.users))[: len(self.users)]
        self.posts += len(day)

    def by_day(self) -> dict[str, int]:
        return {
            datetime.fromtimestamp((self.day0 + i) * DAY, UTC).date().isoformat(): int(n)
            for i, n in enumerate(self.days)
            if n
        }

    def by_weekday(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for i, n in enumerate(self.days):
            if n:
                wd = str(datetime.fromtimestamp((self.day0 + i) * DAY, UTC).isoweekday())
                out[wd] = out.get(wd, 0) + int(n)
        return out

    def by_year(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for i, n in enumerate(self.days):
            if n:
                year = str(datetime.fromtimestamp((self.day0 + i) * DAY, UTC).year)
                out[year] = out.get(year, 0) + int(n)
        return out


@dataclass
class Spec:
    posts: int
    users: int
    years: int = 20
    seed: int = 3

    @property
    def end(self) -> int:
        return START + int(self.years * 365.25 * DAY)


@dataclass
class Chunk:
    """A chunk of topics and their posts (arrays aligned per post), with the rows' text."""

    topic_rows: list[str] = field(default_factory=list)
    posts: io.StringIO = field(default_factory=io.StringIO)
    edits: io.StringIO = field(default_factory=io.StringIO)
    quotes: io.StringIO = field(default_factory=io.StringIO)
    links: io.StringIO = field(default_factory=io.StringIO)
    samples: list[tuple[int, str, set[tuple[Any, ...]], set[tuple[Any, ...]]]] = field(
        default_factory=list
    )


class BulkForum:
    """The generated forum: `sizes` of every topic fixed up front (a few MB for 10M posts),
    the rest drawn per chunk of topics from (seed, chunk)."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        rng = np.random.default_rng([spec.seed, 0])
        estimate = math.ceil(spec.posts / MEAN_POSTS * 1.2) + 10
        u = rng.random(estimate)
        sizes = np.minimum(
            MAX_POSTS, 1 + ((MEAN_POSTS - 1) * ((1.0 - u) ** -0.5 - 1)).astype(np.int64)
        )
        total = np.cumsum(sizes)
        count = int(np.searchsorted(total, spec.posts)) + 1
        sizes = sizes[:count].copy()
        sizes[-1] -= int(total[count - 1]) - spec.posts
        self.sizes = sizes
        self.first_post = np.concatenate([[0], np.cumsum(sizes)[:-1]])  # post ids from 1
        self.gap = (spec.end - START - 30 * DAY) / count
        self.categories = 2 + spec.posts // 200_000
        self.boards = self.categories * BOARDS_PER_CATEGORY
        rng = np.random.default_rng([spec.seed, 1])
        self.phrases = [
            " ".join(_WORDS[w] for w in rng.integers(0, len(_WORDS), 3 + n % 10))
            for n in range(PHRASES)
        ]
        self.names = [""] + [username(u) for u in range(1, spec.users + 1)]

    @property
    def topics(self) -> int:
        return len(self.sizes)

    def chunk(self, index: int, site: int, now: float, sample: int = 0) -> tuple[Chunk, Any]:
        """Topics [index * CHUNK_TOPICS, ...) as COPY text; and their per-post arrays."""
        spec = self.spec
        lo, hi = index * CHUNK_TOPICS, min(self.topics, (index + 1) * CHUNK_TOPICS)
        rng = np.random.default_rng([spec.seed, 2, index])
        tids = np.arange(lo, hi) + 1
        sizes = self.sizes[lo:hi]
        n = int(sizes.sum())
        created = START + (tids - 1 + rng.random(len(tids))) * self.gap
        # replies a quarter to three topic gaps apart, a tail of slow topics living for months
        step = (
            self.gap * (0.25 + 2.75 * rng.random(len(tids))) * np.exp(rng.normal(0, 1.2, len(tids)))
        )
        step = np.maximum(60.0, step)
        topic_of = np.repeat(np.arange(hi - lo), sizes)
        k = np.arange(n) - np.repeat(np.cumsum(sizes) - sizes, sizes)  # 0-based number
        raw_t = created[topic_of] + (k + np.where(k > 0, rng.random(n), 0.0)) * step[topic_of]
        raw_t = np.minimum(raw_t, spec.end - 1 - (sizes[topic_of] - k))  # a topic ends in time
        times = np.minimum(np.floor(warp(raw_t)), spec.end - 1).astype(np.int64)
        post_ids = self.first_post[lo:hi][topic_of] + k + 1
        user = 1 + (spec.users * rng.random(n) ** 2).astype(np.int64)
        user = np.minimum(user, spec.users)
        board = 1 + (self.boards * rng.random(len(tids)) ** 1.5).astype(np.int64)
        # quotes: four in ten replies answer an earlier post (three in ten quote it)
        h = rng.random(n)
        q1 = (k > 0) & (h < 0.3)
        q1_target = np.where(k > 0, (rng.random(n) * np.maximum(k, 1)).astype(np.int64), 0)
        q2 = (k > 2) & (rng.random(n) < 0.05)
        q2_target = (rng.random(n) * np.maximum(k, 1)).astype(np.int64)
        q2 &= ~q1 | (q2_target != q1_target)
        has_links = rng.random(n) < 2 / 7
        link_kind = rng.integers(0, 4, (n, 2))
        link_dom = rng.integers(0, 12, (n, 2))
        link_word = rng.integers(0, len(_WORDS), (n, 2))
        link_num = rng.integers(0, 1000, (n, 2))
        edited = rng.random(n) < 0.1
        edit_count = np.where(edited, 1 + rng.integers(0, 3, n), 0)
        edit_at = times + 60 + rng.integers(0, 3 * DAY, n)
        edit_at = np.minimum(edit_at, int(now) - 1)
        editor = np.where(rng.random(n) < 0.75, user, 1 + rng.integers(0, MODERATORS, n))
        phrase = rng.integers(0, PHRASES, n)
        first_idx = np.cumsum(sizes) - sizes

        out = Chunk()
        names, phrases = self.names, self.phrases
        tl, pl, ul, kl = tids.tolist(), post_ids.tolist(), user.tolist(), k.tolist()
        timel, phl = times.tolist(), phrase.tolist()
        topic_l = topic_of.tolist()
        first_l = first_idx.tolist()
        q1l, q1t, q2l, q2t = q1.tolist(), q1_target.tolist(), q2.tolist(), q2_target.tolist()
        hl, lk, ld, lw, ln = (
            has_links.tolist(),
            link_kind.tolist(),
            link_dom.tolist(),
            link_word.tolist(),
            link_num.tolist(),
        )
        ec, ea, ed = edit_count.tolist(), edit_at.tolist(), editor.tolist()
        wp, wq, we, wl = out.posts.write, out.quotes.write, out.edits.write, out.links.write
        picks = set(rng.choice(n, min(sample, n), replace=False).tolist()) if sample else set()
        for i in range(n):
            t = topic_l[i]
            tid, pid, uid = tl[t], pl[i], ul[i]
            parts = []
            quotes: set[tuple[Any, ...]] = set()
            for on, target in ((q1l[i], q1t[i]), (q2l[i], q2t[i])):
                if on:
                    j = first_l[t] + target
                    qname = names[ul[j]]
                    parts.append(f'[quote={tid},{pl[j]},"{qname}"][/quote] ')
                    wq(f"{site}\t{pid}\tquote\t{tid}\t{pl[j]}\t0\t{qname}\t1\n")
                    quotes.add(("quote", tid, pl[j], 0, qname, 1))
            words = phrases[phl[i]]
            parts.append(words)
            links: set[tuple[Any, ...]] = set()
            if hl[i]:
                for m in (0, 1):
                    kind, pool = LINK_POOLS[lk[i][m]]
                    domain = pool[ld[i][m] % len(pool)]
                    url = f"https://{domain}/{_WORDS[lw[i][m]]}/{ln[i][m]}/{m}"
                    if kind == "image":
                        url += ".jpg"
                        parts.append(f" [img]{url}[/img]")
                    elif kind == "video":
                        parts.append(f" [video]{url}[/video]")
                    else:
                        parts.append(f" [url={url}]{words[:5]}[/url]")
                    key = hashlib.sha1(url.encode()).hexdigest()
                    wl(f"{site}\t{pid}\t{key}\t{kind}\t{url}\t{domain}\t1\n")
                    links.add((key, kind, url, domain, 1))
            count = ec[i]
            if count:
                parts.append("".join(f" (edit {e})" for e in range(1, count + 1)))
                wp(
                    f"{site}\t{pid}\t{tid}\t{kl[i] + 1}\t{uid}\t{timel[i]}\t{ea[i]}\t{count}\t"
                    f"{ed[i]}\t{ea[i]}\t\\N\t\t{''.join(parts)}\t\\N\n"
                )
                we(f"{site}\t{pid}\t{count}\t{ea[i]}\t{ed[i]}\t{now}\n")
            else:
                wp(
                    f"{site}\t{pid}\t{tid}\t{kl[i] + 1}\t{uid}\t{timel[i]}\t{timel[i]}\t0\t"
                    f"\\N\t\\N\t\\N\t\t{''.join(parts)}\t\\N\n"
                )
            if i in picks:
                out.samples.append((pid, "".join(parts), quotes, links))
        last_idx = first_idx + sizes - 1
        for t in range(hi - lo):
            f, last = int(first_idx[t]), int(last_idx[t])
            words = phrases[int(phrase[f])][:60]
            out.topic_rows.append(
                f"{site}\t{tl[t]}\t{int(board[t])}\t{words} {tl[t]}\t\t{tl[t]}\t{ul[f]}\t"
                f"{timel[f]}\t{timel[last]}\t{int(sizes[t])}\tf\tf\t{int(sizes[t]) * 7}\t"
                f"{int(sizes[t])}\t{timel[last]}\t{now}\n"
            )
        arrays = {
            "day": times // DAY,
            "user": user,
            "board": board[topic_of],
            "topic_board": board,
            "sizes": sizes,
            "last": times[last_idx],
        }
        return out, arrays


def check_markup(samples: list[tuple[int, str, set[Any], set[Any]]]) -> int:
    """The quotes and links the loader wrote for sampled posts are those `read_bbcode` reads
    from their raw text (what `save_topic` would have written); how many posts were checked."""
    for pid, raw, quotes, links in samples:
        markup = read_bbcode(raw, BASE)
        read_quotes = {
            ("quote", q.topic_id, q.post_id or 0, q.number or 0, q.name[:255], 1)
            for q in markup.quotes
        }
        read_links = {
            (hashlib.sha1(link.url.encode()).hexdigest(), link.kind, link.url, link.domain, c)
            for link, c in markup.links.items()
        }
        if read_quotes != quotes or read_links != links:
            raise AssertionError(
                f"post {pid}: wrote {quotes} {links}, read {read_quotes} {read_links}"
            )
    return len(samples)


POST_COLUMNS = (
    "site_id, post_id, topic_id, number, user_id, created_at, updated_at, edit_count, "
    "last_edit_user_id, last_edit_at, reply_to_number, title, raw, cooked"
)
TOPIC_COLUMNS = (
    "site_id, topic_id, board_id, title, subtitle, slug, user_id, created_at, last_posted_at, "
    "posts_count, closed, pinned, views, crawled_posts, crawled_last_posted_at, crawled_at"
)


@dataclass
class LoadReport:
    site: int
    posts: int
    topics: int
    users: int
    seconds: float
    checked: int
    truth: Truth
    end: int
    stages: dict[str, float] = field(default_factory=dict)


def _copy(cur: Any, table: str, columns: str, text: str) -> None:
    with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        copy.write(text)


def load(engine: Engine, spec: Spec, progress: Any = print) -> LoadReport:
    """Generate the forum and COPY it in (one transaction per chunk of topics, then the keys)."""
    started = time.monotonic()
    forum = BulkForum(spec)
    now = float(spec.end)
    # the warp moves a time within its week: the first days may fall before START
    truth = Truth(
        START // DAY - 7,
        np.zeros((spec.end - START) // DAY + 16, np.int64),
        np.zeros(spec.users + 1, np.int64),
    )
    stages: dict[str, float] = {"generate": 0.0, "copy": 0.0}
    with engine.begin() as conn:
        site = int(
            conn.execute(
                sa.text(
                    "INSERT INTO forum_sites (kind, url, first_crawled, last_crawled) "
                    "VALUES ('bbxml', :url, :now, :now) RETURNING id"
                ),
                {"url": BASE, "now": now},
            ).scalar_one()
        )
        categories = "".join(
            f"{site}\t{c}\tKategorie {c}\tAlles über {_WORDS[c % len(_WORDS)]}\n"
            for c in range(1, forum.categories + 1)
        )
        cur = conn.connection.driver_connection.cursor()
        _copy(cur, "forum_categories", "site_id, category_id, name, description", categories)
    board_topics = np.zeros(forum.boards + 1, np.int64)
    board_posts = np.zeros(forum.boards + 1, np.int64)
    board_last = np.zeros(forum.boards + 1, np.float64)
    checked = 0
    chunks = math.ceil(forum.topics / CHUNK_TOPICS)
    for index in range(chunks):
        t0 = time.monotonic()
        out, arrays = forum.chunk(index, site, now, sample=50)
        t1 = time.monotonic()
        checked += check_markup(out.samples)
        with engine.begin() as conn:
            cur = conn.connection.driver_connection.cursor()
            _copy(cur, "forum_topics", TOPIC_COLUMNS, "".join(out.topic_rows))
            _copy(cur, "forum_posts", POST_COLUMNS, out.posts.getvalue())
            _copy(
                cur,
                "forum_edits",
                "site_id, post_id, edit_count, edited_at, editor_id, seen_at",
                out.edits.getvalue(),
            )
            _copy(
                cur,
                "forum_quotes",
                "site_id, post_id, kind, target_topic_id, target_post_id, target_number, "
                "quoted_name, count",
                out.quotes.getvalue(),
            )
            _copy(
                cur,
                "forum_links",
                "site_id, post_id, url_key, kind, url, domain, count",
                out.links.getvalue(),
            )
        stages["generate"] += t1 - t0
        stages["copy"] += time.monotonic() - t1
        truth.add(arrays["day"], arrays["user"])
        truth.topics += len(arrays["sizes"])
        np.add.at(board_topics, arrays["topic_board"], 1)
        np.add.at(board_posts, arrays["topic_board"], arrays["sizes"])
        np.maximum.at(board_last, arrays["topic_board"], arrays["last"].astype(np.float64))
        if progress and (index % 10 == 0 or index == chunks - 1):
            progress(
                f"  chunk {index + 1}/{chunks}: {truth.posts} posts, "
                f"{time.monotonic() - started:.0f} s"
            )
    t0 = time.monotonic()
    with engine.begin() as conn:
        cur = conn.connection.driver_connection.cursor()
        boards = "".join(
            f"{site}\t{b}\t{1 + (b - 1) // BOARDS_PER_CATEGORY}\t"
            f"{_WORDS[b % len(_WORDS)].title()} {b}\t{_WORDS[b % len(_WORDS)]}-{b}\tBoard {b}\t"
            f"{int(board_topics[b])}\t{int(board_posts[b])}\t"
            f"{board_last[b] if board_topics[b] else NULL}\n"
            for b in range(1, forum.boards + 1)
        )
        _copy(
            cur,
            "forum_boards",
            "site_id, board_id, category_id, name, slug, description, topic_count, "
            "post_count, high_water",
            boards,
        )
        posters = np.nonzero(truth.users)[0].tolist()
        editors = set(range(1, MODERATORS + 1))
        ids = sorted(set(posters) | editors)
        users = "".join(
            f"{site}\t{u}\t{forum.names[u]}\t{1 if u == 1 else 6 if u <= MODERATORS else 3}\t"
            f"{now}\t{now}\n"
            for u in ids
        )
        _copy(cur, "forum_users", "site_id, user_id, name, group_id, first_seen, last_seen", users)
        names = "".join(f"{site}\t{u}\t{forum.names[u]}\t{now}\t{now}\n" for u in ids)
        _copy(cur, "forum_user_names", "site_id, user_id, name, first_seen, last_seen", names)
    stages["users_boards"] = time.monotonic() - t0
    t0 = time.monotonic()
    with engine.begin() as conn:  # the keys save_topic marks: every post's, every topic
        mark = secrets.randbits(62)
        conn.execute(
            sa.text(
                "INSERT INTO forum_dirty (site_id, board_id, day, user_id, mark) "
                "SELECT DISTINCT p.site_id, t.board_id, floor(p.created_at / 86400)::int, "
                "p.user_id, :mark FROM forum_posts p JOIN forum_topics t "
                "ON t.site_id = p.site_id AND t.topic_id = p.topic_id WHERE p.site_id = :site"
            ),
            {"mark": mark, "site": site},
        )
        conn.execute(
            sa.text(
                "INSERT INTO forum_dirty_topics (site_id, topic_id, mark) "
                "SELECT site_id, topic_id, :mark FROM forum_topics WHERE site_id = :site"
            ),
            {"mark": mark, "site": site},
        )
    stages["dirty_keys"] = time.monotonic() - t0
    t0 = time.monotonic()
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(sa.text("ANALYZE"))
    stages["analyze"] = time.monotonic() - t0
    return LoadReport(
        site=site,
        posts=truth.posts,
        topics=truth.topics,
        users=len(ids),
        seconds=time.monotonic() - started,
        checked=checked,
        truth=truth,
        end=spec.end,
        stages=stages,
    )


def add_posts(
    engine: Engine, report: LoadReport, posts: int, seed: int = 4
) -> tuple[int, int, float]:
    """About `posts` new posts through the crawler's own writes (`records.save_topic`, a
    transaction per topic as a crawl commits them): replies to the most recently posted
    topics and new topics, a day after the forum's end. Counted into the truth; returns
    (posts, topics bumped or new, seconds)."""
    rng = np.random.default_rng([seed])
    started = time.monotonic()
    t = forum_topics.c
    with engine.connect() as conn:
        recent = conn.execute(
            sa.select(t.topic_id, t.board_id, t.title, t.user_id, t.created_at, t.posts_count)
            .where(t.site_id == report.site)
            .order_by(t.last_posted_at.desc())
            .limit(max(1, posts // 20))
        ).all()
        next_post = (
            int(conn.execute(sa.text("SELECT max(post_id) FROM forum_posts")).scalar_one()) + 1
        )
        next_topic = (
            int(conn.execute(sa.text("SELECT max(topic_id) FROM forum_topics")).scalar_one()) + 1
        )
        boards = int(conn.execute(sa.text("SELECT max(board_id) FROM forum_boards")).scalar_one())
    users = report.truth.users
    spec_users = len(users) - 1
    clock = float(report.end + DAY)
    written, topics = 0, 0
    plan: list[tuple[Any, int]] = [(r, int(rng.integers(1, 8))) for r in recent]
    half = sum(n for _, n in plan)
    while half + written < posts:  # new topics for the rest
        size = int(rng.integers(1, 25))
        plan.append((None, size))
        half += size
    names = {}
    for row, count in plan:
        if row is None:
            topic_id, board, title, starter = next_topic, int(rng.integers(1, boards + 1)), "", None
            next_topic += 1
            created, first_number = clock, 1
        else:
            topic_id, board, title = int(row.topic_id), int(row.board_id), str(row.title)
            starter, created = row.user_id, float(row.created_at)
            first_number = int(row.posts_count) + 1
        new: list[ForumPost] = []
        for n in range(count):
            uid = min(spec_users, 1 + int(spec_users * rng.random() ** 2))
            name = names.setdefault(uid, username(uid))
            clock += float(rng.integers(1, 30))
            new.append(
                ForumPost(
                    post_id=next_post,
                    topic_id=topic_id,
                    number=first_number + n,
                    user=ForumUser(uid, name, 1 if uid == 1 else 6 if uid <= MODERATORS else 3),
                    created_at=clock,
                    updated_at=clock,
                    edit_count=0,
                    last_edit_user_id=None,
                    last_edit_at=None,
                    reply_to_number=None,
                    title="",
                    raw=f"neu {next_post} [url=https://news.example.org/neu/{next_post}]x[/url]",
                    cooked=None,
                )
            )
            next_post += 1
        if row is None:
            starter, created, title = new[0].user.user_id, new[0].created_at, f"Neu {topic_id}"
        topic = ForumTopic(
            topic_id=topic_id,
            board_id=board,
            title=title,
            subtitle="",
            slug=str(topic_id),
            user_id=starter,
            created_at=created,
            last_posted_at=new[-1].created_at,
            posts_count=first_number + count - 1,
            views=(first_number + count - 1) * 7,
        )
        with engine.begin() as conn:
            save_topic(conn, report.site, topic, new, clock)
        report.truth.add(
            np.array([int(p.created_at // DAY) for p in new]),
            np.array([p.user.user_id for p in new]),
        )
        written += count
        topics += 1
    return written, topics, time.monotonic() - started
