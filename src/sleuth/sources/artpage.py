"""What every art-site connector answers (`ArtPage`) and how it fails (`ArtSiteError`), with
the one way they ask a site for a document.

A connector turns a page URL a user pasted into the artwork's image URLs (largest first), its
date, and the links where the artist's accounts may be named; `apps/finder/linkfinder.py`
reads those links. Requests go to the base URL of `SourcesSettings`, never to the pasted host.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from html.parser import HTMLParser
from typing import Any

from sleuth.net.errors import FetchError
from sleuth.net.fetcher import Fetcher, SourceProfile

ERROR_REASONS = frozenset(
    {
        "not_found",  # no such page (404, an API's "not found", a deleted image)
        "hidden",  # the page exists but its image is not shown to anonymous callers
        "no_such_image",  # a `#N` beyond the work's images
        "bad_response",  # an answer that is not the document the API documents
        "unavailable",  # the site could not be asked (network, 5xx, 429, 403)
    }
)


class ArtSiteError(Exception):
    """An art site's page that cannot be read: `reason` is one of `ERROR_REASONS`; `retryable`
    when asking again later may work; `status` the HTTP status that said so, if one did."""

    def __init__(
        self, reason: str, detail: str, *, retryable: bool = False, status: int | None = None
    ) -> None:
        if reason not in ERROR_REASONS:
            raise ValueError(f"unknown art site error reason {reason!r}")
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail
        self.retryable = retryable
        self.status = status

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}"


@dataclass(frozen=True)
class ArtPage:
    """An artwork as its page shows it.

    `image_urls` are largest first (the original, then smaller copies to fall back on);
    `image_headers` must go with their downloads (Pixiv's Referer); `links` are URLs (or
    handles) that may name the artist's accounts or a link hub; `texts` are free texts (a bio)
    in which more may be written."""

    site: str
    url: str
    image_urls: tuple[str, ...]
    created_at: datetime | None
    artists: tuple[str, ...]
    links: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    texts: tuple[str, ...] = ()
    image_headers: Mapping[str, str] = field(default_factory=dict)


async def get_document(
    fetcher: Fetcher,
    url: str,
    *,
    what: str,
    params: Mapping[str, str | int] | None = None,
    expect: str = "json",
    profile: SourceProfile | None = None,
    post_json: Any = None,
) -> Any:
    """GET a JSON document (or, with `expect="html"`, a page's text; with `post_json`, POST
    that body instead), its failures turned into `ArtSiteError`s that say what was asked
    (`what`): 404/410 `not_found`, a body that does not parse `bad_response`, anything else
    `unavailable`."""
    options: dict[str, Any] = {"params": dict(params or {})}
    if post_json is not None:
        options["json"] = post_json
    if expect == "json":
        options["expect"] = "json"
    if profile is not None:
        options["profile"] = profile
    try:
        method = "GET" if post_json is None else "POST"
        result = await fetcher.request(method, url, **options)
    except FetchError as exc:
        if exc.status in (404, 410):
            raise ArtSiteError("not_found", f"{what}: {exc.detail}", status=exc.status) from None
        if exc.reason in ("bad_json", "too_large"):
            raise ArtSiteError("bad_response", f"{what}: {exc.detail}") from None
        raise ArtSiteError(
            "unavailable", f"{what}: {exc}", retryable=exc.retryable, status=exc.status
        ) from None
    if expect == "json":
        return result.data
    return result.body.decode("utf-8", "replace")


def need(data: Any, kind: type, what: str) -> Any:
    """`data` if it is a `kind` (dict, list, str...), else `bad_response` naming `what`."""
    if not isinstance(data, kind):
        raise ArtSiteError("bad_response", f"{what} is {type(data).__name__}, not {kind.__name__}")
    return data


def parse_time(value: Any) -> datetime | None:
    """An ISO-8601 moment as the APIs write it (`Z` or an offset); None when absent or not one."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            href = dict(attrs).get("href")
            if href and href.startswith(("http://", "https://")):
                self.hrefs.append(href)


def page_links(html: str) -> list[str]:
    """The absolute `<a href>` URLs of an HTML page, in order."""
    parser = _Anchors()
    parser.feed(html)
    parser.close()
    return parser.hrefs
