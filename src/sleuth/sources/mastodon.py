"""Mastodon (any instance, anonymous REST): accounts, their statuses with media, followers.

A handle `user@server` is always read on its home server (`SourcesSettings.mastodon_url` with
`{server}`): another server knows a remote account only partly. Lists page by the `Link`
header (`net.paging`); the cursor handed back is the next link's `max_id`, which for
followers is Mastodon's internal follow id, so it is only ever taken from that header.
`X-RateLimit-*` headers (ISO-8601 reset) feed the shared budgets through the fetcher. Mastodon
counts its `/api/` paths, not the media files it may serve from the same host: its API calls
draw on the host's `api` budget, so a download of a post's image is not held back by them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sleuth.config import SourcesSettings
from sleuth.net.errors import FetchError
from sleuth.net.fetcher import Fetcher, SourceProfile
from sleuth.net.paging import link_url
from sleuth.sources.social import (
    Account,
    Image,
    Page,
    Post,
    SourceError,
    as_int,
    error_document,
    get_json,
    hrefs_in_html,
    lang_code,
    need,
    obj,
    parse_time,
    seq,
    text_field,
    unique,
)

NETWORK = "mastodon"
PROFILE = SourceProfile("mastodon")
STATUSES_LIMIT = 40  # the API's maximum per page
FOLLOWS_LIMIT = 80
ANONYMOUS_REFUSED = "This API requires an authenticated user"
_HANDLE = re.compile(r"^@?([A-Za-z0-9_]+)@([A-Za-z0-9.-]+\.[A-Za-z]{2,}|[A-Za-z0-9.-]+:\d+)$")
_PROFILE_URL = re.compile(r"^https?://([^/]+)/@([A-Za-z0-9_]+)(?:@([^/]+))?/?$")


def parse_handle(text: str) -> tuple[str, str]:
    """(username, home server) of `user@server`, `@user@server` or a profile URL
    `https://server/@user` (or `https://server/@user@home`, a remote profile)."""
    text = text.strip()
    match = _PROFILE_URL.match(text)
    if match:
        host, user, home = match.groups()
        return user, home or host
    match = _HANDLE.match(text)
    if not match:
        raise SourceError("bad_input", f"not a Mastodon handle or profile URL: {text!r}")
    return match.group(1), match.group(2).lower()


def api_budget(server: str) -> str:
    """The rate-limit budget of `server`'s API. Each instance counts its own, so the budget is
    named after the instance and not only after the host it is reached at: instances that
    share one host (a proxy in front of several, or the offline web) keep one budget each,
    and media files, on the same host or not, are not held back by the API's."""
    return f"api:{server}"[:120]


def base_url(settings: SourcesSettings, server: str) -> str:
    """Where requests for `server`'s API go."""
    return settings.mastodon_url.format(server=server).rstrip("/")


def classify_error(exc: FetchError) -> SourceError | None:
    """Mastodon's reading of a failed call, keeping its `error` text (an instance closed to
    anonymous calls says so). None: the generic reading applies."""
    if exc.status == 401:
        message = str(error_document(exc).get("error") or "401 Unauthorized")
        if message == ANONYMOUS_REFUSED:
            message += " (the instance refuses anonymous API calls)"
        return SourceError("unauthorized", message, 401)
    if exc.status == 404:
        message = str(error_document(exc).get("error") or "not found")
        return SourceError("not_found", message, 404)
    return None


def parse_account(data: Any, server: str) -> Account:
    """An Account entity as seen from `server`; `acct` is made absolute (`user@home`), links
    come from the profile fields' and the note's hrefs."""
    data = need(data, dict, "Mastodon account")
    username = text_field(data, "username", "Mastodon account")
    acct = str(data.get("acct") or username)
    home = acct.split("@", 1)[1] if "@" in acct else server
    fields = seq(data, "fields")
    links = [u for f in fields if isinstance(f, dict) for u in hrefs_in_html(f.get("value"))]
    links += hrefs_in_html(data.get("note"))
    return Account(
        network=NETWORK,
        id=text_field(data, "id", "Mastodon account"),
        username=username,
        server=home,
        acct=f"{username}@{home}",
        display_name=str(data.get("display_name") or ""),
        url=str(data.get("url") or f"https://{home}/@{username}"),
        followers_count=as_int(data.get("followers_count")),
        following_count=as_int(data.get("following_count")),
        posts_count=as_int(data.get("statuses_count")),
        private=bool(data.get("locked")),
        created_at=parse_time(data.get("created_at")),
        links=unique(links),
    )


def _media_url(media: Mapping[str, Any]) -> str | None:
    # The origin's file beats the viewing server's proxy copy: same bytes, one hop less.
    for key in ("remote_url", "url"):
        value = media.get(key)
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            return value
    return None


def parse_status(data: Any) -> Post:
    """A Status entity: its image attachments in order (url or remote_url, size from
    `meta.original`), a reblog flagged as a repost."""
    data = need(data, dict, "Mastodon status")
    account = need(data.get("account"), dict, "Mastodon status account")
    attachments = data.get("media_attachments")
    images = [
        m for m in (attachments if isinstance(attachments, list) else []) if isinstance(m, dict)
    ]
    images = [m for m in images if m.get("type") == "image" and _media_url(m)]
    shown = []
    for position, media in enumerate(images, start=1):
        meta = obj(media, "meta")
        original = obj(meta, "original")
        shown.append(
            Image(
                url=str(_media_url(media)),
                width=as_int(original.get("width")),
                height=as_int(original.get("height")),
                position=position,
                count=len(images),
            )
        )
    return Post(
        network=NETWORK,
        id=text_field(data, "id", "Mastodon status"),
        account_id=text_field(account, "id", "Mastodon status account"),
        url=str(data.get("url") or data.get("uri") or ""),
        created_at=parse_time(data.get("created_at")),
        text=str(data.get("content") or ""),
        images=tuple(shown),
        is_repost=data.get("reblog") is not None,
        is_reply=data.get("in_reply_to_id") is not None,
        lang=lang_code(data.get("language")),
    )


def next_max_id(link_header: str | None) -> str | None:
    """The `max_id` of a `Link` header's `rel="next"` target: the cursor of the next page."""
    target = link_url(link_header)
    if target is None:
        return None
    values = parse_qs(urlsplit(target).query).get("max_id")
    return values[0] if values else None


async def lookup(fetcher: Fetcher, settings: SourcesSettings, handle: str) -> Account:
    """The account `user@server` (or its profile URL), read on its home server."""
    username, server = parse_handle(handle)
    result = await get_json(
        fetcher,
        f"{base_url(settings, server)}/api/v1/accounts/lookup",
        f"Mastodon lookup of {username}@{server}",
        params={"acct": username},
        profile=PROFILE,
        classify=classify_error,
        budget=api_budget(server),
    )
    return parse_account(result.data, server)


async def account(
    fetcher: Fetcher, settings: SourcesSettings, server: str, account_id: str
) -> Account:
    """The account with this id on `server` (ids are per server: pass its home server's)."""
    if not account_id.isdigit():
        raise SourceError("bad_input", f"not a Mastodon account id: {account_id!r}")
    result = await get_json(
        fetcher,
        f"{base_url(settings, server)}/api/v1/accounts/{account_id}",
        f"Mastodon account {account_id} on {server}",
        profile=PROFILE,
        classify=classify_error,
        budget=api_budget(server),
    )
    return parse_account(result.data, server)


async def statuses(
    fetcher: Fetcher,
    settings: SourcesSettings,
    account: Account,
    *,
    max_id: str | None = None,
    since_id: str | None = None,
    only_media: bool = True,
    exclude_reblogs: bool = True,
    exclude_replies: bool = False,
    limit: int = STATUSES_LIMIT,
) -> Page[Post]:
    """One page of the account's statuses, newest first, on its home server: older than
    `max_id`, newer than `since_id`."""
    params: dict[str, str | int] = {"limit": limit}
    for key, flag in (
        ("only_media", only_media),
        ("exclude_reblogs", exclude_reblogs),
        ("exclude_replies", exclude_replies),
    ):
        if flag:
            params[key] = "true"
    if max_id:
        params["max_id"] = max_id
    if since_id:
        params["since_id"] = since_id
    result = await get_json(
        fetcher,
        f"{base_url(settings, account.server)}/api/v1/accounts/{account.id}/statuses",
        f"Mastodon statuses of {account.acct}",
        params=params,
        profile=PROFILE,
        classify=classify_error,
        budget=api_budget(account.server),
    )
    items = need(result.data, list, "Mastodon statuses")
    posts = [parse_status(item) for item in items]
    following = next_max_id(result.headers.get("Link"))
    if following is not None and following == max_id:
        raise SourceError("stuck_cursor", f"Mastodon statuses of {account.acct}: Link repeats")
    return Page(posts, following)


async def _follows(
    fetcher: Fetcher,
    settings: SourcesSettings,
    account: Account,
    kind: str,
    max_id: str | None,
    limit: int,
) -> Page[Account]:
    params: dict[str, str | int] = {"limit": limit}
    if max_id:
        params["max_id"] = max_id
    result = await get_json(
        fetcher,
        f"{base_url(settings, account.server)}/api/v1/accounts/{account.id}/{kind}",
        f"Mastodon {kind} of {account.acct}",
        params=params,
        profile=PROFILE,
        classify=classify_error,
        budget=api_budget(account.server),
    )
    items = need(result.data, list, f"Mastodon {kind}")
    seen: dict[str, Account] = {}
    for item in items:
        other = parse_account(item, account.server)
        seen.setdefault(other.id, other)  # Mastodon may repeat an account inside a page
    counted = account.followers_count if kind == "followers" else account.following_count
    hidden = not items and max_id is None and bool(counted)
    following = next_max_id(result.headers.get("Link"))
    if following is not None and following == max_id:
        raise SourceError("stuck_cursor", f"Mastodon {kind} of {account.acct}: Link repeats")
    return Page(list(seen.values()), following, hidden=hidden)


async def followers(
    fetcher: Fetcher,
    settings: SourcesSettings,
    account: Account,
    max_id: str | None = None,
    limit: int = FOLLOWS_LIMIT,
) -> Page[Account]:
    """One page of the accounts following `account`; `hidden` when the owner hides them."""
    return await _follows(fetcher, settings, account, "followers", max_id, limit)


async def following(
    fetcher: Fetcher,
    settings: SourcesSettings,
    account: Account,
    max_id: str | None = None,
    limit: int = FOLLOWS_LIMIT,
) -> Page[Account]:
    """One page of the accounts `account` follows; `hidden` when the owner hides them."""
    return await _follows(fetcher, settings, account, "following", max_id, limit)
