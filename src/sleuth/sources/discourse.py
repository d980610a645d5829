"""Discourse's public JSON API, read anonymously over `sleuth.net.fetcher`.

`forum_base` recognises a forum from any of its URLs (a topic, a category, the front page);
`DiscourseClient` asks that forum for its categories (the boards), the topic list by bump
(`/latest.json`, 30 a page), a topic (`/t/{id}.json`: its first 20 posts and the `stream` of
every post id; `/t/{id}/{number}.json`: the 20 around that post) and posts by id
(`/t/{id}/posts.json?post_ids[]=`, 20 a request), each with its raw Markdown (`include_raw=true`).
The parsers take the documents as the recorded responses in `shared/fixtures/real/discourse/`
have them and refuse anything else with `ForumFormatError`.
Requests are paced below Discourse's default per-IP limits (`profile`, on the host clock all
workers share); a 429 all the same is the fetcher's to wait out: its `Retry-After` blocks the
forum's shared budget.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from sleuth.net.fetcher import Fetcher, SourceProfile
from sleuth.sources.forumtypes import (
    ForumBoard,
    ForumFormatError,
    ForumPost,
    ForumTopic,
    ForumUser,
)

TOPICS_PAGE = 30
POSTS_BATCH = 20
PER_MINUTE = 200
"""Discourse's default `max_reqs_per_ip_per_minute` (its 50 in 10 s is then never reached)."""


def profile(per_minute: float = PER_MINUTE) -> SourceProfile:
    """Requests paced 1% under `per_minute` (at 200: 0.303 s apart, 198 a minute, 33 in 10 s),
    by the host clock every worker shares; 0 paces nothing."""
    gap = 60.0 / per_minute * 1.01 if per_minute > 0 else 0.0
    return SourceProfile("discourse", min_interval=gap)


PROFILE = profile()
# Paths under a forum's root that a user may paste; the root is what precedes them.
_ROUTES = re.compile(r"/(?:t|c|u|latest|top|new|categories|posts|raw|tag|tags)(?:[/.?].*)?$")


def forum_base(url: str) -> str:
    """The forum's root URL from any of its page URLs: `https://f.example/t/x/12` gives
    `https://f.example`; a forum in a subfolder keeps it (`http://host/discourse/main`)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not a forum URL: {url!r}")
    path = _ROUTES.sub("", parts.path).rstrip("/")
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _epoch(value: Any, where: str) -> float:
    if not isinstance(value, str):
        raise ForumFormatError(f"{where}: a time must be a string, not {value!r}")
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        raise ForumFormatError(f"{where}: {value!r} is not an ISO 8601 time") from None


def _field(data: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(data, dict):
        raise ForumFormatError(f"{where}: expected an object, got {type(data).__name__}")
    value = data.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise ForumFormatError(f"{where}: {key!r} is {value!r}")
    return value


def parse_categories(data: Any) -> list[ForumBoard]:
    """`/categories.json`: each category is a board."""
    listing = _field(data, "category_list", dict, "categories.json")
    boards = []
    for item in _field(listing, "categories", list, "category_list"):
        where = f"category {item.get('id') if isinstance(item, dict) else item!r}"
        boards.append(
            ForumBoard(
                board_id=_field(item, "id", int, where),
                category_id=item.get("parent_category_id"),
                name=_field(item, "name", str, where),
                slug=_field(item, "slug", str, where),
                description=item.get("description_text") or item.get("description") or "",
                topic_count=_field(item, "topic_count", int, where),
                post_count=_field(item, "post_count", int, where),
            )
        )
    return boards


@dataclass(frozen=True)
class TopicList:
    topics: list[ForumTopic]
    users: list[ForumUser]
    more: bool  # whether `more_topics_url` says another page follows


def parse_topic_list(data: Any) -> TopicList:
    """`/latest.json` or `/c/{slug}/{id}.json`."""
    listing = _field(data, "topic_list", dict, "topic list")
    topics = []
    for item in _field(listing, "topics", list, "topic_list"):
        where = f"topic {item.get('id') if isinstance(item, dict) else item!r}"
        posters = item.get("posters") or []
        creator = posters[0].get("user_id") if posters and isinstance(posters[0], dict) else None
        topics.append(
            ForumTopic(
                topic_id=_field(item, "id", int, where),
                board_id=_field(item, "category_id", int, where),
                title=_field(item, "title", str, where),
                subtitle="",
                slug=_field(item, "slug", str, where),
                user_id=creator,
                created_at=_epoch(item.get("created_at"), where),
                last_posted_at=_epoch(item.get("bumped_at") or item.get("last_posted_at"), where),
                posts_count=_field(item, "posts_count", int, where),
                closed=bool(item.get("closed")),
                pinned=bool(item.get("pinned")),
                views=int(item.get("views") or 0),
            )
        )
    users = [
        ForumUser(_field(u, "id", int, "user"), _field(u, "username", str, "user"))
        for u in data.get("users") or []
    ]
    return TopicList(topics, users, bool(listing.get("more_topics_url")))


def parse_post(item: Any) -> ForumPost:
    """One post of a `post_stream` (its `raw` only when asked for; "" without)."""
    where = f"post {item.get('id') if isinstance(item, dict) else item!r}"
    edits = max(0, _field(item, "version", int, where) - 1)
    updated = _epoch(item.get("updated_at") or item.get("created_at"), where)
    user_id = _field(item, "user_id", int, where)
    return ForumPost(
        post_id=_field(item, "id", int, where),
        topic_id=_field(item, "topic_id", int, where),
        number=_field(item, "post_number", int, where),
        user=ForumUser(user_id, _field(item, "username", str, where)),
        created_at=_epoch(item.get("created_at"), where),
        updated_at=updated,
        edit_count=edits,
        last_edit_user_id=None,  # Discourse names the last editor only in the edit history
        last_edit_at=updated if edits else None,
        reply_to_number=item.get("reply_to_post_number"),
        title="",
        raw=item.get("raw") or "",
        cooked=_field(item, "cooked", str, where),
    )


@dataclass(frozen=True)
class TopicPage:
    topic: ForumTopic
    stream: list[int]  # every post id, in order
    posts: list[ForumPost]  # the first chunk


def parse_topic(data: Any) -> TopicPage:
    """`/t/{id}.json`."""
    where = f"topic {data.get('id') if isinstance(data, dict) else data!r}"
    stream_doc = _field(data, "post_stream", dict, where)
    stream = _field(stream_doc, "stream", list, where)
    if not all(isinstance(i, int) for i in stream):
        raise ForumFormatError(f"{where}: the stream holds something other than post ids")
    posts = [parse_post(p) for p in _field(stream_doc, "posts", list, where)]
    last = data.get("last_posted_at")
    topic = ForumTopic(
        topic_id=_field(data, "id", int, where),
        board_id=_field(data, "category_id", int, where),
        title=_field(data, "title", str, where),
        subtitle="",
        slug=_field(data, "slug", str, where),
        user_id=data.get("user_id"),
        created_at=_epoch(data.get("created_at"), where),
        last_posted_at=_epoch(last, where) if last else None,
        posts_count=_field(data, "posts_count", int, where),
        closed=bool(data.get("closed")),
        pinned=bool(data.get("pinned")),
        views=int(data.get("views") or 0),
    )
    return TopicPage(topic, stream, posts)


class DiscourseClient:
    """One Discourse forum at `base` (see `forum_base`), asked through `fetcher`."""

    def __init__(self, fetcher: Fetcher, base: str, profile: SourceProfile = PROFILE) -> None:
        self.fetcher = fetcher
        self.base = base.rstrip("/")
        self.profile = profile
        self.requests = 0  # sent by this client, for incremental crawls' accounting

    async def _json(self, path: str, query: Sequence[tuple[str, str | int]] = ()) -> Any:
        url = f"{self.base}{path}"
        if query:
            url += "?" + urlencode(list(query))
        self.requests += 1
        result = await self.fetcher.get(url, expect="json", profile=self.profile)
        return result.data

    async def boards(self) -> list[ForumBoard]:
        return parse_categories(await self._json("/categories.json"))

    async def latest(self, page: int = 0) -> TopicList:
        """Topics most recently bumped first, 30 a page (page 0 the newest)."""
        return parse_topic_list(await self._json("/latest.json", [("page", page)] if page else []))

    async def topic(self, topic_id: int, near: int | None = None) -> TopicPage:
        """The topic with its first chunk of posts, or with the chunk around post number
        `near` (Discourse starts it a few posts before)."""
        path = f"/t/{topic_id}.json" if near is None else f"/t/{topic_id}/{near}.json"
        return parse_topic(await self._json(path, [("include_raw", "true")]))

    async def posts(self, topic_id: int, post_ids: Sequence[int]) -> list[ForumPost]:
        """The posts with these ids (at most `POSTS_BATCH` a request), in the order asked."""
        posts: list[ForumPost] = []
        for start in range(0, len(post_ids), POSTS_BATCH):
            batch = post_ids[start : start + POSTS_BATCH]
            query: list[tuple[str, str | int]] = [("post_ids[]", i) for i in batch]
            data = await self._json(f"/t/{topic_id}/posts.json", [*query, ("include_raw", "true")])
            stream = _field(data, "post_stream", dict, f"posts of topic {topic_id}")
            posts += [parse_post(p) for p in _field(stream, "posts", list, "post_stream")]
        return posts
