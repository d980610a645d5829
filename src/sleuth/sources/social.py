"""What every social connector returns, whatever the network: accounts, posts with their images,
pages of them with the cursor of the next one, and one error type with a stable reason code.

The finder scans an account's posts and the graph crawler pages followers; both branch on these
types only, never on a network's JSON. `get_json` is the one way a connector asks its API: it
goes through `sleuth.net.fetcher` (so rate-limit headers feed the shared budgets) and turns
every failure into a `SourceError` whose `reason` a caller can act on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from sleuth.net.errors import FetchError
from sleuth.net.fetcher import Fetcher, FetchResult, SourceProfile

T = TypeVar("T")

REASONS = frozenset(
    {
        "not_found",  # no such account or post
        "private",  # protected / locked: the network will not show it anonymously
        "suspended",  # the account exists but is suspended
        "unauthorized",  # the server refuses anonymous calls, or the token is bad
        "forbidden",  # the token's tier or app may not call this endpoint
        "rate_limited",  # the budget is spent; `retry_after` says for how long
        "disabled",  # the connector is not configured (X without a bearer token)
        "bad_input",  # a handle, URL or id the network cannot have
        "bad_response",  # the answer is not what the API documents
        "stuck_cursor",  # the server answered the same cursor again
        "unavailable",  # network failure or 5xx: try again later
    }
)

_URL = re.compile(r"https?://[^\s<>\"')\]]+")
_HREF = re.compile(r"""href\s*=\s*["']([^"']+)["']""", re.IGNORECASE)


class SourceError(Exception):
    """A connector call that failed: `reason` is one of `REASONS`, `message` says why for
    people, `status` is the HTTP status when there was one, `retry_after` the seconds a
    rate limit asks to wait."""

    def __init__(
        self,
        reason: str,
        message: str,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown source error reason {reason!r}")
        super().__init__(reason, message, status, retry_after)
        self.reason = reason
        self.message = message
        self.status = status
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        """Whether the same call can succeed later without anyone changing anything."""
        return self.reason in ("rate_limited", "unavailable")

    def __str__(self) -> str:
        text = f"{self.reason}: {self.message}"
        if self.status is not None:
            text += f" (HTTP {self.status})"
        return text


@dataclass(frozen=True)
class Account:
    """An account on one network. `id` is the network's own (X numeric id, Mastodon id on its
    home server, Bluesky DID); `acct` is how people write it (`user@server` on Mastodon);
    `links` are the URLs of its profile (Mastodon fields and note, Bluesky description and
    website, X url and description), where an artist's other accounts are found."""

    network: str
    id: str
    username: str
    server: str
    acct: str
    display_name: str
    url: str
    followers_count: int | None = None
    following_count: int | None = None
    posts_count: int | None = None
    private: bool = False
    created_at: datetime | None = None
    links: tuple[str, ...] = ()


@dataclass(frozen=True)
class Image:
    """One image of a post: the URL to download (the original where the API names one), its
    size when known, and its place `position` of `count` in the post."""

    url: str
    width: int | None
    height: int | None
    position: int
    count: int

    @property
    def label(self) -> str:
        """`i/n`, as results show it."""
        return f"{self.position}/{self.count}"


@dataclass(frozen=True)
class Post:
    """A post and its images in order; reposts and replies are flagged, not hidden, so each
    caller decides (a scan of an artist's own work drops reposts)."""

    network: str
    id: str
    account_id: str
    url: str
    created_at: datetime | None
    text: str
    images: tuple[Image, ...] = ()
    is_repost: bool = False
    is_reply: bool = False
    lang: str | None = None  # the language the network says it is in (ISO 639-1)


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list and the cursor of the next (None: the last). `hidden` says the
    owner hides this list (an empty page while the profile counts some)."""

    items: list[T]
    next: str | None
    hidden: bool = False
    errors: list[str] = field(default_factory=list)


def parse_time(value: Any) -> datetime | None:
    """An API timestamp (`2021-05-31T16:03:35.000Z`, with or without fraction or zone) as an
    aware UTC datetime; None for a missing or malformed one (a bad date loses only itself)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def urls_in_text(text: Any) -> list[str]:
    """The http(s) URLs written in plain text (a Bluesky bio), in order, without trailing
    punctuation."""
    if not isinstance(text, str):
        return []
    return [url.rstrip(".,;:!?") for url in _URL.findall(text)]


def hrefs_in_html(html: Any) -> list[str]:
    """The `href` targets of an HTML fragment (a Mastodon note or profile field)."""
    if not isinstance(html, str):
        return []
    return [url for url in _HREF.findall(html) if url.startswith(("http://", "https://"))]


def unique(values: list[str]) -> tuple[str, ...]:
    """The values in first-seen order without repeats or empties."""
    return tuple(dict.fromkeys(v for v in values if v))


def newer(post_id: str, than: str) -> bool:
    """Whether a post id is newer than another of the same network (snowflakes compare as
    numbers; Bluesky record keys as strings, being sortable TIDs)."""
    if post_id.isdigit() and than.isdigit():
        return int(post_id) > int(than)
    return post_id > than


def lang_code(value: Any) -> str | None:
    """A post's language tag as its lower-case primary subtag (`pt-BR` -> `pt`), or None."""
    if not isinstance(value, str) or not value:
        return None
    return value.split("-", 1)[0].lower()


def as_int(value: Any) -> int | None:
    """An integer field, or None when absent or not an integer (bools excluded)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def obj(data: Mapping[str, Any], key: str) -> dict[str, Any]:
    """The object at `data[key]`, or `{}` when absent or not an object (optional parts)."""
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def seq(data: Mapping[str, Any], key: str) -> list[Any]:
    """The list at `data[key]`, or `[]` when absent or not a list (optional parts)."""
    value = data.get(key)
    return value if isinstance(value, list) else []


def need(data: Any, kind: type, what: str) -> Any:
    """`data` if it is a `kind`, else a `bad_response` naming what was expected."""
    if not isinstance(data, kind):
        raise SourceError("bad_response", f"{what}: expected a JSON {kind.__name__}")
    return data


def text_field(data: Mapping[str, Any], key: str, what: str) -> str:
    """A required non-empty string field (ids are strings on every network)."""
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise SourceError("bad_response", f"{what}: no {key!r} string")
    return value


Classify = Callable[[FetchError], SourceError | None]


def from_fetch_error(exc: FetchError, what: str) -> SourceError:
    """The generic reading of a failed fetch: what a status means on every network."""
    retry = exc.retry_after
    if exc.reason == "rate_limited" or exc.status == 429:
        return SourceError("rate_limited", f"{what}: rate limited", exc.status, retry)
    if exc.status == 404:
        return SourceError("not_found", f"{what}: not found", 404)
    if exc.status == 401:
        return SourceError("unauthorized", f"{what}: {exc.detail}", 401)
    if exc.status == 403:
        return SourceError("forbidden", f"{what}: {exc.detail}", 403)
    if exc.reason in ("bad_json", "too_large", "protocol"):
        return SourceError("bad_response", f"{what}: {exc.detail}", exc.status)
    if exc.status is not None and 400 <= exc.status < 500:
        return SourceError("bad_input", f"{what}: {exc.detail}", exc.status)
    return SourceError("unavailable", f"{what}: {exc}", exc.status, retry)


async def get_json(
    fetcher: Fetcher,
    url: str,
    what: str,
    *,
    params: Mapping[str, str | int | None] | None = None,
    profile: SourceProfile | None = None,
    classify: Classify | None = None,
    budget: str = "",
) -> FetchResult:
    """GET `url` expecting JSON; a failure becomes a `SourceError` (the network's own reading
    from `classify` first, then the generic one). `what` names the call in messages; `budget`
    the host's rate-limit budget it draws on, for a host that counts endpoints apart."""
    options: dict[str, Any] = {"expect": "json", "budget": budget}
    if params:
        options["params"] = {k: v for k, v in params.items() if v is not None}
    if profile is not None:
        options["profile"] = profile
    try:
        return await fetcher.get(url, **options)
    except FetchError as exc:
        mapped = classify(exc) if classify is not None else None
        raise (mapped or from_fetch_error(exc, what)) from None


def error_document(exc: FetchError) -> dict[str, Any]:
    """The JSON object an error answer carried (`{}` when it had none), for a network's
    `classify` to read its error name."""
    try:
        data = json.loads(exc.body)
    except (ValueError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}
