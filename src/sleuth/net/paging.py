"""Pagination as sources do it: RFC 8288 `Link` headers (Mastodon), opaque cursors in the body
(Bluesky `cursor`, X `meta.next_token` sent back as `pagination_token`), and page numbers
(Discourse `?page=`, the bB XML API).

The parsers are pure; the iterators take the function that fetches one page, so they serve any
source and any client, and yield each page with the position that fetches the next one, which a
crawl can store to resume. Each stops at the last page, and at a position already seen (a
server answering the same cursor again would otherwise page for ever).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import urljoin

T = TypeVar("T")
P = TypeVar("P")


@dataclass(frozen=True)
class Link:
    """One link of a `Link` header: its target, relation types and other parameters."""

    url: str
    rels: frozenset[str]
    params: Mapping[str, str]


def _quoted(text: str, i: int) -> tuple[str, int]:
    """The quoted-string starting at `text[i] == '"'`, unescaped, and the index after it."""
    out = []
    i += 1
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if char == '"':
            return "".join(out), i + 1
        out.append(char)
        i += 1
    raise ValueError("unterminated quoted string")


def parse_link_header(value: str, base: str = "") -> list[Link]:
    """The links of a `Link` header value (RFC 8288), their targets resolved against `base`.

    Commas and semicolons inside `<...>` or quoted strings do not split; a malformed link is
    skipped, not fatal, so one bad entry costs only itself."""
    links: list[Link] = []
    i, n = 0, len(value)
    while i < n:
        start = value.find("<", i)
        if start < 0:
            break
        end = value.find(">", start)
        if end < 0:
            break
        target = value[start + 1 : end].strip()
        params: dict[str, str] = {}
        i = end + 1
        while i < n and value[i] != ",":
            if value[i] in "; \t":
                i += 1
                continue
            eq = i
            while eq < n and value[eq] not in "=;,":
                eq += 1
            name = value[i:eq].strip().lower()
            if eq < n and value[eq] == "=":
                j = eq + 1
                while j < n and value[j] in " \t":
                    j += 1
                if j < n and value[j] == '"':
                    try:
                        text, i = _quoted(value, j)
                    except ValueError:
                        return links
                else:
                    k = j
                    while k < n and value[k] not in ";,":
                        k += 1
                    text, i = value[j:k].strip(), k
            else:
                text, i = "", eq
            if name:
                params.setdefault(name, text)  # RFC 8288: only the first `rel` counts
        i += 1
        rels = frozenset(r.lower() for r in params.pop("rel", "").split())
        links.append(Link(urljoin(base, target) if base else target, rels, params))
    return links


def link_url(value: str | None, rel: str = "next", base: str = "") -> str | None:
    """The target of the first link with relation `rel` in a `Link` header, or None."""
    if not value:
        return None
    for link in parse_link_header(value, base):
        if rel in link.rels:
            return link.url
    return None


def dig(data: Any, path: str) -> Any:
    """The value at a dotted `path` of nested JSON objects (`meta.next_token`), or None."""
    for part in path.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def cursor_at(data: Any, path: str) -> str | None:
    """A page's next cursor at `path`: a non-empty string, or None for the last page (Bluesky
    leaves `cursor` out, X leaves `meta.next_token` out, some send "" or null)."""
    value = dig(data, path)
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class Page(Generic[T, P]):
    """A fetched page, the position it was fetched at, and the one of the next page (None:
    this is the last)."""

    value: T
    at: P
    next: P | None


async def _walk(
    fetch: Callable[[P], Awaitable[T]],
    start: P,
    after: Callable[[T, P], P | None],
    max_pages: int | None,
) -> AsyncIterator[Page[T, P]]:
    seen = {start}
    at = start
    count = 0
    while max_pages is None or count < max_pages:
        value = await fetch(at)
        following = after(value, at)
        if following is not None and following in seen:
            following = None  # the server sent a position again: stop rather than loop
        yield Page(value, at, following)
        count += 1
        if following is None:
            return
        seen.add(following)
        at = following


def follow_links(
    fetch: Callable[[str], Awaitable[T]],
    url: str,
    next_of: Callable[[T], str | None],
    max_pages: int | None = None,
) -> AsyncIterator[Page[T, str]]:
    """Pages from `url` on, each next one at `next_of(page)` (for Mastodon: the `Link`
    header's `rel="next"`, e.g. `lambda r: link_url(r.headers.get("Link"), base=r.final_url)`)."""
    return _walk(fetch, url, lambda value, _at: next_of(value), max_pages)


def cursor_pages(
    fetch: Callable[[str | None], Awaitable[T]],
    cursor_of: Callable[[T], str | None],
    start: str | None = None,
    max_pages: int | None = None,
) -> AsyncIterator[Page[T, str | None]]:
    """Pages of a cursor API: `fetch(None)` (or `fetch(start)`) first, then `fetch(cursor)`
    while `cursor_of(page)` gives one (e.g. `cursor_at(data, "meta.next_token")`)."""
    return _walk(fetch, start, lambda value, _at: cursor_of(value), max_pages)


def numbered_pages(
    fetch: Callable[[int], Awaitable[T]],
    is_last: Callable[[T], bool],
    first: int = 0,
    max_pages: int | None = None,
) -> AsyncIterator[Page[T, int]]:
    """Pages `first`, `first + 1`, ... until `is_last(page)` (for Discourse: no
    `topic_list.more_topics_url`; for a list: fewer items than a full page)."""
    return _walk(fetch, first, lambda value, at: None if is_last(value) else at + 1, max_pages)
