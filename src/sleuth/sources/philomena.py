"""Philomena boorus (Derpibooru, Furbooru): an image's files and date
(`api/v1/json/images/{id}`, a merged image followed to the one it duplicates) and its artists'
accounts, which Philomena keeps nowhere but in the `source_urls` of their images
(`search/images?q=artist:<name>`).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import SplitResult

from sleuth.net.fetcher import Fetcher
from sleuth.sources.artpage import ArtPage, ArtSiteError, get_document, need, parse_time

HOSTS = {
    "derpibooru": frozenset({"derpibooru.org", "trixiebooru.org"}),
    "furbooru": frozenset({"furbooru.org"}),
}
MAX_MERGES = 5
"""How many `duplicate_of` hops are followed before the chain is called broken."""
EVERYTHING_FILTER = "56027"  # Derpibooru's "Everything" filter: nothing hidden from a search
_IMAGE_PATH = re.compile(r"^/(?:images/)?([0-9]{1,12})/?$")


def image_id(url: SplitResult) -> str | None:
    """The image id of a Philomena image URL (`/images/N` or `/N`)."""
    match = _IMAGE_PATH.match(url.path)
    return match.group(1) if match else None


class Philomena:
    """Reads images from the Philomena site `site` at `base_url`."""

    def __init__(self, fetcher: Fetcher, site: str, base_url: str) -> None:
        self.fetcher = fetcher
        self.site = site
        self.base = base_url.rstrip("/")

    async def page(self, url: str, image: str) -> ArtPage:
        seen = [image]
        while True:
            data = await self._image(seen[-1])
            merged = data.get("duplicate_of")
            if merged is None:
                break
            if len(seen) > MAX_MERGES or str(merged) in seen:
                chain = " -> ".join([*seen, str(merged)])
                raise ArtSiteError("bad_response", f"{self.site} merge chain is broken: {chain}")
            seen.append(str(merged))
        reps = data.get("representations")
        if data.get("deletion_reason") or data.get("hidden_from_users") or not reps:
            reason = data.get("deletion_reason") or "hidden"
            raise ArtSiteError("not_found", f"{self.site} image {seen[-1]} is deleted: {reason}")
        need(reps, dict, f"{self.site} image {seen[-1]} representations")
        images = tuple(
            dict.fromkeys(u for u in (reps.get("full"), reps.get("large")) if isinstance(u, str))
        )
        tags = [t for t in data.get("tags") or [] if isinstance(t, str)]
        artists = tuple(t.removeprefix("artist:") for t in tags if t.startswith("artist:"))
        links: list[str] = []
        for artist in artists:
            links += await self.artist_sources(artist)
        return ArtPage(
            site=self.site,
            url=url,
            image_urls=images,
            created_at=parse_time(data.get("created_at")),
            artists=artists,
            links=tuple(dict.fromkeys(links)),
            sources=tuple(_sources(data)),
        )

    async def _image(self, image: str) -> dict[str, Any]:
        what = f"{self.site} image {image}"
        data = await get_document(
            self.fetcher, f"{self.base}/api/v1/json/images/{image}", what=what
        )
        body = need(need(data, dict, what).get("image"), dict, f"{what}'s image")
        return dict(body)

    async def artist_sources(self, name: str) -> list[str]:
        """Every source URL of the artist's images (the first page of 50: an artist's own
        accounts appear on most of them)."""
        what = f"{self.site} images of artist:{name}"
        data = await get_document(
            self.fetcher,
            f"{self.base}/api/v1/json/search/images",
            what=what,
            params={"q": f"artist:{name}", "per_page": 50, "filter_id": EVERYTHING_FILTER},
        )
        out: list[str] = []
        for image in need(need(data, dict, what).get("images"), list, what):
            if isinstance(image, dict):
                out += _sources(image)
        return out


def _sources(image: dict[str, Any]) -> list[str]:
    urls = [image.get("source_url"), *(image.get("source_urls") or [])]
    return [u for u in urls if isinstance(u, str) and u]
