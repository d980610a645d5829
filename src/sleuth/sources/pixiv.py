"""Pixiv's web endpoints: an illustration (`/ajax/illust/{id}`, its pages for `#N`), and its
author's links (`/ajax/user/{id}?full=1`: `webpage`, `social`, the `comment` text).

Pixiv's image host answers 403 unless the request carries `Referer: https://www.pixiv.net/`:
the page's `image_headers` say so, for whoever downloads the files.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple
from urllib.parse import SplitResult, parse_qs

from sleuth.net.fetcher import Fetcher
from sleuth.sources.artpage import ArtPage, ArtSiteError, get_document, need, parse_time

SITE = "pixiv"
HOSTS = frozenset({"pixiv.net", "www.pixiv.net"})
REFERER = "https://www.pixiv.net/"
MAX_IMAGE_NUMBER = 200
_ARTWORK_PATH = re.compile(r"^/(?:[a-z]{2}/)?artworks/([0-9]{1,12})/?$")


class IllustRef(NamedTuple):
    illust: str
    number: int  # 1-based: which image of the work (`#N`)


def illust_ref(url: SplitResult) -> IllustRef | None:
    """`/artworks/<id>[#N]` (also `/en/artworks/...`, `member_illust.php?illust_id=`), N in
    1..200 (default 1); None for another page or a number out of range."""
    match = _ARTWORK_PATH.match(url.path)
    if match:
        illust = match.group(1)
    elif url.path == "/member_illust.php":
        ids = parse_qs(url.query).get("illust_id", [])
        if not ids or not ids[0].isdigit():
            return None
        illust = ids[0]
    else:
        return None
    number = 1
    if url.fragment:
        if not url.fragment.isdigit():
            return None
        number = int(url.fragment)
    if not 1 <= number <= MAX_IMAGE_NUMBER:
        return None
    return IllustRef(illust, number)


def _body(data: Any, what: str) -> Any:
    """The `body` of a Pixiv ajax answer, or the error its `message` states."""
    need(data, dict, what)
    if data.get("error"):
        raise ArtSiteError("not_found", f"{what}: {data.get('message') or 'error'}")
    return data.get("body")


class Pixiv:
    """Reads illustrations and users from the Pixiv at `base_url`."""

    def __init__(self, fetcher: Fetcher, base_url: str) -> None:
        self.fetcher = fetcher
        self.base = base_url.rstrip("/")

    async def page(self, url: str, ref: IllustRef) -> ArtPage:
        what = f"Pixiv illust {ref.illust}"
        body = need(
            _body(
                await get_document(
                    self.fetcher, f"{self.base}/ajax/illust/{ref.illust}", what=what
                ),
                what,
            ),
            dict,
            what,
        )
        count = int(body.get("pageCount") or 1)
        if ref.number > count:
            raise ArtSiteError("no_such_image", f"{what} has {count} images, not {ref.number}")
        urls = body.get("urls") or {}
        if ref.number > 1:
            pages_what = f"Pixiv illust {ref.illust} pages"
            pages = need(
                _body(
                    await get_document(
                        self.fetcher, f"{self.base}/ajax/illust/{ref.illust}/pages", what=pages_what
                    ),
                    pages_what,
                ),
                list,
                pages_what,
            )
            if ref.number > len(pages):
                raise ArtSiteError("no_such_image", f"{pages_what}: no image {ref.number}")
            urls = need(pages[ref.number - 1], dict, pages_what).get("urls") or {}
        need(urls, dict, f"{what} urls")
        images = tuple(
            dict.fromkeys(
                u for u in (urls.get("original"), urls.get("regular")) if isinstance(u, str) and u
            )
        )
        if not images:
            raise ArtSiteError("hidden", f"{what} shows no image (login-only work)")
        links, texts = await self.user_links(str(body.get("userId") or ""))
        return ArtPage(
            site=SITE,
            url=url,
            image_urls=images,
            created_at=parse_time(body.get("createDate") or body.get("uploadDate")),
            artists=tuple(str(body[k]) for k in ("userAccount",) if body.get(k)),
            links=tuple(links),
            texts=tuple(texts),
            image_headers={"Referer": REFERER},
        )

    async def user_links(self, user: str) -> tuple[list[str], list[str]]:
        """The user's `webpage` and `social` URLs, and their `comment`; none when the user is
        gone or refused (403/404), as Pixiv answers for banned accounts."""
        if not user.isdigit():
            return [], []
        what = f"Pixiv user {user}"
        try:
            data = await get_document(
                self.fetcher, f"{self.base}/ajax/user/{user}", what=what, params={"full": 1}
            )
            body = need(_body(data, what), dict, what)
        except ArtSiteError as exc:
            if exc.reason == "not_found" or exc.status == 403:
                return [], []
            raise
        links = (
            [body["webpage"]] if isinstance(body.get("webpage"), str) and body["webpage"] else []
        )
        social = body.get("social")
        if isinstance(social, dict):
            for entry in social.values():
                if isinstance(entry, dict) and isinstance(entry.get("url"), str):
                    links.append(entry["url"])
        comment = body.get("comment")
        return links, [comment] if isinstance(comment, str) and comment else []
