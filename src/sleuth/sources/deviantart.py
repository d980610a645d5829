"""DeviantArt without an account: a deviation's image, author and date from oEmbed
(`backend.deviantart.com/oembed?url=`), and the links of the author's `/about` page.
"""

from __future__ import annotations

import re
from urllib.parse import SplitResult, quote

from sleuth.net.fetcher import Fetcher
from sleuth.sources.artpage import (
    ArtPage,
    ArtSiteError,
    get_document,
    need,
    page_links,
    parse_time,
)

SITE = "deviantart"
_DEVIATION_PATH = re.compile(r"^/([A-Za-z0-9_-]{1,64})/art/([A-Za-z0-9_-]*?-?[0-9]{1,12})/?$")
_SUBDOMAIN_PATH = re.compile(r"^/art/([A-Za-z0-9_-]*?-?[0-9]{1,12})/?$")
_AUTHOR_URL = re.compile(r"^https?://(?:www\.)?deviantart\.com/([A-Za-z0-9_-]{1,64})/?$")


def claims(host: str) -> bool:
    return host in ("deviantart.com", "www.deviantart.com") or host.endswith(".deviantart.com")


def deviation(url: SplitResult) -> str | None:
    """The real page URL of a deviation (`deviantart.com/<user>/art/<slug>-<id>`, or the old
    `<user>.deviantart.com/art/...`), None for another page."""
    host = (url.hostname or "").lower()
    match = _DEVIATION_PATH.match(url.path)
    if match and host in ("deviantart.com", "www.deviantart.com"):
        return f"https://www.deviantart.com/{match.group(1)}/art/{match.group(2)}"
    match = _SUBDOMAIN_PATH.match(url.path)
    if match and host.endswith(".deviantart.com") and host.count(".") == 2:
        return f"https://www.deviantart.com/{host.split('.')[0]}/art/{match.group(1)}"
    return None


class DeviantArt:
    """Asks the oEmbed endpoint at `oembed_url` and the site at `base_url`."""

    def __init__(self, fetcher: Fetcher, base_url: str, oembed_url: str) -> None:
        self.fetcher = fetcher
        self.base = base_url.rstrip("/")
        self.oembed = oembed_url

    async def page(self, url: str, deviation_url: str) -> ArtPage:
        what = f"DeviantArt oEmbed of {deviation_url}"
        data = need(
            await get_document(
                self.fetcher,
                self.oembed,
                what=what,
                params={"url": deviation_url, "format": "json"},
            ),
            dict,
            what,
        )
        image = data.get("url")
        if not isinstance(image, str) or not image:
            raise ArtSiteError("hidden", f"{what} gives no image URL")
        author_url = data.get("author_url")
        author = _AUTHOR_URL.match(author_url) if isinstance(author_url, str) else None
        links: list[str] = []
        if author:
            links = await self.about_links(author.group(1))
        return ArtPage(
            site=SITE,
            url=url,
            image_urls=(image,),
            created_at=parse_time(data.get("pubdate")),
            artists=(author.group(1),) if author else (),
            links=tuple(links),
        )

    async def about_links(self, user: str) -> list[str]:
        """The links of the user's `/about` page; none when the page is gone."""
        try:
            html = await get_document(
                self.fetcher,
                f"{self.base}/{quote(user)}/about",
                what=f"DeviantArt {user}/about",
                expect="html",
            )
        except ArtSiteError as exc:
            if exc.reason == "not_found":
                return []
            raise
        return page_links(html)
