"""A generated forum: boards, topics, users who rename, posts that quote, link and get edited.

The forum crawlers and the forum analytics need a forum whose every count is known. `Forum(seed,
size)` is one, a pure function of (seed, size, clock): no global random state. Topics start at a
steady pace; each has a fixed number of posts, spread at a fixed step after its first one, so
whether a post exists at the forum's clock is arithmetic, and a post's text, quotes, links and
edits are generated only when read: a 10M-post forum costs a few integers per topic until then.

`advance(seconds)` moves the clock forward: old topics get replies (they are bumped), new topics
start, edits land, users rename. Both emulated APIs serve the same `Forum`: Discourse
(`discourse.py`: boards are categories, raw Markdown and cooked HTML, `reply_to_post_number`) and
the bB XML API (`bbxml.py`: BBCode `[quote=tid,pid,"name"]`). `ground_truth()` counts what
analytics must reproduce from a crawl: posts by user, board, year, day, weekday and hour, quote
and reply pairs, and links, images and videos by domain (those inside quotes do not count, as
potstats2 counted only what a post itself says).
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property, lru_cache

EPOCH = 1_262_304_000
"""2010-01-01T00:00:00Z: the first topic of every forum starts here."""
SPAN = 6 * 365 * 86400
"""A forum of any size reaches its `size` posts about six years after `EPOCH`."""
MEAN_POSTS = 12
"""Mean posts per topic (the first post included)."""
MAX_POSTS = 600
"""A topic's posts are capped here, so post ids never collide (`POST_ID_STRIDE`)."""
POST_ID_STRIDE = 1000
"""A post's id is `topic_index * POST_ID_STRIDE + number`: stable, unique, and ordered per topic."""
MODERATORS = 3
"""Users 1..3 are staff (user 1 the admin); they edit others' posts."""
BOARDS_PER_CATEGORY = 3
LINK, IMAGE, VIDEO = "link", "image", "video"

_MASK = (1 << 64) - 1
_WORDS = [
    "alpha",
    "bravo",
    "pixel",
    "kaffee",
    "forum",
    "thread",
    "zocker",
    "schnitzel",
    "retro",
    "basteln",
    "grafik",
    "treiber",
    "monitor",
    "kabel",
    "linux",
    "server",
    "rätsel",
    "würfel",
    "gemüse",
    "sommer",
    "winter",
    "nacht",
    "mond",
    "bahn",
    "auto",
    "kamera",
    "objektiv",
    "musik",
    "gitarre",
    "film",
    "serie",
    "buch",
    "spiel",
    "level",
    "boss",
    "speedrun",
    "patch",
    "update",
]
_NAME_HEADS = [
    "Kai",
    "Mira",
    "Olli",
    "Tess",
    "Jo",
    "Ben",
    "Lu",
    "Fynn",
    "Ida",
    "Max",
    "Nia",
    "Rex",
    "Uwe",
    "Zoe",
    "Pit",
    "Eda",
]
_NAME_TAILS = ["fuchs", "wolf", "bär", "dachs", "luchs", "otter", "igel", "falke"]
_LINK_DOMAINS = ("www.heise.example", "de.wikipedia.example", "news.example.org", "shop.example")
_IMAGE_DOMAINS = ("i.imgur.example", "abload.example", "pics.example.net")
_VIDEO_DOMAINS = ("www.youtube.example", "vimeo.example")


def _mix(*parts: int) -> int:
    """A 64-bit hash of integers (splitmix64 rounds): every generated choice comes from here."""
    z = 0x6A09E667F3BCC909
    for part in parts:
        z = (z ^ (part & _MASK)) + 0x9E3779B97F4A7C15 & _MASK
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9 & _MASK
        z = (z ^ (z >> 27)) * 0x94D049BB133111EB & _MASK
        z ^= z >> 31
    return z


def _unit(h: int) -> float:
    return h / 2.0**64


@dataclass(frozen=True)
class Category:
    id: int
    name: str
    description: str


@dataclass(frozen=True)
class Board:
    id: int
    category_id: int
    name: str
    slug: str
    description: str


@dataclass(frozen=True)
class Topic:
    """A topic at the forum's clock: `count` of its `total` posts exist so far."""

    index: int
    id: int
    board_id: int
    title: str
    created: int
    step: int
    total: int
    count: int
    last_posted: int

    @property
    def slug(self) -> str:
        return self.title.lower().replace(" ", "-")


@dataclass(frozen=True)
class Link:
    """A link in a post (`url`: absolute, or a path on the forum's own `host`) and what it
    counts as (`domain`, `kind`)."""

    url: str
    domain: str
    kind: str


@dataclass(frozen=True)
class Quote:
    """A quote of post `number` of the same topic, by `poster_id`, named as at quoting time."""

    topic_id: int
    post_id: int
    number: int
    poster_id: int
    name: str


@dataclass(frozen=True)
class Edit:
    at: int
    editor_id: int


@dataclass(frozen=True)
class Post:
    """A post at the forum's clock: its parts, of which each dialect renders its own text."""

    id: int
    topic_id: int
    number: int  # 1-based position in its topic
    user_id: int
    created: int
    words: tuple[str, ...]
    quotes: tuple[Quote, ...]
    links: tuple[Link, ...]
    reply_to: int | None  # the post number answered (Discourse's reply_to_post_number)
    edits: tuple[Edit, ...]  # those made by the forum's clock

    @property
    def updated(self) -> int:
        return self.edits[-1].at if self.edits else self.created


@dataclass
class GroundTruth:
    """What a complete crawl at the forum's clock must find, counted by the generator."""

    posts: int = 0
    topics: int = 0
    edited_posts: int = 0
    edits: int = 0
    posts_by_user: Counter[int] = field(default_factory=Counter)
    topics_by_user: Counter[int] = field(default_factory=Counter)
    posts_by_board: Counter[int] = field(default_factory=Counter)
    topics_by_board: Counter[int] = field(default_factory=Counter)
    posts_by_year: Counter[int] = field(default_factory=Counter)
    posts_by_day: Counter[str] = field(default_factory=Counter)  # "YYYY-MM-DD", UTC
    posts_by_weekday: Counter[int] = field(default_factory=Counter)  # ISO 1 (Monday)..7
    posts_by_hour: Counter[int] = field(default_factory=Counter)  # 0..23, UTC
    quote_pairs: Counter[tuple[int, int]] = field(default_factory=Counter)  # (quoter, quoted)
    reply_pairs: Counter[tuple[int, int]] = field(default_factory=Counter)  # (replier, replied)
    links: Counter[tuple[str, str]] = field(default_factory=Counter)  # (domain, kind)
    user_links: Counter[tuple[int, str, str]] = field(default_factory=Counter)
    usernames: dict[int, str] = field(default_factory=dict)  # current names of posters


class Forum:
    """A deterministic forum of about `size` posts by its initial clock (fewer in small forums,
    whose long topics are still growing); see the module doc."""

    def __init__(self, seed: int = 0, size: int = 2000, *, host: str = "forum.example") -> None:
        if size < 1:
            raise ValueError(f"a forum needs at least one post, not {size}")
        self.seed = seed
        self.size = size
        self.host = host
        topics = max(1, math.ceil(size / MEAN_POSTS))
        self.topic_gap = max(60, SPAN // topics)
        self.user_count = max(8, size // 40)
        self.now = EPOCH + topics * self.topic_gap
        self._sorted: tuple[int, list[Topic]] | None = None

    # -- the clock --------------------------------------------------------------------------

    def advance(self, seconds: int) -> None:
        """Move the forum's clock forward: replies, new topics, edits and renames appear."""
        if seconds < 0:
            raise ValueError("the forum's clock only moves forward")
        self.now += seconds

    # -- structure --------------------------------------------------------------------------

    @cached_property
    def categories(self) -> tuple[Category, ...]:
        count = 2 + self.size // 200_000
        return tuple(
            Category(i, f"Kategorie {i}", f"Alles über {_WORDS[i % len(_WORDS)]}")
            for i in range(1, count + 1)
        )

    @cached_property
    def boards(self) -> tuple[Board, ...]:
        boards = []
        for category in self.categories:
            for n in range(BOARDS_PER_CATEGORY):
                bid = (category.id - 1) * BOARDS_PER_CATEGORY + n + 1
                word = _WORDS[_mix(self.seed, 1, bid) % len(_WORDS)]
                name, slug = f"{word.title()} {bid}", f"{word}-{bid}"
                boards.append(Board(bid, category.id, name, slug, f"Board {bid}"))
        return tuple(boards)

    def board(self, board_id: int) -> Board | None:
        return next((b for b in self.boards if b.id == board_id), None)

    def topic_count(self) -> int:
        """Topics started by the clock (topic i starts in [i, i+1) topic gaps after EPOCH)."""
        i = (self.now - EPOCH) // self.topic_gap
        return int(i + 1 if self._created(i) <= self.now else i)

    def _created(self, index: int) -> int:
        return EPOCH + index * self.topic_gap + _mix(self.seed, 2, index) % self.topic_gap

    def _post_time(self, index: int, created: int, step: int, k: int) -> int:
        """Post k (0-based) of a topic: in [k, k+1) steps after its start, so times increase."""
        return created + k * step + (_mix(self.seed, 3, index, k) % step if k else 0)

    def topic(self, index: int) -> Topic | None:
        """Topic `index` (0-based; its id is index + 1) as of the clock, None if not started."""
        if index < 0 or index >= self.topic_count():
            return None
        h = _mix(self.seed, 4, index)
        # a Pareto tail (alpha 2, mean about MEAN_POSTS): most topics short, a few long
        total = min(MAX_POSTS, 1 + int((MEAN_POSTS - 1) * ((1.0 - _unit(h)) ** -0.5 - 1)))
        # replies come at a quarter to three topic gaps apart: a dozen topics are alive at once
        step = max(60, int(self.topic_gap * (0.25 + 2.75 * _unit(_mix(self.seed, 5, index)))))
        created = self._created(index)
        k = min(total - 1, (self.now - created) // step)
        if self._post_time(index, created, step, k) > self.now:
            k -= 1
        board = self.boards[int(len(self.boards) * _unit(_mix(self.seed, 6, index)) ** 1.5)]
        title = " ".join(
            _WORDS[_mix(self.seed, 7, index, w) % len(_WORDS)] for w in range(2 + h % 4)
        ).capitalize()
        return Topic(
            index=index,
            id=index + 1,
            board_id=board.id,
            title=f"{title} {index + 1}",
            created=created,
            step=step,
            total=total,
            count=k + 1,
            last_posted=self._post_time(index, created, step, k),
        )

    def topic_by_id(self, topic_id: int) -> Topic | None:
        return self.topic(topic_id - 1)

    def topics_by_activity(self, board_id: int | None = None) -> list[Topic]:
        """Every started topic, most recently posted in first (of one board if given)."""
        if self._sorted is None or self._sorted[0] != self.now:
            topics = [t for i in range(self.topic_count()) if (t := self.topic(i))]
            topics.sort(key=lambda t: (-t.last_posted, -t.id))
            self._sorted = (self.now, topics)
        topics = self._sorted[1]
        return topics if board_id is None else [t for t in topics if t.board_id == board_id]

    # -- users ------------------------------------------------------------------------------

    def _poster(self, index: int, k: int) -> int:
        return 1 + int(self.user_count * _unit(_mix(self.seed, 8, index, k)) ** 2)

    def _rename_time(self, user_id: int) -> int | None:
        """When the user renames (a fifth of them do, once), or None."""
        h = _mix(self.seed, 9, user_id)
        if h % 5:
            return None
        return EPOCH + int(_unit(_mix(self.seed, 10, user_id)) * SPAN * 1.2)

    def username(self, user_id: int, at: int | None = None) -> str:
        """The user's name at moment `at` (default the clock): renamed users change theirs."""
        at = self.now if at is None else at
        head = _NAME_HEADS[_mix(self.seed, 11, user_id) % len(_NAME_HEADS)]
        tail = _NAME_TAILS[_mix(self.seed, 12, user_id) % len(_NAME_TAILS)]
        renamed = self._rename_time(user_id)
        if renamed is not None and at >= renamed:
            return f"{tail.capitalize()}{head}{user_id}"
        return f"{head}{tail}{user_id}"

    def user_group(self, user_id: int) -> int:
        """bB group ids as potstats2 read them: 1 admin, 6 moderator, 3 member."""
        return 1 if user_id == 1 else 6 if user_id <= MODERATORS else 3

    # -- posts ------------------------------------------------------------------------------

    def post_id(self, topic: Topic, number: int) -> int:
        return topic.index * POST_ID_STRIDE + number

    def post_by_id(self, post_id: int) -> Post | None:
        index, number = divmod(post_id, POST_ID_STRIDE)
        topic = self.topic(index)
        return self.post(topic, number) if topic else None

    def post(self, topic: Topic, number: int) -> Post | None:
        """Post `number` (1-based) of `topic` as of the clock, None if not yet written."""
        if number < 1 or number > topic.count:
            return None
        index, k = topic.index, number - 1
        created = self._post_time(index, topic.created, topic.step, k)
        user_id = self._poster(index, k)
        h = _mix(self.seed, 13, index, k)
        words = tuple(
            _WORDS[_mix(self.seed, 14, index, k, w) % len(_WORDS)] for w in range(3 + h % 25)
        )
        reply_to = None
        quotes: list[Quote] = []
        if k and h % 10 < 4:  # four in ten replies answer an earlier post of the topic
            target = 1 + _mix(self.seed, 15, index, k) % k
            reply_to = target
            if h % 10 < 3:  # and most of those quote it
                quotes.append(self._quote(topic, target, created))
        if k > 2 and (h >> 8) % 20 == 0:  # a few quote a second post, without answering it
            quotes.append(self._quote(topic, 1 + (h >> 16) % k, created))
        links = tuple(self._links(index, k))
        return Post(
            id=self.post_id(topic, number),
            topic_id=topic.id,
            number=number,
            user_id=user_id,
            created=created,
            words=words,
            quotes=tuple(quotes),
            links=links,
            reply_to=reply_to,
            edits=self._edits(index, k, created, user_id),
        )

    def posts(self, topic: Topic) -> list[Post]:
        return [p for n in range(1, topic.count + 1) if (p := self.post(topic, n))]

    def _quote(self, topic: Topic, number: int, at: int) -> Quote:
        poster = self._poster(topic.index, number - 1)
        name = self.username(poster, at)
        return Quote(topic.id, self.post_id(topic, number), number, poster, name)

    def _links(self, index: int, k: int) -> list[Link]:
        links = []
        for n in range(_mix(self.seed, 16, index, k) % 7 // 4 * 2):  # 0 or 2 parts, some posts
            h = _mix(self.seed, 17, index, k, n)
            kind = (LINK, LINK, IMAGE, VIDEO)[h % 4]
            pool = {LINK: _LINK_DOMAINS, IMAGE: _IMAGE_DOMAINS, VIDEO: _VIDEO_DOMAINS}[kind]
            domain = pool[(h >> 8) % len(pool)]
            path = f"{_WORDS[(h >> 16) % len(_WORDS)]}/{(h >> 24) % 1000}"
            if kind == IMAGE:
                path += ".jpg"
            scheme = "https" if (h >> 40) % 2 else "http"
            if kind == LINK and (h >> 44) % 8 == 0:  # a link to another topic, written relative
                links.append(Link(f"/t/{1 + (h >> 48) % (index + 1)}", self.host, LINK))
            else:
                links.append(Link(f"{scheme}://{domain}/{path}", domain, kind))
        return links

    def _edits(self, index: int, k: int, created: int, user_id: int) -> tuple[Edit, ...]:
        h = _mix(self.seed, 18, index, k)
        if h % 10:
            return ()
        edits = []
        at = created
        for n in range(1 + (h >> 8) % 3):
            at += 60 + _mix(self.seed, 19, index, k, n) % (3 * 86400)
            if at > self.now:
                break
            editor = user_id if (h >> 16 + n) % 4 else 1 + (h >> 24) % MODERATORS
            edits.append(Edit(at, editor))
        return tuple(edits)

    def edit_note(self, post: Post) -> str:
        """The sentence each edit appends, so an edited post's text differs from the original."""
        return "".join(f" (edit {n})" for n in range(1, len(post.edits) + 1))

    # -- the truth --------------------------------------------------------------------------

    def ground_truth(self) -> GroundTruth:
        """Count everything a complete crawl at the clock must find (walks every post)."""
        truth = GroundTruth()
        for i in range(self.topic_count()):
            topic = self.topic(i)
            if topic is None:
                continue
            truth.topics += 1
            truth.topics_by_board[topic.board_id] += 1
            for post in self.posts(topic):
                self._count(truth, topic, post)
            truth.topics_by_user[self._poster(i, 0)] += 1
        truth.usernames = {uid: self.username(uid) for uid in truth.posts_by_user}
        return truth

    def _count(self, truth: GroundTruth, topic: Topic, post: Post) -> None:
        at = _utc(post.created)
        truth.posts += 1
        truth.posts_by_user[post.user_id] += 1
        truth.posts_by_board[topic.board_id] += 1
        truth.posts_by_year[at.year] += 1
        truth.posts_by_day[at.date().isoformat()] += 1
        truth.posts_by_weekday[at.isoweekday()] += 1
        truth.posts_by_hour[at.hour] += 1
        if post.edits:
            truth.edited_posts += 1
            truth.edits += len(post.edits)
        for quote in post.quotes:
            truth.quote_pairs[(post.user_id, quote.poster_id)] += 1
        if post.reply_to is not None:
            truth.reply_pairs[(post.user_id, self._poster(topic.index, post.reply_to - 1))] += 1
        for link in post.links:
            truth.links[(link.domain, link.kind)] += 1
            truth.user_links[(post.user_id, link.domain, link.kind)] += 1


@lru_cache(maxsize=4096)
def _utc(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def iso(epoch: int) -> str:
    """A moment as Discourse writes it: `2016-10-29T14:14:20.000Z`."""
    return _utc(epoch).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class Forums:
    """The emulated forums by name (`/discourse/<name>`, `/bb/<name>`), counting requests.

    Tests and the benchmark read `requests[(api, name)]` to check what a crawl cost (api
    "discourse" or "bbxml"; "discourse 429" counts the requests Discourse's limits refused)."""

    def __init__(
        self,
        forums: dict[str, Forum],
        *,
        rate_limits: bool = True,
        clock: Callable[[], float] = time.monotonic,
        limits: tuple[tuple[float, int, str], ...] | None = None,
    ) -> None:
        self._forums = dict(forums)
        self.rate_limits = rate_limits  # Discourse's per-IP limits (discourse.py)
        self.clock = clock  # what those limits measure time with
        self.limits = limits  # (seconds, most requests, error code); None: Discourse's
        self._lock = threading.Lock()
        self.requests: Counter[tuple[str, str]] = Counter()

    @classmethod
    def default(cls, seed: int = 0, *, rate_limits: bool = True) -> Forums:
        """`main` (2,000 posts) and `tiny` (60), generated only when read."""
        return cls({"main": Forum(seed, 2000), "tiny": Forum(seed, 60)}, rate_limits=rate_limits)

    def get(self, name: str) -> Forum | None:
        return self._forums.get(name)

    def count(self, api: str, name: str) -> None:
        with self._lock:
            self.requests[(api, name)] += 1
