"""Danbooru: a post's image files and date (`posts/{id}.json`), its artists' profile URLs
(`artists.json?search[name]=...` with `urls`, dead ones skipped), and the pages it was taken
from (`source`, `pixiv_id`).

A post with no artist tag (`artist_request`), or whose tagged artists list no URL, is matched
by its source instead: `artists.json?search[url_matches]=<source>` runs Danbooru's own source
extractor, which maps a Pixiv or DeviantArt work (or a post) to the artist who made it.

A post hidden from anonymous callers (banned, restricted tags) has no `file_url`,
`large_file_url` or variants: it is `hidden`, not an image to search for.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import SplitResult

from sleuth.net.fetcher import Fetcher
from sleuth.sources.artpage import ArtPage, ArtSiteError, get_document, need, parse_time

SITE = "danbooru"
HOSTS = frozenset({"danbooru.donmai.us", "safebooru.donmai.us", "betabooru.donmai.us"})
_POST_PATH = re.compile(r"^/posts/([0-9]{1,12})(?:\.json)?/?$")
# Variants worth downloading, beside file_url and large_file_url; previews are too small.
_VARIANTS = ("original", "sample", "720x720")


def post_id(url: SplitResult) -> str | None:
    """The post id of a Danbooru post URL, None for another page of the site."""
    match = _POST_PATH.match(url.path)
    return match.group(1) if match else None


class Danbooru:
    """Reads posts and artists from the Danbooru at `base_url`."""

    def __init__(self, fetcher: Fetcher, base_url: str) -> None:
        self.fetcher = fetcher
        self.base = base_url.rstrip("/")

    async def page(self, url: str, post: str) -> ArtPage:
        data = await get_document(
            self.fetcher, f"{self.base}/posts/{post}.json", what=f"Danbooru post {post}"
        )
        need(data, dict, f"Danbooru post {post}")
        if "id" not in data:
            raise ArtSiteError("bad_response", f"Danbooru post {post} has no id")
        images = _image_urls(data)
        if not images:
            raise ArtSiteError("hidden", f"Danbooru post {post} shows no file to anonymous callers")
        artists = tuple(str(data.get("tag_string_artist") or "").split())
        links: list[str] = []
        for artist in artists:
            links += await self.artist_urls(artist)
        sources = _sources(data)
        for source in sources:
            if links:
                break
            links += await self.artist_urls(source, key="url_matches")
        return ArtPage(
            site=SITE,
            url=url,
            image_urls=images,
            created_at=parse_time(data.get("created_at")),
            artists=artists,
            links=tuple(dict.fromkeys(links)),
            sources=sources,
        )

    async def artist_urls(self, value: str, *, key: str = "name") -> list[str]:
        """The active profile URLs of the artists found by `search[key]=value`: the artist
        tagged `value` (`name`), or the one whose work or account `value` is (`url_matches`)."""
        what = f"Danbooru artists with {key} {value}"
        found = await get_document(
            self.fetcher,
            f"{self.base}/artists.json",
            what=what,
            params={
                f"search[{key}]": value,
                "only": "id,name,other_names,group_name,is_banned,is_deleted,urls",
            },
        )
        out = []
        for artist in need(found, list, what):
            if not isinstance(artist, dict) or artist.get("is_deleted"):
                continue
            for entry in artist.get("urls") or []:
                if isinstance(entry, dict) and entry.get("is_active") and entry.get("url"):
                    out.append(str(entry["url"]))
        return out


def _sources(post: dict[str, Any]) -> tuple[str, ...]:
    """The post's `source` URL, and its Pixiv work when `pixiv_id` names one the source does not."""
    out = []
    source = post.get("source")
    if isinstance(source, str) and source.startswith(("http://", "https://")):
        out.append(source)
    pixiv_id = post.get("pixiv_id")
    if isinstance(pixiv_id, int) and not any(str(pixiv_id) in s for s in out):
        out.append(f"https://www.pixiv.net/artworks/{pixiv_id}")
    return tuple(out)


def _image_urls(post: dict[str, Any]) -> tuple[str, ...]:
    """file_url (the original), large_file_url (its sample), then the variants largest first."""
    urls = [post.get("file_url"), post.get("large_file_url")]
    asset = post.get("media_asset")
    variants = asset.get("variants") if isinstance(asset, dict) else None
    sized = [
        v
        for v in variants or []
        if isinstance(v, dict) and v.get("type") in _VARIANTS and isinstance(v.get("url"), str)
    ]
    sized.sort(key=lambda v: -(int(v.get("width") or 0) * int(v.get("height") or 0)))
    urls += [v["url"] for v in sized]
    return tuple(dict.fromkeys(u for u in urls if isinstance(u, str) and u))
