"""Link hubs, the pages where artists list their accounts: Linktree-like pages (their links in
the `__NEXT_DATA__` JSON that Next.js embeds) and carrd-like one-page sites (plain `<a href>`s).

A Linktree link marked sensitive is `locked` with no `url` on the page; the page's visitor
unlocks it by accepting the warning, which POSTs the link ids to
`/api/profiles/validation/gates` and gets the links back with their URLs (AOTF did the same).

`hub_of` recognises a hub's real URL (`https://linktr.ee/<name>`, `https://<name>.carrd.co`);
`LinkHubs.links` reads it from the configured base URL.
"""

from __future__ import annotations

import json
import logging
import re
from html.parser import HTMLParser
from typing import Any, NamedTuple
from urllib.parse import quote, urlsplit

from sleuth.config import SourcesSettings
from sleuth.net.fetcher import Fetcher
from sleuth.sources.artpage import ArtSiteError, get_document, need, page_links

log = logging.getLogger(__name__)

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


class TreePage(NamedTuple):
    """A Linktree page's URLs, and the ids of its locked links (with the account they need)."""

    urls: list[str]
    account_id: int | None
    locked: list[int]


def linktree_links(html: str) -> TreePage:
    """The URLs of a Linktree page: `pageProps.links[].url`, then the social icons
    (`pageProps.account.socialLinks[].url`), and the locked links to unlock; `bad_response`
    without a readable `__NEXT_DATA__`."""
    parser = _NextData()
    parser.feed(html)
    parser.close()
    try:
        data: Any = json.loads("".join(parser.text))
        props = data["props"]["pageProps"]
    except (ValueError, KeyError, TypeError):
        raise ArtSiteError("bad_response", "Linktree page has no readable __NEXT_DATA__") from None
    entries = [e for e in props.get("links") or [] if isinstance(e, dict)]
    locked = [str(e.get("id")) for e in entries if e.get("locked") and not e.get("url")]
    account = props.get("account")
    account_id = None
    if isinstance(account, dict):
        entries += [e for e in account.get("socialLinks") or [] if isinstance(e, dict)]
        account_id = account.get("id")
    urls = [e["url"] for e in entries if isinstance(e.get("url"), str) and e["url"]]
    ids = [int(i) for i in locked if i.isdigit()]  # ids are numbers, some pages write strings
    return TreePage(urls, account_id if isinstance(account_id, int) else None, ids)


class LinkHubs:
    """Reads hubs at the Linktree and carrd base URLs of `SourcesSettings`."""

    def __init__(self, fetcher: Fetcher, sources: SourcesSettings) -> None:
        self.fetcher = fetcher
        self.sources = sources

    async def links(self, hub: HubRef) -> list[str]:
        """The hub's links, a Linktree's locked ones unlocked."""
        if hub.kind == "carrd":
            url = self.sources.carrd_url.replace("{name}", quote(hub.name))
            html = await get_document(
                self.fetcher, url, what=f"carrd page {hub.name}", expect="html"
            )
            return page_links(html)
        base = self.sources.linktree_url.rstrip("/")
        html = await get_document(
            self.fetcher,
            f"{base}/{quote(hub.name)}",
            what=f"linktree page {hub.name}",
            expect="html",
        )
        page = linktree_links(html)
        if not page.locked:
            return page.urls
        try:
            if page.account_id is None:
                raise ArtSiteError("bad_response", f"linktree page {hub.name} has no account id")
            return [*page.urls, *await self.unlock(hub.name, page.account_id, page.locked)]
        except ArtSiteError as exc:  # the open links are still the artist's
            log.warning(
                "linktree %s: %d locked links left locked: %s", hub.name, len(page.locked), exc
            )
            return page.urls

    async def unlock(self, name: str, account_id: int, link_ids: list[int]) -> list[str]:
        """The URLs of the locked links `link_ids` of Linktree account `account_id`."""
        what = f"linktree gates of {name}"
        data = await get_document(
            self.fetcher,
            f"{self.sources.linktree_url.rstrip('/')}/api/profiles/validation/gates",
            what=what,
            post_json={
                "accountId": account_id,
                "validationInput": {"acceptedSensitiveContent": link_ids},
                "requestSource": {"referrer": None},
            },
        )
        unlocked = need(need(data, dict, what).get("links"), list, f"{what}' links")
        return [e["url"] for e in unlocked if isinstance(e, dict) and isinstance(e.get("url"), str)]
