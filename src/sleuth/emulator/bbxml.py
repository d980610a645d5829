"""The bB XML API (forum.mods.de's `/bb/xml/`), serving a generated `Forum`, as potstats2 read it.

`boards.php` (categories and their boards), `board.php?BID=&page=` (30 threads a page, most
recently posted in first), `thread.php?TID=&page=` or `&PID=` (30 posts a page; `PID` jumps to
the page holding that post). Pages count from 1; 0 is read as 1, since potstats2 asked for page 0
and mde_flutter for page 1 of the same first page. As the real API does, the body is UTF-8 while
the header says ISO-8859-1, and an unknown board or thread answers 200 with a root element
`<invalid-board>` or `<invalid-thread>`. A few posts end in a NUL byte, which the real API
sends and potstats2 stripped before parsing. Posts are BBCode: `[quote=tid,pid,"name"]` (the name as
it was when quoting), `[url]`, `[url=...]` (quoted, without scheme, or relative to the forum:
`/t/...` or `./t/...`), `[img]`, `[video]`, `[video play]`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from flask import Blueprint, Response, abort, request

from sleuth.emulator.forums import IMAGE, LINK, Forum, Forums, Post, Topic

PAGE = 30
CONTENT_TYPE = "text/xml; charset=ISO-8859-1"
"""What the real API's header says; its body is UTF-8 all the same."""


def bbcode(forum: Forum, post: Post, depth: int = 0) -> str:
    """The post's BBCode; a quote holds the quoted post's own text, nested one level at most."""
    out = []
    if depth < 2:
        for quote in post.quotes:
            quoted = forum.post_by_id(quote.post_id)
            inner = bbcode(forum, quoted, depth + 1) if quoted else ""
            out.append(f'[quote={quote.topic_id},{quote.post_id},"{quote.name}"]{inner}[/quote]\n')
    out.append(" ".join(post.words))
    for link in post.links:
        if link.kind == LINK:
            bare = link.url.split("://", 1)[-1]  # potstats2 read a link without scheme as http
            url = "." + link.url if link.url.startswith("/") and len(bare) % 2 else link.url
            out.append(
                (
                    f" [url={url}]{post.words[0]}[/url]",
                    f" [url]{url}[/url]",
                    f' [url="{url}"]{post.words[-1]}[/url]',
                    f" [url={bare}]{post.words[0]}[/url]",
                )[len(link.url) % 4]
            )
        elif link.kind == IMAGE:
            out.append(f" [img]{link.url}[/img]")
        else:
            out.append(f" [video{' play' if len(link.url) % 2 else ''}]{link.url}[/video]")
    out.append(forum.edit_note(post))
    return "".join(out)


def _user(parent: ET.Element, forum: Forum, user_id: int, *, group: bool = False) -> None:
    user = ET.SubElement(parent, "user", id=str(user_id))
    if group:
        user.set("group-id", str(forum.user_group(user_id)))
    user.text = forum.username(user_id)


def _post_summary(parent: ET.Element, forum: Forum, post: Post) -> None:
    element = ET.SubElement(parent, "post", id=str(post.id))
    _user(element, forum, post.user_id)
    ET.SubElement(element, "date", timestamp=str(post.created))


def _value(parent: ET.Element, tag: str, value: int) -> None:
    ET.SubElement(parent, tag, value=str(value))


def _text(parent: ET.Element, tag: str, text: str) -> None:
    ET.SubElement(parent, tag).text = text


def _xml(root: ET.Element) -> Response:
    body = b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8")
    return Response(body, 200, headers={"Content-Type": CONTENT_TYPE})


def _int_arg(name: str) -> int | None:
    value = request.args.get(name, "")
    return int(value) if value.strip().isdigit() else None


def _page() -> int:
    return max(1, _int_arg("page") or 1)


def _thread_element(parent: ET.Element, forum: Forum, topic: Topic) -> None:
    element = ET.SubElement(parent, "thread", id=str(topic.id))
    _text(element, "title", topic.title)
    _text(element, "subtitle", "")
    _value(element, "number-of-replies", topic.count - 1)
    _value(element, "number-of-pages", -(-topic.count // PAGE))
    _value(element, "number-of-hits", topic.count * 7)
    ET.SubElement(element, "in-board", id=str(topic.board_id))
    flags = ET.SubElement(element, "flags")
    for flag in ("is-closed", "is-sticky", "is-important", "is-announcement", "is-global"):
        _value(flags, flag, 0)
    first = forum.post(topic, 1)
    if first is not None:
        _post_summary(ET.SubElement(element, "firstpost"), forum, first)
    last = forum.post(topic, topic.count)
    if topic.count > 1 and last is not None:
        _post_summary(ET.SubElement(element, "lastpost"), forum, last)


def boards_xml(forum: Forum) -> Response:
    root = ET.Element("categories", {"count": str(len(forum.categories)), "current-user-id": "0"})
    for category in forum.categories:
        element = ET.SubElement(root, "category", id=str(category.id))
        _text(element, "name", category.name)
        _text(element, "description", category.description)
        boards = ET.SubElement(element, "boards")
        for board in forum.boards:
            if board.category_id != category.id:
                continue
            b = ET.SubElement(boards, "board", id=str(board.id))
            _text(b, "name", board.name)
            _text(b, "description", board.description)
            ET.SubElement(b, "in-category", id=str(category.id))
            latest = forum.topics_by_activity(board.id)[:1]
            if latest:
                last = forum.post(latest[0], latest[0].count)
                if last is not None:
                    _post_summary(ET.SubElement(b, "lastpost"), forum, last)
    return _xml(root)


def board_xml(forum: Forum, board_id: int | None, page: int) -> Response:
    board = forum.board(board_id) if board_id is not None else None
    if board is None:
        return _xml(ET.Element("invalid-board", id=str(board_id or "")))
    topics = forum.topics_by_activity(board.id)
    root = ET.Element("board", {"id": str(board.id), "current-user-id": "0"})
    _text(root, "name", board.name)
    _text(root, "description", board.description)
    _value(root, "number-of-threads", len(topics))
    ET.SubElement(root, "in-category", id=str(board.category_id))
    shown = topics[(page - 1) * PAGE : page * PAGE]
    threads = ET.SubElement(root, "threads", page=str(page), count=str(len(shown)))
    for topic in shown:
        _thread_element(threads, forum, topic)
    return _xml(root)


def thread_xml(forum: Forum, topic_id: int | None, page: int, post_id: int | None) -> Response:
    topic = forum.topic_by_id(topic_id) if topic_id is not None else None
    if topic is None:
        return _xml(ET.Element("invalid-thread", id=str(topic_id or "")))
    if post_id is not None:
        post = forum.post_by_id(post_id)
        if post is not None and post.topic_id == topic.id:
            page = 1 + (post.number - 1) // PAGE
    root = ET.Element("thread", {"id": str(topic.id), "current-user-id": "0"})
    _text(root, "title", topic.title)
    _text(root, "subtitle", "")
    ET.SubElement(root, "in-board", id=str(topic.board_id))
    _value(root, "number-of-replies", topic.count - 1)
    _value(root, "number-of-pages", -(-topic.count // PAGE))
    first = (page - 1) * PAGE + 1
    numbers = range(first, min(topic.count, page * PAGE) + 1)
    posts = ET.SubElement(
        root, "posts", page=str(page), offset=str(first - 1), count=str(len(numbers))
    )
    for number in numbers:
        post = forum.post(topic, number)
        if post is None:
            continue
        element = ET.SubElement(posts, "post", id=str(post.id))
        _user(element, forum, post.user_id, group=True)
        ET.SubElement(element, "date", timestamp=str(post.created))
        ET.SubElement(element, "avatar", id="0")
        message = ET.SubElement(element, "message")
        _text(message, "title", "")
        # a stray NUL now and then, as the real API sends (invalid XML: clients drop them)
        _text(message, "content", bbcode(forum, post) + ("\x00" if post.id % 23 == 0 else ""))
        edited = ET.SubElement(message, "edited", count=str(len(post.edits)))
        if post.edits:
            last = ET.SubElement(edited, "lastedit")
            _user(last, forum, post.edits[-1].editor_id)
            ET.SubElement(last, "date", timestamp=str(post.edits[-1].at))
    return _xml(root)


def bbxml_blueprint(forums: Forums) -> Blueprint:
    """The bB XML API of each forum under `/bb/<forum>/xml/`."""
    bp = Blueprint("bbxml", __name__, url_prefix="/bb/<forum>/xml")

    def _forum(name: str) -> Forum:
        forum = forums.get(name)
        if forum is None:
            abort(404)
        forums.count("bbxml", name)
        return forum

    @bp.get("/boards.php")
    def boards(forum: str) -> Response:
        return boards_xml(_forum(forum))

    @bp.get("/board.php")
    def board(forum: str) -> Response:
        return board_xml(_forum(forum), _int_arg("BID"), _page())

    @bp.get("/thread.php")
    def thread(forum: str) -> Response:
        return thread_xml(_forum(forum), _int_arg("TID"), _page(), _int_arg("PID"))

    return bp
