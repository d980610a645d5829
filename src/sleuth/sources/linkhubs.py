"""Link hubs, the pages where artists list their accounts: Linktree-like pages (their links in
the `__NEXT_DATA__` JSON that Next.js embeds) and carrd-like one-page sites (plain `<a href>`s).

`hub_of` recognises a hub's real URL (`https://linktr.ee/<name>`, `https://<name>.carrd.co`);
`LinkHubs.links` reads it from the configured base URL.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from typing import Any, NamedTuple
from urllib.parse import quote, urlsplit

from sleuth.config import SourcesSettings
from sleuth.net.fetcher import Fetcher
from sleuth.sources.artpage import ArtSiteError, get_document, page_links

_NAME = re.compile(r"^[a-z0-9_.-]{1,64}$")


class HubRef(NamedTuple):
    kind: str  # "linktree" or "carrd"
    name: str


def hub_of(url: str) -> HubRef | None:
    """The hub a URL is, or None."""
    try:
        parts = urlsplit(url.strip() if "://" in url else "https://" + url.strip())
    except ValueError:
        return None
    host = (parts.hostname or "").lower().removeprefix("www.")
    segments = [s for s in parts.path.split("/") if s]
    if host == "linktr.ee" and len(segments) == 1:
        name = segments[0].lower().removeprefix("@")
        return HubRef("linktree", name) if _NAME.match(name) else None
    if host.endswith(".carrd.co") and host.count(".") == 2:
        name = host.split(".")[0]
        return HubRef("carrd", name) if _NAME.match(name) else None
    return None


class _NextData(HTMLParser):
    """The text of `<script id="__NEXT_DATA__">`."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.inside = False
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.inside = tag == "script" and dict(attrs).get("id") == "__NEXT_DATA__"

    def handle_endtag(self, tag: str) -> None:
        self.inside = False

    def handle_data(self, data: str) -> None:
        if self.inside:
            self.text.append(data)


def linktree_links(html: str) -> list[str]:
    """The URLs of a Linktree page: `pageProps.links[].url`, then the social icons
    (`pageProps.account.socialLinks[].url`); `bad_response` without a readable `__NEXT_DATA__`."""
    parser = _NextData()
    parser.feed(html)
    parser.close()
    try:
        data: Any = json.loads("".join(parser.text))
        props = data["props"]["pageProps"]
    except (ValueError, KeyError, TypeError):
        raise ArtSiteError("bad_response", "Linktree page has no readable __NEXT_DATA__") from None
    entries = list(props.get("links") or [])
    account = props.get("account")
    if isinstance(account, dict):
        entries += account.get("socialLinks") or []
    return [e["url"] for e in entries if isinstance(e, dict) and isinstance(e.get("url"), str)]


class LinkHubs:
    """Reads hubs at the Linktree and carrd base URLs of `SourcesSettings`."""

    def __init__(self, fetcher: Fetcher, sources: SourcesSettings) -> None:
        self.fetcher = fetcher
        self.sources = sources

    async def links(self, hub: HubRef) -> list[str]:
        if hub.kind == "linktree":
            url = f"{self.sources.linktree_url.rstrip('/')}/{quote(hub.name)}"
        else:
            url = self.sources.carrd_url.replace("{name}", quote(hub.name))
        html = await get_document(
            self.fetcher, url, what=f"{hub.kind} page {hub.name}", expect="html"
        )
        return linktree_links(html) if hub.kind == "linktree" else page_links(html)
