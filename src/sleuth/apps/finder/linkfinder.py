"""The link finder: an artwork's page URL → its images, its date, and the artist's accounts.

The page's site (Danbooru, Derpibooru, Furbooru, DeviantArt, Pixiv) gives the image URLs and
the links its artist left; those links are read as accounts, or, when they are link hubs
(Linktree, carrd), followed: the site's links are depth 1, a hub's links one deeper, and no hub
is read beyond `max_depth` (AOTF's MAX_DEPTH, 2) or twice. A booru's sources (the Pixiv or
DeviantArt work it was taken from) are read as artwork pages too, one hop further: their links
are depth 2, with one more hop allowed (AOTF's +1 from a booru source), and the sources of a
source are not followed. The accounts found, lower-cased and
de-duplicated, lose the names no artist has (AOTF's) and a configurable block list; each one
left is checked by the injected `exists` (the social connectors).

Failures are AOTF's error codes (`LinkFinderError.code`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import SplitResult, urlsplit

from sleuth.config import SourcesSettings
from sleuth.net.fetcher import Fetcher
from sleuth.sources import danbooru, deviantart, philomena, pixiv
from sleuth.sources.artpage import ArtPage, ArtSiteError
from sleuth.sources.linkhubs import HubRef, LinkHubs, hub_of
from sleuth.sources.profiles import AccountRef, links_in_text, parse_profile_url, unique

log = logging.getLogger(__name__)

MAX_DEPTH = 2
EXCLUDED_NAMES = frozenset({"deviantart", "twitter", "derpibooru", "patreon"})
"""Accounts of the sites themselves, linked from every page footer: never an artist (AOTF)."""

CODES = frozenset(
    {
        "UNSUPPORTED_WEBSITE",  # not a site the finder reads
        "NOT_AN_ARTWORK_PAGE",  # a page of such a site, but no artwork (or none shown)
        "NO_TWITTER_ACCOUNT_FOUND",  # no account named anywhere
        "NO_VALID_TWITTER_ACCOUNT_FOUND",  # accounts named, none of them exists
        "PROCESSING_ERROR",  # the site could not be read (see `retryable`)
    }
)

Exists = Callable[[AccountRef], Awaitable[bool]]


class LinkFinderError(Exception):
    """Why an artwork URL gave no accounts: `code` is one of `CODES`, `detail` for people."""

    def __init__(self, code: str, detail: str, *, retryable: bool = False) -> None:
        if code not in CODES:
            raise ValueError(f"unknown link finder code {code!r}")
        super().__init__(code, detail)
        self.code = code
        self.detail = detail
        self.retryable = retryable

    def __str__(self) -> str:
        return f"{self.code}: {self.detail}"


@dataclass(frozen=True)
class LinkFinderResult:
    """An artwork and its artist's accounts that exist, in the order they were found."""

    url: str
    site: str
    image_urls: tuple[str, ...]  # largest first
    created_at: datetime | None
    artists: tuple[str, ...]  # the artist names the site gives
    accounts: tuple[AccountRef, ...]
    image_headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Link:
    """A link to read: found at `depth`, no hub followed at `limit` or deeper; a booru's
    `source` may be an artwork page, read for its own links."""

    url: str
    depth: int
    limit: int
    source: bool = False


def _links_of(page: ArtPage, depth: int, limit: int) -> list[_Link]:
    """The page's links and those written in its texts, found at `depth`."""
    urls = [*page.links, *(link for text in page.texts for link in links_in_text(text))]
    return [_Link(url, depth, limit) for url in urls]


def _split(url: str) -> SplitResult:
    text = url.strip()
    try:
        return urlsplit(text if "://" in text else "https://" + text)
    except ValueError:
        raise LinkFinderError("UNSUPPORTED_WEBSITE", f"{url[:256]!r} is not a URL") from None


class LinkFinder:
    """Finds an artwork's accounts through the sites at the base URLs of `sources`.

    `exists` is asked about every account found, concurrently; an exception it raises (a
    network down) goes to the caller unchanged, as the request's processing error. A
    `block_list` entry is a name (blocked on every network) or an `AccountRef` as `str` writes
    it (`x:@name`, `mastodon:@name@server`)."""

    def __init__(
        self,
        fetcher: Fetcher,
        sources: SourcesSettings,
        exists: Exists,
        *,
        block_list: Iterable[str] = (),
        max_depth: int = MAX_DEPTH,
    ) -> None:
        self.exists = exists
        self.blocked = frozenset(b.strip().lower().lstrip("@") for b in block_list)
        self.max_depth = max_depth
        self.hubs = LinkHubs(fetcher, sources)
        self.danbooru = danbooru.Danbooru(fetcher, sources.danbooru_url)
        self.philomena = {
            "derpibooru": philomena.Philomena(fetcher, "derpibooru", sources.derpibooru_url),
            "furbooru": philomena.Philomena(fetcher, "furbooru", sources.furbooru_url),
        }
        self.deviantart = deviantart.DeviantArt(
            fetcher, sources.deviantart_url, sources.deviantart_oembed_url
        )
        self.pixiv = pixiv.Pixiv(fetcher, sources.pixiv_url)

    async def find(self, url: str) -> LinkFinderResult:
        return await self.result(await self.page(url))

    async def result(self, page: ArtPage) -> LinkFinderResult:
        """The page's accounts that exist (`find`'s second half, for a caller that downloads
        the page's image meanwhile)."""
        found = [r for r in await self.accounts(page) if not self.is_blocked(r)]
        if not found:
            raise LinkFinderError("NO_TWITTER_ACCOUNT_FOUND", f"{page.site} names no account")
        checks = await asyncio.gather(*(self.exists(ref) for ref in found))
        valid = tuple(ref for ref, ok in zip(found, checks, strict=True) if ok)
        if not valid:
            names = ", ".join(str(r) for r in found)
            raise LinkFinderError("NO_VALID_TWITTER_ACCOUNT_FOUND", f"none of {names} exists")
        return LinkFinderResult(
            page.url,
            page.site,
            page.image_urls,
            page.created_at,
            page.artists,
            valid,
            page.image_headers,
        )

    async def page(self, url: str) -> ArtPage:
        """The artwork page at `url`, read from its site."""
        parts = _split(url)
        host = (parts.hostname or "").lower()
        bare = host.removeprefix("www.")
        try:
            if host in danbooru.HOSTS:
                post = danbooru.post_id(parts)
                if post is not None:
                    return await self.danbooru.page(url, post)
            elif site := next((s for s, h in philomena.HOSTS.items() if bare in h), None):
                image = philomena.image_id(parts)
                if image is not None:
                    return await self.philomena[site].page(url, image)
            elif deviantart.claims(host):
                work = deviantart.deviation(parts)
                if work is not None:
                    return await self.deviantart.page(url, work)
            elif host in pixiv.HOSTS:
                ref = pixiv.illust_ref(parts)
                if ref is not None:
                    return await self.pixiv.page(url, ref)
            else:
                raise LinkFinderError("UNSUPPORTED_WEBSITE", f"{host or url[:256]!r} is not read")
        except ArtSiteError as exc:
            if exc.reason in ("not_found", "hidden", "no_such_image"):
                raise LinkFinderError("NOT_AN_ARTWORK_PAGE", str(exc)) from None
            raise LinkFinderError("PROCESSING_ERROR", str(exc), retryable=exc.retryable) from None
        raise LinkFinderError("NOT_AN_ARTWORK_PAGE", f"{url[:256]} is no artwork's page")

    async def accounts(self, page: ArtPage) -> list[AccountRef]:
        """Every account the page's links name, directly, through hubs or through the pages
        it was taken from (breadth first; the hubs and pages of one depth read at once)."""
        todo = _links_of(page, 1, self.max_depth)
        todo += [_Link(source, 1, self.max_depth + 1, source=True) for source in page.sources]
        seen_hubs: set[HubRef] = set()
        seen_pages = {page.url}
        refs: list[AccountRef] = []
        while todo:
            reads: list[Awaitable[list[_Link]]] = []
            for link in todo:
                ref = parse_profile_url(link.url)
                hub = None if ref is not None else hub_of(link.url)
                if ref is not None:
                    refs.append(ref)
                elif hub is not None:
                    if hub not in seen_hubs and link.depth < link.limit:
                        seen_hubs.add(hub)
                        reads.append(self._hub_links(hub, link))
                elif link.source and link.url not in seen_pages:
                    seen_pages.add(link.url)
                    reads.append(self._source_links(link, page.url))
            todo = [found for links in await asyncio.gather(*reads) for found in links]
        return unique(refs)

    async def _hub_links(self, hub: HubRef, link: _Link) -> list[_Link]:
        """The links of the hub `link` names, one deeper; none when it cannot be read."""
        try:
            found = await self.hubs.links(hub)
        except ArtSiteError as exc:
            log.info("link hub %s/%s skipped: %s", hub.kind, hub.name, exc)
            return []
        return [_Link(url, link.depth + 1, link.limit) for url in found]

    async def _source_links(self, link: _Link, of: str) -> list[_Link]:
        """The links of the artwork page a booru's source is, one deeper; none when it is no
        artwork page the finder reads (its own sources are not followed)."""
        try:
            work = await self.page(link.url)
        except LinkFinderError as exc:
            log.info("source %s of %s skipped: %s", link.url, of, exc)
            return []
        return _links_of(work, link.depth + 1, link.limit)

    def is_blocked(self, ref: AccountRef) -> bool:
        """A site's own account, or one on the block list (by name, or as `str(ref)`)."""
        name = ref.username
        return name in EXCLUDED_NAMES or name in self.blocked or str(ref) in self.blocked
