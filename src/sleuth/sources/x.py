"""X (API v2, app-only bearer token): users by username, their timelines with photos, tweet
lookup, followers and following.

Without `SourcesSettings.x_bearer_token` every call raises `disabled` before any request. X
answers a missing resource with HTTP 200 and an `errors` array (partial success), so those
entries are read here: an unknown user is `not_found`, a protected one `private`, a
suspended one `suspended`. The timeline asks for retweets and replies to be excluded and for
photos by `attachments.media_keys`; X serves only the newest 3,200 posts of a timeline, so
the listing simply ends there. X counts each endpoint's window apart: every call draws on its
endpoint's budget (`endpoint`), which its `x-rate-limit-*` headers (epoch reset) keep through
the fetcher. A 429 whose problem `type` is `usage-capped` is the app's monthly (or daily) cap,
not a window: it blocks every X endpoint until the cap's period ends (`UsageCapped`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

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
)

NETWORK = "x"
TIMELINE_WINDOW = 3200  # X serves no older posts of a user timeline...
TIMELINE_WINDOW_NO_REPLIES = 800  # ...and only 800 when asked to exclude replies
TIMELINE_LIMIT = 100
FOLLOWS_LIMIT = 1000
LOOKUP_IDS = 100
NO_TOKEN = (
    "X needs a bearer token: set SLEUTH_SOURCES_X_BEARER_TOKEN (or [sources] x_bearer_token "
    "in sleuth.toml) to an app-only token of an X developer app"
)
USER_FIELDS = "created_at,description,entities,protected,public_metrics,url"
TWEET_FIELDS = "created_at,attachments,referenced_tweets,author_id,in_reply_to_user_id,lang"
MEDIA_FIELDS = "url,width,height,type"
PROBLEMS = "https://api.twitter.com/2/problems/"
_USERNAME = re.compile(r"^@?([A-Za-z0-9_]{1,15})$")
_PROFILE_URL = re.compile(
    r"^https?://(?:www\.|mobile\.)?(?:x|twitter)\.com/([A-Za-z0-9_]{1,15})/?(?:[?#].*)?$"
)


def parse_username(text: str) -> str:
    """The screen name in `name`, `@name` or `https://x.com/name` (twitter.com too)."""
    text = text.strip()
    match = _PROFILE_URL.match(text) or _USERNAME.match(text)
    if not match:
        raise SourceError("bad_input", f"not an X username or profile URL: {text!r}")
    return match.group(1)


def _profile(settings: SourcesSettings) -> SourceProfile:
    if not settings.x_bearer_token:
        raise SourceError("disabled", NO_TOKEN)
    return SourceProfile("x", bearer_token=settings.x_bearer_token)


class UsageCapped(SourceError):
    """X's usage cap is spent: nothing is read from X before `until` (epoch seconds), when
    the cap's period (a UTC month, or a day) starts again."""

    def __init__(self, detail: str, period: str, until: float, now: float) -> None:
        end = datetime.fromtimestamp(until, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        message = f"X usage cap reached ({period.lower()}), no call before {end}: {detail}"
        super().__init__("rate_limited", message, 429, max(0.0, until - now))
        self.until = until


def cap_period_end(period: str, now: float) -> float:
    """When a usage cap of this period starts again: the next UTC month for "Monthly", the
    next UTC day for "Daily" (and for a period X does not name, so that a wrong guess costs
    a day, not a month)."""
    today = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "Monthly":
        first = today.replace(day=1)
        following = first.replace(year=first.year + first.month // 12, month=first.month % 12 + 1)
        return following.timestamp()
    return today.timestamp() + 86400.0


def classify_error(exc: FetchError) -> SourceError | None:
    """X's reading of a failed call, from its problem body: a usage cap is no window to wait
    for; 401/403/429 keep X's `detail`. None: the generic reading applies."""
    problem = error_document(exc)
    detail = str(problem.get("detail") or problem.get("title") or exc.detail)
    kind = str(problem.get("type") or "")
    if exc.status == 429 and kind == PROBLEMS + "usage-capped":
        now = time.time()
        period = str(problem.get("period") or "")
        return UsageCapped(detail, period or "unnamed period", cap_period_end(period, now), now)
    if exc.status == 401:
        return SourceError("unauthorized", f"X refused the bearer token: {detail}", 401)
    if exc.status == 403:
        return SourceError("forbidden", f"X: {detail}", 403)
    if exc.status == 429:
        return SourceError("rate_limited", f"X: {detail}", 429, exc.retry_after)
    return None


def problem_error(entry: Any) -> SourceError:
    """The SourceError of one entry of a partial `errors` array."""
    if not isinstance(entry, dict):
        return SourceError("bad_response", "X: malformed errors entry")
    kind = str(entry.get("type") or "")
    detail = str(entry.get("detail") or entry.get("title") or kind)
    if "suspended" in detail.lower():
        return SourceError("suspended", detail)
    if kind.endswith("not-authorized-for-resource"):
        return SourceError("private", detail)
    if kind.endswith("resource-not-found"):
        return SourceError("not_found", detail)
    return SourceError("bad_response", f"X: {detail}")


def _data_or_error(body: Any, what: str) -> Any:
    """`data` of a 200 answer, or the error its `errors` array names instead."""
    body = need(body, dict, what)
    if "data" in body:
        return body["data"]
    errors = body.get("errors")
    if isinstance(errors, list) and errors:
        raise problem_error(errors[0])
    raise SourceError("bad_response", f"{what}: neither data nor errors")


def parse_user(data: Any) -> Account:
    """A User object; links are the expanded `entities.url` and `entities.description` URLs
    (the `url` field itself is only a t.co link)."""
    data = need(data, dict, "X user")
    username = text_field(data, "username", "X user")
    entities = obj(data, "entities")
    links: list[str] = []
    for part in ("url", "description"):
        block = obj(entities, part)
        urls = seq(block, "urls")
        links += [
            str(u.get("expanded_url") or u.get("url") or "") for u in urls if isinstance(u, dict)
        ]
    metrics = obj(data, "public_metrics")
    return Account(
        network=NETWORK,
        id=text_field(data, "id", "X user"),
        username=username,
        server="x.com",
        acct=username,
        display_name=str(data.get("name") or ""),
        url=f"https://x.com/{username}",
        followers_count=as_int(metrics.get("followers_count")),
        following_count=as_int(metrics.get("following_count")),
        posts_count=as_int(metrics.get("tweet_count")),
        private=bool(data.get("protected")),
        created_at=parse_time(data.get("created_at")),
        links=unique(links),
    )


def parse_tweets(body: Any, username: str | None = None) -> list[Post]:
    """The tweets of a timeline or lookup answer with their photos, joined on `media_key`
    with `includes.media` (de-duplicated across the page, in no order)."""
    body = need(body, dict, "X tweets")
    includes = obj(body, "includes")
    media_list = seq(includes, "media")
    media = {m.get("media_key"): m for m in media_list if isinstance(m, dict)}
    users = seq(includes, "users")
    names = {u.get("id"): u.get("username") for u in users if isinstance(u, dict)}
    posts = []
    for tweet in need(body.get("data", []), list, "X tweets"):
        tweet = need(tweet, dict, "X tweet")
        ident = text_field(tweet, "id", "X tweet")
        attachments = obj(tweet, "attachments")
        keys = seq(attachments, "media_keys")
        photos = [media[k] for k in keys if k in media and media[k].get("type") == "photo"]
        photos = [p for p in photos if isinstance(p.get("url"), str)]
        kinds = {r.get("type") for r in seq(tweet, "referenced_tweets") if isinstance(r, dict)}
        author = str(tweet.get("author_id") or "")
        name = username or names.get(author) or "i"
        posts.append(
            Post(
                network=NETWORK,
                id=ident,
                account_id=author,
                url=f"https://x.com/{name}/status/{ident}",
                created_at=parse_time(tweet.get("created_at")),
                text=str(tweet.get("text") or ""),
                images=tuple(
                    Image(p["url"], as_int(p.get("width")), as_int(p.get("height")), i, len(photos))
                    for i, p in enumerate(photos, start=1)
                ),
                is_repost="retweeted" in kinds,
                is_reply="replied_to" in kinds,
                lang=lang_code(tweet.get("lang")),
            )
        )
    return posts


def _api(settings: SourcesSettings, path: str) -> str:
    return f"{settings.x_api_url.rstrip('/')}/2/{path}"


def endpoint(path: str) -> str:
    """The rate-limit budget a call of this API path draws on, named as X's rate-limit table
    names its endpoints: `users/:id/followers`, `users/by/username`, `tweets`."""
    parts = path.split("/")
    if parts[:3] == ["users", "by", "username"]:
        return "users/by/username"
    return "/".join(":id" if part.isdigit() else part for part in parts)


async def _get(
    fetcher: Fetcher, settings: SourcesSettings, path: str, what: str, params: Mapping[str, Any]
) -> Any:
    profile = _profile(settings)
    url = _api(settings, path)
    try:
        result = await get_json(
            fetcher,
            url,
            what,
            params=params,
            profile=profile,
            classify=classify_error,
            budget=endpoint(path),
        )
    except UsageCapped as exc:
        await fetcher.block(url, exc.until)
        raise
    return result.data


async def user(fetcher: Fetcher, settings: SourcesSettings, name: str) -> Account:
    """The user with this username or profile URL."""
    username = parse_username(name)
    what = f"X user {username}"
    body = await _get(
        fetcher, settings, f"users/by/username/{username}", what, {"user.fields": USER_FIELDS}
    )
    return parse_user(_data_or_error(body, what))


async def user_by_id(fetcher: Fetcher, settings: SourcesSettings, user_id: str) -> Account:
    """The user with this numeric id."""
    if not (user_id.isdigit() and len(user_id) <= 19):
        raise SourceError("bad_input", f"not an X user id: {user_id!r}")
    what = f"X user {user_id}"
    body = await _get(fetcher, settings, f"users/{user_id}", what, {"user.fields": USER_FIELDS})
    return parse_user(_data_or_error(body, what))


async def timeline(
    fetcher: Fetcher,
    settings: SourcesSettings,
    account: Account,
    *,
    pagination_token: str | None = None,
    since_id: str | None = None,
    exclude_replies: bool = True,
    limit: int = TIMELINE_LIMIT,
) -> Page[Post]:
    """One page of the user's own tweets (no retweets; no replies unless `exclude_replies` is
    False), newest first, with their photos; the next cursor is `meta.next_token`. X reads
    only the newest 800 posts when replies are excluded, 3,200 otherwise: a deep scan keeps
    replies (flagged `is_reply`) to reach further back. A protected user is `private`."""
    what = f"X timeline of {account.username}"
    body = await _get(
        fetcher,
        settings,
        f"users/{account.id}/tweets",
        what,
        {
            "max_results": limit,
            "exclude": "retweets,replies" if exclude_replies else "retweets",
            "expansions": "attachments.media_keys",
            "media.fields": MEDIA_FIELDS,
            "tweet.fields": TWEET_FIELDS,
            "pagination_token": pagination_token,
            "since_id": since_id,
        },
    )
    body = need(body, dict, what)
    meta = obj(body, "meta")
    if "data" not in body and body.get("errors"):
        raise problem_error(body["errors"][0])
    token = meta.get("next_token")
    token = token if isinstance(token, str) and token else None
    if token is not None and token == pagination_token:
        raise SourceError("stuck_cursor", f"{what}: X sent the same next_token again")
    return Page(parse_tweets(body, account.username), token)


async def tweets(fetcher: Fetcher, settings: SourcesSettings, ids: list[str]) -> Page[Post]:
    """The tweets with these ids (100 per call), and in `errors` why each missing one is
    missing (`not_found: ...` for deleted, `private: ...` for protected), keyed by the id."""
    found: list[Post] = []
    errors: list[str] = []
    for start in range(0, len(ids), LOOKUP_IDS):
        batch = ids[start : start + LOOKUP_IDS]
        body = await _get(
            fetcher,
            settings,
            "tweets",
            f"X lookup of {len(batch)} tweets",
            {
                "ids": ",".join(batch),
                "expansions": "attachments.media_keys,author_id",
                "media.fields": MEDIA_FIELDS,
                "tweet.fields": TWEET_FIELDS,
            },
        )
        found += parse_tweets(body)
        for entry in need(body, dict, "X tweets").get("errors") or []:
            value = entry.get("value") if isinstance(entry, dict) else None
            errors.append(f"{value}: {problem_error(entry)}")
    return Page(found, None, errors=errors)


async def _follows(
    fetcher: Fetcher,
    settings: SourcesSettings,
    account: Account,
    kind: str,
    pagination_token: str | None,
    limit: int,
) -> Page[Account]:
    what = f"X {kind} of {account.username}"
    body = await _get(
        fetcher,
        settings,
        f"users/{account.id}/{kind}",
        what,
        {
            "max_results": limit,
            "user.fields": USER_FIELDS,
            "pagination_token": pagination_token,
        },
    )
    body = need(body, dict, what)
    if "data" not in body and body.get("errors"):
        raise problem_error(body["errors"][0])
    meta = obj(body, "meta")
    token = meta.get("next_token")
    token = token if isinstance(token, str) and token else None
    if token is not None and token == pagination_token:
        raise SourceError("stuck_cursor", f"{what}: X sent the same next_token again")
    seen: dict[str, Account] = {}
    for item in need(body.get("data", []), list, what):
        other = parse_user(item)
        seen.setdefault(other.id, other)
    return Page(list(seen.values()), token)


async def followers(
    fetcher: Fetcher,
    settings: SourcesSettings,
    account: Account,
    pagination_token: str | None = None,
    limit: int = FOLLOWS_LIMIT,
) -> Page[Account]:
    """One page of the user's followers; `forbidden` where the token's tier does not allow it."""
    return await _follows(fetcher, settings, account, "followers", pagination_token, limit)


async def following(
    fetcher: Fetcher,
    settings: SourcesSettings,
    account: Account,
    pagination_token: str | None = None,
    limit: int = FOLLOWS_LIMIT,
) -> Page[Account]:
    """One page of the accounts the user follows."""
    return await _follows(fetcher, settings, account, "following", pagination_token, limit)
