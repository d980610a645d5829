"""The bB XML API (forum.mods.de's `/bb/xml/`), read over `sleuth.net.fetcher` as potstats2 did.

`boards.php` (categories and their boards), `board.php?BID=&page=` (30 threads a page, most
recently posted in first) and `thread.php?TID=&page=` (30 posts a page). The body is UTF-8 XML
whatever the header says, and NUL bytes are dropped before parsing, as potstats2 did. A root
element `<invalid-board>`, `<invalid-thread>` or `<no-access>` is the forum's refusal:
`ForumFormatError` naming it. Pages count from 1.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit, urlunsplit

from sleuth.net.body import parse_xml
from sleuth.net.fetcher import Fetcher, SourceProfile
from sleuth.sources.forumtypes import (
    ForumBoard,
    ForumCategory,
    ForumFormatError,
    ForumPost,
    ForumTopic,
    ForumUser,
)

PAGE = 30
PROFILE = SourceProfile("bbxml")
_REFUSALS = ("invalid-board", "invalid-thread", "no-access")


def xml_base(url: str) -> str:
    """The XML API's folder from a forum URL: `https://forum.mods.de/bb/` and
    `https://forum.mods.de/bb/xml/board.php?BID=14` both give `https://forum.mods.de/bb/xml`."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not a forum URL: {url!r}")
    path = parts.path
    if path.endswith(".php"):
        path = path.rsplit("/", 1)[0]
    path = path.rstrip("/")
    if not path.endswith("/xml"):
        path += "/xml"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _int(element: ET.Element | None, attribute: str, where: str) -> int:
    value = None if element is None else element.get(attribute)
    if value is None or not value.lstrip("-").isdigit():
        raise ForumFormatError(f"{where}: {attribute!r} is {value!r}, not a number")
    return int(value)


def _value(element: ET.Element, path: str, where: str, default: int | None = None) -> int:
    found = element.find(path)
    if found is None and default is not None:
        return default
    return _int(found, "value", f"{where} {path}")


def _check(root: ET.Element, where: str) -> None:
    if root.tag in _REFUSALS:
        raise ForumFormatError(f"{where}: the forum answers <{root.tag}>")


def _user(element: ET.Element | None, where: str) -> ForumUser:
    if element is None:
        raise ForumFormatError(f"{where}: no <user>")
    group = element.get("group-id")
    return ForumUser(_int(element, "id", where), element.text or "", int(group) if group else None)


def parse_boards(root: ET.Element) -> tuple[list[ForumCategory], list[ForumBoard]]:
    """`boards.php`."""
    _check(root, "boards.php")
    categories, boards = [], []
    for category in root.iter("category"):
        cid = _int(category, "id", "category")
        categories.append(
            ForumCategory(cid, category.findtext("name", ""), category.findtext("description", ""))
        )
        for board in category.iterfind("boards/board"):
            bid = _int(board, "id", f"category {cid} board")
            boards.append(
                ForumBoard(
                    board_id=bid,
                    category_id=cid,
                    name=board.findtext("name", ""),
                    slug=str(bid),
                    description=board.findtext("description", ""),
                    topic_count=_value(board, "number-of-threads", f"board {bid}", 0),
                    post_count=_value(board, "number-of-replies", f"board {bid}", 0),
                )
            )
    return categories, boards


def _thread(element: ET.Element, board_id: int) -> ForumTopic:
    tid = _int(element, "id", "thread")
    where = f"thread {tid}"
    first = element.find("firstpost/post")
    last = element.find("lastpost/post")
    if last is None:  # no replies yet
        last = first

    def when(post: ET.Element | None) -> float | None:
        return None if post is None else float(_int(post.find("date"), "timestamp", where))

    return ForumTopic(
        topic_id=tid,
        board_id=_int(board, "id", where)
        if (board := element.find("in-board")) is not None
        else board_id,
        title=element.findtext("title", ""),
        subtitle=element.findtext("subtitle", ""),
        slug=str(tid),
        user_id=_user(first.find("user"), where).user_id if first is not None else None,
        created_at=when(first),
        last_posted_at=when(last),
        posts_count=_value(element, "number-of-replies", where) + 1,
        closed=_value(element, "flags/is-closed", where, 0) == 1,
        pinned=_value(element, "flags/is-sticky", where, 0) == 1,
        views=_value(element, "number-of-hits", where, 0),
    )


@dataclass(frozen=True)
class BoardPage:
    board_id: int
    thread_count: int
    threads: list[ForumTopic]


def parse_board(root: ET.Element, board_id: int) -> BoardPage:
    """`board.php`: one page of threads."""
    _check(root, f"board {board_id}")
    threads = [_thread(t, board_id) for t in root.iterfind("threads/thread")]
    return BoardPage(board_id, _value(root, "number-of-threads", f"board {board_id}", 0), threads)


@dataclass(frozen=True)
class ThreadPage:
    topic: ForumTopic
    page: int
    posts: list[ForumPost]


def parse_thread(root: ET.Element, topic_id: int) -> ThreadPage:
    """`thread.php`: one page of posts; a post's number is its place (the page's offset + 1)."""
    where = f"thread {topic_id}"
    _check(root, where)
    posts_element = root.find("posts")
    if posts_element is None:
        raise ForumFormatError(f"{where}: no <posts>")
    offset = _int(posts_element, "offset", where)
    posts = []
    for n, element in enumerate(posts_element.iterfind("post")):
        pid = _int(element, "id", where)
        here = f"{where} post {pid}"
        created = float(_int(element.find("date"), "timestamp", here))
        edited = element.find("message/edited")
        count = _int(edited, "count", here) if edited is not None else 0
        last = element.find("message/edited/lastedit")
        edit_at = float(_int(last.find("date"), "timestamp", here)) if last is not None else None
        posts.append(
            ForumPost(
                post_id=pid,
                topic_id=topic_id,
                number=offset + n + 1,
                user=_user(element.find("user"), here),
                created_at=created,
                updated_at=edit_at or created,
                edit_count=count,
                last_edit_user_id=_user(last.find("user"), here).user_id
                if last is not None
                else None,
                last_edit_at=edit_at,
                reply_to_number=None,
                title=element.findtext("message/title", ""),
                raw=element.findtext("message/content", ""),
                cooked=None,
            )
        )
    board = root.find("in-board")
    topic = ForumTopic(
        topic_id=topic_id,
        board_id=_int(board, "id", where) if board is not None else 0,
        title=root.findtext("title", ""),
        subtitle=root.findtext("subtitle", ""),
        slug=str(topic_id),
        user_id=None,
        created_at=None,
        last_posted_at=None,
        posts_count=_value(root, "number-of-replies", where, 0) + 1,
    )
    return ThreadPage(topic, _int(posts_element, "page", where), posts)


class BbClient:
    """One bB forum's XML API at `base` (see `xml_base`), asked through `fetcher`."""

    def __init__(self, fetcher: Fetcher, base: str, profile: SourceProfile = PROFILE) -> None:
        self.fetcher = fetcher
        self.base = base.rstrip("/")
        self.profile = profile
        self.requests = 0

    async def _xml(self, page: str, query: dict[str, int]) -> ET.Element:
        url = f"{self.base}/{page}" + (f"?{urlencode(query)}" if query else "")
        self.requests += 1
        result = await self.fetcher.get(url, profile=self.profile, headers={"Accept": "text/xml"})
        return parse_xml(result.body.replace(b"\x00", b""), url)

    async def boards(self) -> tuple[list[ForumCategory], list[ForumBoard]]:
        return parse_boards(await self._xml("boards.php", {}))

    async def board(self, board_id: int, page: int = 1) -> BoardPage:
        return parse_board(await self._xml("board.php", {"BID": board_id, "page": page}), board_id)

    async def thread(self, topic_id: int, page: int = 1) -> ThreadPage:
        root = await self._xml("thread.php", {"TID": topic_id, "page": page})
        return parse_thread(root, topic_id)
