"""Bluesky through the public AppView (XRPC, anonymous): profiles, author feeds with images,
followers and follows.

Cursors are opaque and passed back unchanged; one that comes back equal to the one sent (a
known AppView bug) stops the listing with `stuck_cursor` rather than paging for ever. Reposts
(`reason` `#reasonRepost`) are flagged. Every image embed shape is read: `images#view`,
`recordWithMedia#view` carrying images, and the newer `gallery#view` (its `thumbnail`). The
image URL given is the original blob on the PDS (`com.atproto.sync.getBlob`), not the CDN's
`fullsize`, which "may or may not be the exact original": a scan hashes exact bytes.
`RateLimit-*` and `Retry-After` reach the budgets through the fetcher.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from sleuth.config import SourcesSettings
from sleuth.net.errors import FetchError
from sleuth.net.fetcher import Fetcher, SourceProfile
from sleuth.sources.social import (
    Account,
    Image,
    Page,
    Post,
    SourceError,
    as_int,
    error_document,
    get_json,
    lang_code,
    need,
    obj,
    parse_time,
    seq,
    text_field,
    unique,
    urls_in_text,
)

NETWORK = "bluesky"
PROFILE = SourceProfile("bluesky")
PROFILES_PER_CALL = 25
FEED_LIMIT = 100
FOLLOWS_LIMIT = 100
REPOST = "app.bsky.feed.defs#reasonRepost"
_PROFILE_URL = re.compile(r"^https?://(?:www\.)?bsky\.app/profile/([^/?#]+)")
_ACTOR = re.compile(r"^(did:[a-z]+:[A-Za-z0-9._:%-]+|[A-Za-z0-9.-]+\.[A-Za-z]{2,})$")
_CDN_BLOB = re.compile(r"/(did:[^/]+)/([a-z0-9]+)@[a-z]+$")


def parse_actor(text: str) -> str:
    """A handle or DID from `@handle`, `handle`, a DID or a `bsky.app/profile/...` URL."""
    text = text.strip()
    match = _PROFILE_URL.match(text)
    actor = match.group(1) if match else text.lstrip("@")
    if not _ACTOR.match(actor):
        raise SourceError("bad_input", f"not a Bluesky handle, DID or profile URL: {text!r}")
    return actor


def classify_error(exc: FetchError) -> SourceError | None:
    """The AppView's reading of a failed call from its XRPC error name: an unknown actor comes
    as 400 "Profile not found", blocks as `BlockedActor`. None: the generic reading applies."""
    document = error_document(exc)
    name = str(document.get("error") or "")
    message = str(document.get("message") or name or exc.detail)
    # The AppView answers an unknown actor 400 InvalidRequest "Profile not found".
    if exc.status == 400 and (name == "NotFound" or "not found" in message.lower()):
        return SourceError("not_found", message, 400)
    if name in ("BlockedActor", "BlockedByActor"):
        return SourceError("private", message, exc.status)
    if exc.status == 401:
        return SourceError("unauthorized", message, 401)
    return None


def parse_profile(data: Any) -> Account:
    """A profileView or profileViewDetailed; links from the description's URLs and `website`."""
    data = need(data, dict, "Bluesky profile")
    handle = text_field(data, "handle", "Bluesky profile")
    links = urls_in_text(data.get("description"))
    website = data.get("website")
    if isinstance(website, str):
        links.append(website)
    return Account(
        network=NETWORK,
        id=text_field(data, "did", "Bluesky profile"),
        username=handle,
        server=handle.split(".", 1)[1] if "." in handle else handle,
        acct=handle,
        display_name=str(data.get("displayName") or ""),
        url=f"https://bsky.app/profile/{handle}",
        followers_count=as_int(data.get("followersCount")),
        following_count=as_int(data.get("followsCount")),
        posts_count=as_int(data.get("postsCount")),
        created_at=parse_time(data.get("createdAt")),
        links=unique(links),
    )


def _view_images(embed: Any) -> list[dict[str, Any]]:
    """The image views of an embed view, whatever its shape, in order."""
    if not isinstance(embed, dict):
        return []
    kind = str(embed.get("$type") or "")
    if kind.startswith("app.bsky.embed.recordWithMedia"):
        return _view_images(embed.get("media"))
    if kind.startswith("app.bsky.embed.images"):
        items = embed.get("images")
    elif kind.startswith("app.bsky.embed.gallery"):
        items = embed.get("items")
    else:
        return []
    return [i for i in (items if isinstance(items, list) else []) if isinstance(i, dict)]


def blob_url(settings: SourcesSettings, did: str, cid: str) -> str:
    """The original blob on the PDS: exact uploaded bytes."""
    return (
        f"{settings.bluesky_pds_url.rstrip('/')}/xrpc/com.atproto.sync.getBlob"
        f"?did={quote(did, safe=':')}&cid={quote(cid)}"
    )


def _image_url(settings: SourcesSettings | None, view: dict[str, Any]) -> str | None:
    cdn = view.get("fullsize") or view.get("thumb") or view.get("thumbnail")
    if not isinstance(cdn, str):
        return None
    match = _CDN_BLOB.search(cdn)
    if settings is not None and match:
        return blob_url(settings, match.group(1), match.group(2))
    return cdn


def parse_post(data: Any, settings: SourcesSettings | None = None) -> Post:
    """A postView (or a feedViewPost, whose `reason` marks a repost). With `settings`, image
    URLs point at the original blob on the PDS; without, at the CDN's fullsize."""
    data = need(data, dict, "Bluesky post")
    reason = data.get("reason")
    view = need(data.get("post", data), dict, "Bluesky post")
    author = need(view.get("author"), dict, "Bluesky post author")
    uri = text_field(view, "uri", "Bluesky post")
    if not uri.startswith("at://") or uri.count("/") < 4:
        raise SourceError("bad_response", f"Bluesky post: bad uri {uri!r}")
    rkey = uri.rsplit("/", 1)[1]
    record = obj(view, "record")
    views = [v for v in _view_images(view.get("embed")) if _image_url(settings, v)]
    images = []
    for position, item in enumerate(views, start=1):
        ratio = obj(item, "aspectRatio")
        images.append(
            Image(
                url=str(_image_url(settings, item)),
                width=as_int(ratio.get("width")),
                height=as_int(ratio.get("height")),
                position=position,
                count=len(views),
            )
        )
    handle = author.get("handle") or author.get("did")
    return Post(
        network=NETWORK,
        id=rkey,
        account_id=text_field(author, "did", "Bluesky post author"),
        url=f"https://bsky.app/profile/{handle}/post/{rkey}",
        created_at=parse_time(record.get("createdAt") or view.get("indexedAt")),
        text=str(record.get("text") or ""),
        images=tuple(images),
        is_repost=isinstance(reason, dict) and reason.get("$type") == REPOST,
        is_reply=isinstance(data.get("reply"), dict) or isinstance(record.get("reply"), dict),
        lang=lang_code(next(iter(seq(record, "langs")), None)),
    )


def _xrpc(settings: SourcesSettings, nsid: str) -> str:
    return f"{settings.bluesky_appview_url.rstrip('/')}/xrpc/{nsid}"


def _cursor(data: dict[str, Any], sent: str | None, what: str) -> str | None:
    cursor = data.get("cursor")
    if not isinstance(cursor, str) or not cursor:
        return None
    if cursor == sent:
        raise SourceError("stuck_cursor", f"{what}: the AppView sent the same cursor again")
    return cursor


async def get_profile(fetcher: Fetcher, settings: SourcesSettings, actor: str) -> Account:
    """The profile of a handle, DID or profile URL."""
    name = parse_actor(actor)
    result = await get_json(
        fetcher,
        _xrpc(settings, "app.bsky.actor.getProfile"),
        f"Bluesky profile of {name}",
        params={"actor": name},
        profile=PROFILE,
        classify=classify_error,
    )
    return parse_profile(result.data)


async def get_profiles(
    fetcher: Fetcher, settings: SourcesSettings, actors: list[str]
) -> list[Account]:
    """The profiles of many actors, 25 per call as the API allows; unknown ones are left out."""
    names = [parse_actor(a) for a in actors]
    found: list[Account] = []
    for start in range(0, len(names), PROFILES_PER_CALL):
        batch = names[start : start + PROFILES_PER_CALL]
        query = "&".join(f"actors={quote(n, safe=':')}" for n in batch)
        result = await get_json(
            fetcher,
            f"{_xrpc(settings, 'app.bsky.actor.getProfiles')}?{query}",
            f"Bluesky profiles ({len(batch)})",
            profile=PROFILE,
            classify=classify_error,
        )
        data = need(result.data, dict, "Bluesky profiles")
        found += [parse_profile(p) for p in need(data.get("profiles"), list, "Bluesky profiles")]
    return found


async def author_feed(
    fetcher: Fetcher,
    settings: SourcesSettings,
    account: Account,
    cursor: str | None = None,
    limit: int = FEED_LIMIT,
    feed_filter: str = "posts_with_media",
) -> Page[Post]:
    """One page of the account's posts, newest first (reposts flagged): those with media, or
    as `feed_filter` asks (the AppView's `posts_no_replies`, `posts_and_author_threads`)."""
    what = f"Bluesky feed of {account.acct}"
    result = await get_json(
        fetcher,
        _xrpc(settings, "app.bsky.feed.getAuthorFeed"),
        what,
        params={
            "actor": account.id,
            "filter": feed_filter,
            "limit": limit,
            "cursor": cursor,
        },
        profile=PROFILE,
        classify=classify_error,
    )
    data = need(result.data, dict, "Bluesky feed")
    feed = need(data.get("feed"), list, "Bluesky feed")
    return Page([parse_post(item, settings) for item in feed], _cursor(data, cursor, what))


async def _graph(
    fetcher: Fetcher,
    settings: SourcesSettings,
    account: Account,
    nsid: str,
    key: str,
    cursor: str | None,
    limit: int,
) -> Page[Account]:
    what = f"Bluesky {key} of {account.acct}"
    result = await get_json(
        fetcher,
        _xrpc(settings, nsid),
        what,
        params={"actor": account.id, "limit": limit, "cursor": cursor},
        profile=PROFILE,
        classify=classify_error,
    )
    data = need(result.data, dict, f"Bluesky {key}")
    seen: dict[str, Account] = {}
    for item in need(data.get(key), list, f"Bluesky {key}"):
        other = parse_profile(item)
        seen.setdefault(other.id, other)
    return Page(list(seen.values()), _cursor(data, cursor, what))


async def followers(
    fetcher: Fetcher,
    settings: SourcesSettings,
    account: Account,
    cursor: str | None = None,
    limit: int = FOLLOWS_LIMIT,
) -> Page[Account]:
    """One page of the accounts following `account` (profileViews: no counts)."""
    return await _graph(
        fetcher, settings, account, "app.bsky.graph.getFollowers", "followers", cursor, limit
    )


async def follows(
    fetcher: Fetcher,
    settings: SourcesSettings,
    account: Account,
    cursor: str | None = None,
    limit: int = FOLLOWS_LIMIT,
) -> Page[Account]:
    """One page of the accounts `account` follows."""
    return await _graph(
        fetcher, settings, account, "app.bsky.graph.getFollows", "follows", cursor, limit
    )
