"""The emulated bB XML API over loopback: boards, 30 threads and posts a page, its quirks."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator

import httpx
import pytest

from sleuth.emulator import EmulatorServer, create_imagehost_app
from sleuth.emulator.forums import Forum, Forums
from tests.patience import PATIENCE


@pytest.fixture(scope="module")
def forum() -> Forum:
    return Forum(5, 1500)


@pytest.fixture(scope="module")
def http(forum: Forum) -> Iterator[httpx.Client]:
    forums = Forums({"main": forum})
    with (
        EmulatorServer(create_imagehost_app(seed=0, forums=forums)) as url,
        httpx.Client(base_url=f"{url}/bb/main/xml", timeout=PATIENCE) as client,
    ):
        yield client


def _xml(response: httpx.Response) -> ET.Element:
    """The document, without the NUL bytes the API strews (as its clients read it)."""
    assert response.status_code == 200
    return _xml_body(response.content)


def test_some_posts_carry_a_nul_byte(http: httpx.Client, forum: Forum) -> None:
    post = next(p for t in forum.topics_by_activity() for p in forum.posts(t) if p.id % 23 == 0)
    page = 1 + (post.number - 1) // 30
    body = http.get("/thread.php", params={"TID": post.topic_id, "page": page}).content
    assert b"\x00" in body
    with pytest.raises(ET.ParseError):  # what a client that keeps them meets
        ET.fromstring(body)
    content = next(
        e.findtext("message/content")
        for e in _xml_body(body).iter("post")
        if e.get("id") == str(post.id)
    )
    assert content is not None and "\x00" not in content


def _xml_body(body: bytes) -> ET.Element:
    return ET.fromstring(body.replace(b"\x00", b""))


def test_utf8_body_under_an_iso_8859_1_header(http: httpx.Client, forum: Forum) -> None:
    response = http.get("/boards.php")
    assert response.headers["content-type"] == "text/xml; charset=ISO-8859-1"
    assert "über".encode() in response.content  # UTF-8 bytes, whatever the header says
    root = _xml(response)
    assert root.tag == "categories" and root.get("count") == str(len(forum.categories))
    boards = root.findall("category/boards/board")
    assert [int(b.get("id", "")) for b in boards] == [b.id for b in forum.boards]
    assert all(b.find("in-category") is not None for b in boards)


def test_board_pages_hold_30_threads_until_the_last(http: httpx.Client, forum: Forum) -> None:
    truth = forum.ground_truth()
    board = max(forum.boards, key=lambda b: truth.topics_by_board[b.id])
    ids: list[int] = []
    page = 1
    while True:
        root = _xml(http.get("/board.php", params={"BID": board.id, "page": page}))
        threads = root.findall("threads/thread")
        assert root.find("threads").get("page") == str(page)  # type: ignore[union-attr]
        ids.extend(int(t.get("id", "")) for t in threads)
        if len(threads) < 30:
            break
        page += 1
    assert len(ids) == len(set(ids)) == truth.topics_by_board[board.id] > 30
    first = _xml(http.get("/board.php", params={"BID": board.id, "page": 0}))
    assert [t.get("id") for t in first.findall("threads/thread")] == [str(i) for i in ids[:30]]
    thread = first.find("threads/thread")
    assert thread is not None and thread.find("flags/is-closed").get("value") == "0"  # type: ignore[union-attr]
    assert thread.find("firstpost/post/user") is not None
    assert _xml(http.get("/board.php", params={"BID": 999})).tag == "invalid-board"


def test_thread_pages_and_the_post_jump(http: httpx.Client, forum: Forum) -> None:
    topic = next(t for t in forum.topics_by_activity() if t.count > 65)
    numbers: list[int] = []
    for page in (1, 2, 3):
        root = _xml(http.get("/thread.php", params={"TID": topic.id, "page": page}))
        posts = root.find("posts")
        assert posts is not None and posts.get("offset") == str((page - 1) * 30)
        numbers.extend(int(p.get("id", "")) % 1000 for p in posts.findall("post"))
    assert numbers[: topic.count] == list(range(1, min(90, topic.count) + 1))
    target = forum.post(topic, 40)
    assert target is not None
    jumped = _xml(http.get("/thread.php", params={"TID": topic.id, "PID": target.id}))
    assert jumped.find("posts").get("page") == "2"  # type: ignore[union-attr]
    assert _xml(http.get("/thread.php", params={"TID": 10**7})).tag == "invalid-thread"


def test_posts_carry_bbcode_quotes_users_and_edits(http: httpx.Client, forum: Forum) -> None:
    topics = forum.topics_by_activity()
    quoting = next(p for t in topics for p in forum.posts(t) if p.quotes)
    edited = next(p for t in topics for p in forum.posts(t) if p.edits)
    for post in (quoting, edited):
        page = 1 + (post.number - 1) // 30
        root = _xml(http.get("/thread.php", params={"TID": post.topic_id, "page": page}))
        element = next(e for e in root.findall("posts/post") if e.get("id") == str(post.id))
        user = element.find("user")
        assert user is not None and user.text == forum.username(post.user_id)
        assert user.get("group-id") in ("1", "3", "6")
        assert element.find("date").get("timestamp") == str(post.created)  # type: ignore[union-attr]
        content = element.findtext("message/content") or ""
        edits = element.find("message/edited")
        assert edits is not None and edits.get("count") == str(len(post.edits))
        if post is quoting:
            q = post.quotes[0]
            assert content.startswith(f'[quote={q.topic_id},{q.post_id},"{q.name}"]')
        else:
            assert element.find("message/edited/lastedit/date").get("timestamp") == str(  # type: ignore[union-attr]
                post.edits[-1].at
            )
            assert content.endswith(f"(edit {len(post.edits)})")
