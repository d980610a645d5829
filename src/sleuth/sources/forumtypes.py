"""The values both forum connectors (`discourse`, `bbxml`) read a forum into.

Ids are the forum's own; times are float epoch seconds (UTC). Discourse's categories are the
boards here (it has no grouping above them that a crawl needs); bB groups its boards in
categories."""

from __future__ import annotations

from dataclasses import dataclass


class ForumFormatError(ValueError):
    """A forum answered something that is not what its API sends: the stated reason."""


@dataclass(frozen=True)
class ForumUser:
    user_id: int
    name: str
    group_id: int | None = None


@dataclass(frozen=True)
class ForumCategory:
    category_id: int
    name: str
    description: str


@dataclass(frozen=True)
class ForumBoard:
    board_id: int
    category_id: int | None
    name: str
    slug: str
    description: str
    topic_count: int
    post_count: int


@dataclass(frozen=True)
class ForumTopic:
    """A topic as a list or its own page states it (counts as the forum says)."""

    topic_id: int
    board_id: int
    title: str
    subtitle: str
    slug: str
    user_id: int | None
    created_at: float | None
    last_posted_at: float | None
    posts_count: int
    closed: bool = False
    pinned: bool = False
    views: int = 0


@dataclass(frozen=True)
class ForumPost:
    post_id: int
    topic_id: int
    number: int  # 1-based position in its topic
    user: ForumUser
    created_at: float
    updated_at: float
    edit_count: int
    last_edit_user_id: int | None
    last_edit_at: float | None
    reply_to_number: int | None
    title: str
    raw: str
    cooked: str | None
