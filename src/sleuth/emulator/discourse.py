"""An emulated Discourse serving a generated `Forum`: the public JSON API a crawler reads.

Paths and shapes follow the responses recorded from Discourse's own request specs
(`shared/fixtures/real/discourse/`): `/categories.json` (each board is a category),
`/latest.json` and `/c/{slug}/{id}.json` (30 topics a page, most recently bumped first, with
`topic_list.more_topics_url` while more pages follow), `/t/{id}.json` (the first 20 posts and the
`stream` of every post id; `/t/{id}/{number}.json` the 20 from five before that post),
`/t/{id}/posts.json?post_ids[]=...` (those posts; `include_raw=true`
adds each one's Markdown), `/posts/{id}.json` (one post with its raw) and `/raw/{topic}/{number}`.

Discourse limits anonymous clients per IP, by default 200 requests a minute and 50 in 10 seconds
(`max_reqs_per_ip_per_minute`, `max_reqs_per_ip_per_10_seconds`, mode block). Over either, it
answers 429 in plain text with `Retry-After` and `Discourse-Rate-Limit-Error-Code`; a refused
request is not counted. `Forums(..., rate_limits=False)` turns the limits off.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from html import escape
from typing import Any

from flask import Blueprint, Response, abort, jsonify, request

from sleuth.emulator.forums import IMAGE, LINK, Forum, Forums, Post, Topic, iso

TOPICS_PAGE = 30
POSTS_CHUNK = 20
POSTS_BEFORE = 5  # of a chunk asked for near a post number, those before it
PER_10_SECONDS = 50
PER_MINUTE = 200
_AVATAR = "/letter_avatar_proxy/v2/letter/{letter}/a9a28c/{{size}}.png"


class IpRateLimiter:
    """Discourse's per-IP limits: sliding windows of (seconds, most requests, error code)."""

    def __init__(
        self,
        windows: tuple[tuple[float, int, str], ...] = (
            (10.0, PER_10_SECONDS, "ip_10_secs_limit"),
            (60.0, PER_MINUTE, "ip_60_secs_limit"),
        ),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.windows = windows
        self.clock = clock
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, ip: str) -> tuple[int, str] | None:
        """Count a request from `ip`; or, over a limit, (seconds to wait, error code)."""
        now = self.clock()
        longest = max(seconds for seconds, _, _ in self.windows)
        with self._lock:
            seen = self._seen.setdefault(ip, deque())
            while seen and seen[0] <= now - longest:
                seen.popleft()
            for seconds, most, code in self.windows:
                inside = [t for t in seen if t > now - seconds]
                if len(inside) >= most:
                    wait = inside[-most] + seconds - now
                    return max(1, math.ceil(wait)), code
            seen.append(now)
        return None


def _limiter(forums: Forums) -> IpRateLimiter:
    if forums.limits is None:
        return IpRateLimiter(clock=forums.clock)
    return IpRateLimiter(forums.limits, clock=forums.clock)


def _too_many(wait: int, code: str) -> Response:
    body = (
        f"Slow down, too many requests from this IP address. "
        f"Please retry again in {wait} seconds.\nError code: {code}.\n"
    )
    response = Response(body, 429, content_type="text/plain; charset=utf-8")
    response.headers["Retry-After"] = str(wait)
    response.headers["Discourse-Rate-Limit-Error-Code"] = code
    return response


# -- rendering -------------------------------------------------------------------------------


def raw(forum: Forum, post: Post, depth: int = 0) -> str:
    """The post's Markdown: `[quote="name, post:N, topic:T"]` blocks, then text and links."""
    out = []
    if depth < 2:
        for quote in post.quotes:
            quoted = forum.post_by_id(quote.post_id)
            inner = raw(forum, quoted, depth + 1) if quoted else ""
            out.append(
                f'[quote="{quote.name}, post:{quote.number}, topic:{quote.topic_id}"]\n'
                f"{inner}\n[/quote]\n\n"
            )
    out.append(" ".join(post.words))
    for link in post.links:
        if link.kind == LINK:
            out.append(f" [{post.words[0]}]({link.url})")
        elif link.kind == IMAGE:
            out.append(f" ![{post.words[-1]}]({link.url})")
        else:
            out.append(f"\n{link.url}\n")  # a video URL alone on its line is oneboxed
    out.append(forum.edit_note(post))
    return "".join(out)


def cooked(forum: Forum, post: Post, depth: int = 0) -> str:
    """The post's HTML as Discourse cooks the Markdown of `raw`."""
    out = []
    if depth < 2:
        for quote in post.quotes:
            quoted = forum.post_by_id(quote.post_id)
            inner = cooked(forum, quoted, depth + 1) if quoted else ""
            name = escape(quote.name)
            out.append(
                f'<aside class="quote no-group" data-username="{name}" data-post="{quote.number}"'
                f' data-topic="{quote.topic_id}">\n<div class="title">\n'
                f'<div class="quote-controls"></div>\n{name}:</div>\n'
                f"<blockquote>\n{inner}\n</blockquote>\n</aside>\n"
            )
    text = [escape(" ".join(post.words))]
    onebox = []
    for link in post.links:
        url = escape(link.url)
        if link.kind == LINK:
            text.append(f'<a href="{url}">{escape(post.words[0])}</a>')
        elif link.kind == IMAGE:
            text.append(f'<img src="{url}" alt="{escape(post.words[-1])}">')
        else:
            onebox.append(f'<p><a href="{url}" class="onebox" target="_blank">{url}</a></p>')
    out.append(f"<p>{' '.join(text)}{escape(forum.edit_note(post))}</p>")
    out.extend(onebox)
    return "\n".join(out)


def _avatar(name: str) -> str:
    return _AVATAR.format(letter=name[:1].lower())


def _user(forum: Forum, user_id: int) -> dict[str, Any]:
    name = forum.username(user_id)
    return {"id": user_id, "username": name, "avatar_template": _avatar(name)}


def post_json(forum: Forum, topic: Topic, post: Post, *, include_raw: bool) -> dict[str, Any]:
    """A post with the keys of the recorded `topic_response.json` (and `raw` when asked)."""
    name = forum.username(post.user_id)
    staff = forum.user_group(post.user_id) != 3
    data: dict[str, Any] = {
        "id": post.id,
        "name": "",
        "username": name,
        "avatar_template": _avatar(name),
        "created_at": iso(post.created),
        "cooked": cooked(forum, post),
        "post_number": post.number,
        "post_type": 1,
        "updated_at": iso(post.updated),
        "reply_count": 0,
        "reply_to_post_number": post.reply_to,
        "quote_count": len(post.quotes),
        "avg_time": None,
        "incoming_link_count": 0,
        "reads": 1,
        "score": 0,
        "yours": False,
        "topic_id": topic.id,
        "topic_slug": topic.slug,
        "display_username": "",
        "primary_group_name": None,
        "primary_group_flair_url": None,
        "primary_group_flair_bg_color": None,
        "primary_group_flair_color": None,
        "version": 1 + len(post.edits),
        "can_edit": False,
        "can_delete": False,
        "can_recover": False,
        "can_wiki": False,
        "read": True,
        "user_title": None,
        "actions_summary": [],
        "moderator": staff and post.user_id != 1,
        "admin": post.user_id == 1,
        "staff": staff,
        "user_id": post.user_id,
        "hidden": False,
        "hidden_reason_id": None,
        "trust_level": 1,
        "deleted_at": None,
        "user_deleted": False,
        "edit_reason": None,
        "can_view_edit_history": True,
        "wiki": False,
    }
    if include_raw:
        data["raw"] = raw(forum, post)
    return data


def topic_list_item(forum: Forum, topic: Topic) -> dict[str, Any]:
    """A topic as `/latest.json` lists it (keys of `latest_topics_response.json`)."""
    first, last = forum.post(topic, 1), forum.post(topic, topic.count)
    creator = first.user_id if first else 0
    last_poster = last.user_id if last else creator
    return {
        "id": topic.id,
        "title": topic.title,
        "fancy_title": topic.title,
        "slug": topic.slug,
        "posts_count": topic.count,
        "reply_count": topic.count - 1,
        "highest_post_number": topic.count,
        "image_url": None,
        "created_at": iso(topic.created),
        "last_posted_at": iso(topic.last_posted),
        "bumped": True,
        "bumped_at": iso(topic.last_posted),
        "unseen": False,
        "pinned": False,
        "unpinned": None,
        "visible": True,
        "closed": False,
        "archived": False,
        "bookmarked": None,
        "liked": None,
        "views": topic.count * 7,
        "like_count": 0,
        "has_summary": False,
        "archetype": "regular",
        "last_poster_username": forum.username(last_poster),
        "category_id": topic.board_id,
        "pinned_globally": False,
        "posters": [
            {"extras": None, "description": "Original Poster", "user_id": creator},
            {"extras": "latest", "description": "Most Recent Poster", "user_id": last_poster},
        ],
    }


def topic_list(forum: Forum, topics: list[Topic], page: int, more_url: str) -> dict[str, Any]:
    shown = topics[page * TOPICS_PAGE : (page + 1) * TOPICS_PAGE]
    items = [topic_list_item(forum, t) for t in shown]
    user_ids = sorted({p["user_id"] for item in items for p in item["posters"]})
    listing: dict[str, Any] = {
        "can_create_topic": False,
        "draft": None,
        "draft_key": "new_topic",
        "draft_sequence": None,
        "per_page": TOPICS_PAGE,
        "topics": items,
    }
    if len(topics) > (page + 1) * TOPICS_PAGE:
        listing["more_topics_url"] = f"{more_url}?page={page + 1}"
    return {"users": [_user(forum, uid) for uid in user_ids], "topic_list": listing}


def category_json(forum: Forum, board_id: int) -> dict[str, Any]:
    board = forum.board(board_id)
    if board is None:
        raise KeyError(board_id)
    topics = forum.topics_by_activity(board.id)
    return {
        "id": board.id,
        "name": board.name,
        "color": "49d9e9",
        "text_color": "f0fcfd",
        "slug": board.slug,
        "topic_count": len(topics),
        "post_count": sum(t.count for t in topics),
        "position": board.id,
        "description": board.description,
        "description_text": board.description,
        "topic_url": f"/t/about-the-{board.slug}-category/{board.id}",
        "read_restricted": False,
        "permission": None,
        "notification_level": None,
        "topic_template": "",
        "has_children": False,
        "subcategory_ids": [],
    }


def topic_json(
    forum: Forum, topic: Topic, *, include_raw: bool, near: int | None = None
) -> dict[str, Any]:
    """`/t/{id}.json`: the first chunk of posts, the whole stream, the topic's details; with
    `near` (`/t/{id}/{number}.json`) the chunk around that post number instead: from
    `POSTS_BEFORE` posts before it, as Discourse's `filter_posts_near` does."""
    posts = forum.posts(topic)
    first, last = posts[0], posts[-1]
    start = 0 if near is None else max(0, min(near, len(posts)) - 1 - POSTS_BEFORE)
    return {
        "post_stream": {
            "posts": [
                post_json(forum, topic, p, include_raw=include_raw)
                for p in posts[start : start + POSTS_CHUNK]
            ],
            "stream": [p.id for p in posts],
        },
        "timeline_lookup": [[1, 0]],
        "id": topic.id,
        "title": topic.title,
        "fancy_title": topic.title,
        "posts_count": topic.count,
        "created_at": iso(topic.created),
        "views": topic.count * 7,
        "reply_count": topic.count - 1,
        "participant_count": len({p.user_id for p in posts}),
        "like_count": 0,
        "last_posted_at": iso(topic.last_posted),
        "visible": True,
        "closed": False,
        "archived": False,
        "has_summary": False,
        "archetype": "regular",
        "slug": topic.slug,
        "category_id": topic.board_id,
        "word_count": sum(len(p.words) for p in posts),
        "deleted_at": None,
        "user_id": first.user_id,
        "draft": None,
        "draft_key": f"topic_{topic.id}",
        "draft_sequence": None,
        "unpinned": None,
        "pinned_globally": False,
        "pinned": False,
        "pinned_at": None,
        "pinned_until": None,
        "details": {
            "created_by": _user(forum, first.user_id),
            "last_poster": _user(forum, last.user_id),
            "notification_level": 1,
            "can_flag_topic": False,
        },
        "highest_post_number": topic.count,
        "deleted_by": None,
        "actions_summary": [],
        "chunk_size": POSTS_CHUNK,
        "bookmarked": None,
    }


def _page() -> int:
    value = request.args.get("page", "0")
    return int(value) if value.isdigit() else 0


def _include_raw() -> bool:
    return request.args.get("include_raw", "").lower() in ("1", "true")


def _not_found() -> Response:
    response = jsonify(
        {"errors": ["The requested URL or resource could not be found."], "error_type": "not_found"}
    )
    response.status_code = 404
    return response


def discourse_blueprint(forums: Forums) -> Blueprint:
    """Each forum's Discourse API under `/discourse/<forum>`."""
    bp = Blueprint("discourse", __name__, url_prefix="/discourse/<forum>")
    limiters: dict[str, IpRateLimiter] = {}

    @bp.url_value_preprocessor
    def _admit(_endpoint: str | None, values: dict[str, Any] | None) -> None:
        name = (values or {}).get("forum", "")
        if forums.get(name) is None:
            abort(404)
        if forums.rate_limits:
            limiter = limiters.setdefault(name, _limiter(forums))
            refused = limiter.check(request.remote_addr or "")
            if refused is not None:
                forums.count("discourse 429", name)
                abort(_too_many(*refused))
        forums.count("discourse", name)

    def _forum(name: str) -> Forum:
        forum = forums.get(name)
        assert forum is not None  # _admit refused unknown forums
        return forum

    @bp.get("/categories.json")
    def categories(forum: str) -> Response:
        f = _forum(forum)
        return jsonify(
            {
                "category_list": {
                    "can_create_category": False,
                    "can_create_topic": False,
                    "draft": None,
                    "draft_key": "new_topic",
                    "draft_sequence": None,
                    "categories": [category_json(f, b.id) for b in f.boards],
                }
            }
        )

    @bp.get("/latest.json")
    def latest(forum: str) -> Response:
        f = _forum(forum)
        return jsonify(topic_list(f, f.topics_by_activity(), _page(), "/latest"))

    @bp.get("/c/<slug>/<int:category_id>.json")
    def category(forum: str, slug: str, category_id: int) -> Response:
        f = _forum(forum)
        board = f.board(category_id)
        if board is None:
            return _not_found()
        topics = f.topics_by_activity(board.id)
        return jsonify(topic_list(f, topics, _page(), f"/c/{board.slug}/{board.id}"))

    @bp.get("/t/<int:topic_id>.json")
    @bp.get("/t/<slug>/<int:topic_id>.json")
    def topic(forum: str, topic_id: int, slug: str = "") -> Response:
        f = _forum(forum)
        t = f.topic_by_id(topic_id)
        if t is None:
            return _not_found()
        return jsonify(topic_json(f, t, include_raw=_include_raw()))

    @bp.get("/t/<int:topic_id>/<int:number>.json")
    @bp.get("/t/<slug>/<int:topic_id>/<int:number>.json")
    def topic_near(forum: str, topic_id: int, number: int, slug: str = "") -> Response:
        f = _forum(forum)
        t = f.topic_by_id(topic_id)
        if t is None:
            return _not_found()
        return jsonify(topic_json(f, t, include_raw=_include_raw(), near=number))

    @bp.get("/t/<int:topic_id>/posts.json")
    def topic_posts(forum: str, topic_id: int) -> Response:
        f = _forum(forum)
        t = f.topic_by_id(topic_id)
        if t is None:
            return _not_found()
        wanted = [int(v) for v in request.args.getlist("post_ids[]") if v.isdigit()]
        posts = [p for pid in wanted if (p := f.post_by_id(pid)) and p.topic_id == t.id]
        return jsonify(
            {
                "post_stream": {
                    "posts": [post_json(f, t, p, include_raw=_include_raw()) for p in posts]
                },
                "id": t.id,
            }
        )

    @bp.get("/posts/<int:post_id>.json")
    def post(forum: str, post_id: int) -> Response:
        f = _forum(forum)
        p = f.post_by_id(post_id)
        t = f.topic_by_id(p.topic_id) if p else None
        if p is None or t is None:
            return _not_found()
        return jsonify(post_json(f, t, p, include_raw=True))

    @bp.get("/raw/<int:topic_id>/<int:number>")
    def raw_post(forum: str, topic_id: int, number: int) -> Response:
        f = _forum(forum)
        t = f.topic_by_id(topic_id)
        p = f.post(t, number) if t else None
        if p is None:
            return Response("not found\n", 404, content_type="text/plain; charset=utf-8")
        return Response(raw(f, p), 200, content_type="text/plain; charset=utf-8")

    return bp
