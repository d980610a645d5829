"""Paging helpers: `Link` headers parsed as RFC 8288 says (and as Mastodon sends them, from the
real recordings), cursors and page numbers, and the iterators walking a loopback server's
pages in each style, stopping at the end and at a repeated position."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from sleuth.net.fetcher import Fetcher, FetchResult
from sleuth.net.paging import (
    Link,
    cursor_at,
    cursor_pages,
    dig,
    follow_links,
    link_url,
    numbered_pages,
    parse_link_header,
)
from tests.net.conftest import LOOPBACK, LocalServer

REAL = Path(__file__).resolve().parents[1] / "fixtures" / "real"


def test_mastodon_link_headers_from_the_recordings() -> None:
    cassette = REAL / "mastodon" / "test_public_tl.yaml"
    if not cassette.exists():
        pytest.skip(f"the shared recordings are not beside this checkout ({cassette})")
    links = [
        value
        for interaction in yaml.safe_load(cassette.read_text())["interactions"]
        for value in interaction["response"]["headers"].get("link", [])
    ]
    assert links
    parsed = parse_link_header(links[0])
    assert [sorted(link.rels) for link in parsed] == [["next"], ["prev"]]
    assert (
        parsed[0].url == "http://localhost:3000/api/v1/timelines/public?max_id=117020574694606796"
    )
    assert link_url(links[0], "prev", "") == (
        "http://localhost:3000/api/v1/timelines/public?min_id=117020593378945190"
    )


def test_rfc_8288_details() -> None:
    value = (
        '</a?x=1,2>; rel="next last"; title="a, b; c", '
        "<https://other.example/p>; REL=prev; rel=ignored, "
        "<broken"
    )
    links = parse_link_header(value, base="https://api.example/v1/list")
    assert links == [
        Link("https://api.example/a?x=1,2", frozenset({"next", "last"}), {"title": "a, b; c"}),
        Link("https://other.example/p", frozenset({"prev"}), {}),
    ]
    assert link_url(value, "last") == "/a?x=1,2"
    assert link_url(None) is None and link_url("") is None
    assert link_url('<https://a.example/>; rel="prev"') is None
    assert parse_link_header('<x>; title="unterminated') == []
    assert parse_link_header('<x>; title="esc\\"aped"; rel=next')[0].params == {"title": 'esc"aped'}


def test_cursors_and_dotted_paths() -> None:
    x_page = {"data": [1], "meta": {"result_count": 1, "next_token": "7140dibdnow9c7btw3w29"}}
    assert cursor_at(x_page, "meta.next_token") == "7140dibdnow9c7btw3w29"
    assert cursor_at({"meta": {"result_count": 0}}, "meta.next_token") is None
    assert cursor_at({"cursor": ""}, "cursor") is None
    assert cursor_at({"cursor": None}, "cursor") is None
    assert cursor_at({"cursor": 5}, "cursor") is None  # not an opaque string
    assert dig({"a": [1]}, "a.b") is None and dig({"a": {"b": 2}}, "a.b") == 2


BASE = LOOPBACK
pytestmark = pytest.mark.anyio


async def test_following_link_headers(server: LocalServer) -> None:
    async with Fetcher(BASE, allow_private=True) as f:

        async def fetch(url: str) -> FetchResult:
            return await f.get(url, expect="json")

        def next_of(r: FetchResult) -> str | None:
            return link_url(r.headers.get("Link"), base=r.final_url)

        pages = [p async for p in follow_links(fetch, server.url("/pages/link"), next_of)]
    assert [p.value.data for p in pages] == [[7, 6, 5], [4, 3, 2], [1]]
    assert pages[0].at == server.url("/pages/link")
    assert pages[1].at.endswith("/pages/link?max_id=5") and pages[-1].next is None


@pytest.mark.parametrize(
    ("style", "param", "path"),
    [("cursor", "cursor", "cursor"), ("token", "pagination_token", "meta.next_token")],
)
async def test_cursor_pages_bluesky_and_x(
    server: LocalServer, style: str, param: str, path: str
) -> None:
    async with Fetcher(BASE, allow_private=True) as f:

        async def fetch(cursor: str | None) -> Any:
            params = {} if cursor is None else {param: cursor}
            return (await f.get(server.url(f"/pages/{style}"), params=params, expect="json")).data

        pages = [p async for p in cursor_pages(fetch, lambda data: cursor_at(data, path))]
        resumed = [p async for p in cursor_pages(fetch, lambda d: cursor_at(d, path), start="6")]
    items = "feed" if style == "cursor" else "data"
    assert [p.value[items] for p in pages] == [[7, 6, 5], [4, 3, 2], [1]]
    assert [(p.at, p.next) for p in pages] == [(None, "3"), ("3", "6"), ("6", None)]
    assert [p.value[items] for p in resumed] == [[1]]  # a stored cursor resumes the walk


async def test_numbered_pages_discourse_style(server: LocalServer) -> None:
    async with Fetcher(BASE, allow_private=True) as f:

        async def fetch(page: int) -> Any:
            url = server.url("/pages/number")
            return (await f.get(url, params={"page": page}, expect="json")).data

        def is_last(data: Any) -> bool:
            return dig(data, "topic_list.more_topics_url") is None

        pages = [p async for p in numbered_pages(fetch, is_last)]
        two = [p async for p in numbered_pages(fetch, is_last, max_pages=2)]
    assert [p.value["topic_list"]["topics"] for p in pages] == [[7, 6, 5], [4, 3, 2], [1]]
    assert [(p.at, p.next) for p in pages] == [(0, 1), (1, 2), (2, None)]
    assert len(two) == 2


async def test_a_repeated_cursor_ends_the_walk() -> None:
    calls: list[str | None] = []

    async def stuck(cursor: str | None) -> dict[str, str]:
        calls.append(cursor)
        return {"cursor": "same"}

    pages = [p async for p in cursor_pages(stuck, lambda d: cursor_at(d, "cursor"))]
    assert calls == [None, "same"] and pages[-1].next is None
