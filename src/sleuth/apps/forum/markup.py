"""What a post's text says: the posts it quotes and the links, images and videos it holds.

Only what the post itself says counts: a link or a quote inside a quote belongs to the quoted
post, as potstats2 counted. bB posts are BBCode (`[quote=tid,pid,"name"]`, `[url]`, `[url=...]`,
`[img]`, `[video]`, `[video play]`, `[video autoplay]`); Discourse posts are read from their cooked
HTML, which renders every syntax a user may write (Markdown, BBCode, bare URLs) the same way:
`aside.quote` with `data-topic`/`data-post`, `<a href>`, `<img>`, oneboxes and video players.

URLs are normalized as potstats2 did, relative to the forum: quotes stripped, `/path` on the
forum's host, `./path` under bB's `/bb/` directory, a URL without a scheme read as `http://`;
`data:` URLs, mentions, hashtags, emoji and avatars are not links.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

LINK, IMAGE, VIDEO = "link", "image", "video"
KINDS = (LINK, IMAGE, VIDEO)
MAX_ID = (1 << 63) - 1
"""A quoted id past a signed 64-bit column is ignored (potstats2's PID overflow case)."""
MAX_URL = 2000
"""A longer URL is not kept (no real link is this long; a runaway tag would be)."""
VIDEO_SITES = frozenset({"youtube", "youtu", "vimeo", "dailymotion", "twitch", "peertube"})
"""Hosts whose links Discourse plays inline: a onebox of one of them is a video."""


@dataclass(frozen=True)
class QuoteRef:
    """A quoted post: bB names its id (`post_id`), Discourse its number in `topic_id`."""

    topic_id: int
    post_id: int | None
    number: int | None
    name: str


@dataclass(frozen=True)
class LinkRef:
    url: str
    domain: str
    kind: str  # one of KINDS


@dataclass(frozen=True)
class Markup:
    quotes: tuple[QuoteRef, ...]
    links: Counter[LinkRef]


def normalize_url(value: str, base: str) -> LinkRef | None:
    """`value` as an absolute URL with its domain (kind `link`), or None when it is no link."""
    url = value.strip().strip("\"'").strip()
    if not url or len(url) > MAX_URL or url.lower().startswith(("data:", "javascript:", "mailto:")):
        return None
    site = urlsplit(base)
    if url.startswith("//"):
        url = f"{site.scheme or 'http'}:{url}"
    elif url.startswith("/"):
        url = f"{site.scheme}://{site.netloc}{url}"
    elif url.startswith("./"):
        url = urljoin(f"{site.scheme}://{site.netloc}/bb/", url[2:])
    elif not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", url):
        url = "http://" + url
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    if not host:
        return None
    return LinkRef(url, host.lower().rstrip("."), LINK)


def _as(link: LinkRef | None, kind: str) -> LinkRef | None:
    return None if link is None else LinkRef(link.url, link.domain, kind)


def _id(text: str) -> int | None:
    text = text.strip()
    if not text.isdigit():
        return None
    value = int(text)
    return value if 0 < value <= MAX_ID else None


# -- BBCode ----------------------------------------------------------------------------------

_TAG = re.compile(r"\[(/?)(quote|url|img|video)\b([^\]]*)\]", re.IGNORECASE)
_BB_QUOTE = re.compile(r'^=\s*(\d+)\s*,\s*(\d+)\s*(?:,\s*"?(.*?)"?)?\s*$', re.DOTALL)


def read_bbcode(text: str, base: str) -> Markup:
    """The quotes and links a bB post's BBCode holds (`base`: the forum's URL)."""
    quotes: list[QuoteRef] = []
    links: Counter[LinkRef] = Counter()
    depth = 0
    opened: tuple[str, str, int] | None = None  # (tag, its argument, where its content starts)
    for match in _TAG.finditer(text):
        closing, tag, argument = match.group(1), match.group(2).lower(), match.group(3)
        if tag == "quote":
            if closing:
                depth = max(0, depth - 1)
            else:
                if depth == 0:
                    quote = _bb_quote(argument)
                    if quote is not None:
                        quotes.append(quote)
                depth += 1
            opened = None
            continue
        if depth:
            continue
        if not closing:
            opened = (tag, argument, match.end())
            continue
        if opened is None or opened[0] != tag:
            continue
        open_tag, open_argument, start = opened
        opened = None
        content = text[start : match.start()]
        if open_tag == "url":
            target = open_argument[1:] if open_argument.startswith("=") else content
            link = normalize_url(target, base)
        else:
            link = _as(normalize_url(content, base), IMAGE if open_tag == "img" else VIDEO)
        if link is not None:
            links[link] += 1
    return Markup(tuple(quotes), links)


def _bb_quote(argument: str) -> QuoteRef | None:
    match = _BB_QUOTE.match(argument)
    if match is None:
        return None
    topic, post = _id(match.group(1)), _id(match.group(2))
    if topic is None or post is None:
        return None
    return QuoteRef(topic, post, None, (match.group(3) or "").strip())


# -- Discourse's cooked HTML -----------------------------------------------------------------

_SKIPPED_LINKS = frozenset({"mention", "hashtag", "hashtag-cooked", "lightbox", "anchor", "back"})
_SKIPPED_IMAGES = frozenset({"emoji", "avatar", "site-icon", "thumbnail", "onebox-avatar"})
_VOID = frozenset({"img", "br", "hr", "source", "input", "meta", "link", "wbr"})


def _is_video_host(domain: str) -> bool:
    return any(label in VIDEO_SITES for label in domain.split("."))


class _CookedReader(HTMLParser):
    def __init__(self, base: str) -> None:
        super().__init__(convert_charrefs=True)
        self.base = base
        self.quotes: list[QuoteRef] = []
        self.links: Counter[LinkRef] = Counter()
        self.stack: list[str] = []  # open elements: "quote", "onebox" or "" (any other)

    def _inside(self, what: str) -> bool:
        return what in self.stack

    def _add(self, value: str | None, kind: str) -> None:
        if value:
            link = _as(normalize_url(value, self.base), kind)
            if link is not None:
                self.links[link] += 1

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {k: v or "" for k, v in attrs}
        classes = set(attr.get("class", "").split())
        role = ""
        if tag == "aside" and "quote" in classes:
            if not self._inside("quote"):
                topic, number = _id(attr.get("data-topic", "")), _id(attr.get("data-post", ""))
                if topic is not None and number is not None:
                    self.quotes.append(QuoteRef(topic, None, number, attr.get("data-username", "")))
            role = "quote"
        elif not self._inside("quote") and not self._inside("onebox"):
            role = self._content(tag, attr, classes)
        if tag not in _VOID:
            self.stack.append(role)

    def _content(self, tag: str, attr: dict[str, str], classes: set[str]) -> str:
        """Count what the element links to; "onebox" when its inside repeats that link."""
        if "lazy-video-container" in classes or "video-onebox" in classes:
            page = attr.get("data-video-url") or _video_page(attr)
            if not page:
                return "player"  # its link inside is the video
            self._add(page, VIDEO)
            return "onebox"
        if tag == "aside" and "onebox" in classes:
            url = attr.get("data-onebox-src", "")
            link = normalize_url(url, self.base) if url else None
            self._add(url, VIDEO if link and _is_video_host(link.domain) else LINK)
            return "onebox"
        if tag in ("video", "iframe") or (tag == "source" and self._inside("video")):
            self._add(attr.get("src"), VIDEO)
        elif tag == "img" and not classes & _SKIPPED_IMAGES and not self._inside("player"):
            self._add(attr.get("src"), IMAGE)
        elif tag == "a" and not classes & _SKIPPED_LINKS:
            href = attr.get("href", "")
            if href and not href.startswith("#"):
                link = normalize_url(href, self.base)
                played = "onebox" in classes and link is not None and _is_video_host(link.domain)
                self._add(href, VIDEO if played or self._inside("player") else LINK)
        return "video" if tag == "video" else ""

    def handle_endtag(self, tag: str) -> None:
        if tag not in _VOID and self.stack:
            self.stack.pop()


def _video_page(attr: dict[str, str]) -> str:
    """A lazy video player's page, from the provider and id Discourse writes on it."""
    provider, video = attr.get("data-provider-name", ""), attr.get("data-video-id", "")
    if not video:
        return ""
    pages = {
        "youtube": "https://www.youtube.com/watch?v={}",
        "vimeo": "https://vimeo.com/{}",
    }
    page = pages.get(provider.lower())
    return page.format(video) if page else ""


def read_cooked(html: str, base: str) -> Markup:
    """The quotes and links a Discourse post's cooked HTML holds (`base`: the forum's URL)."""
    reader = _CookedReader(base)
    reader.feed(html)
    reader.close()
    return Markup(tuple(reader.quotes), reader.links)


def read_post(kind: str, raw: str, cooked: str | None, base: str) -> Markup:
    """A post's markup as its forum writes it: bB's BBCode, Discourse's cooked HTML."""
    if kind == "discourse":
        return read_cooked(cooked or "", base)
    return read_bbcode(raw, base)
