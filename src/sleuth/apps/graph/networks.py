"""The graph's one view of Mastodon, Bluesky and X: a seed or a node as an account, one page of
its followers or follows, one page of its posts.

A node's id (`node_id`) is the network's own, except on Mastodon, where an id is per server:
there it is the account's `user@home`, and the account is always read on its home server."""

from __future__ import annotations

import re

import sleuth.sources.bluesky as bluesky
import sleuth.sources.mastodon as mastodon
import sleuth.sources.x as x
from sleuth.config import SourcesSettings
from sleuth.net.fetcher import Fetcher
from sleuth.sources.profiles import parse_profile_url
from sleuth.sources.social import Account, Page, Post, SourceError

NETWORKS = ("mastodon", "bluesky", "x")
FOLLOWERS, FOLLOWING, TIMELINE = "followers", "following", "timeline"
_DID = re.compile(r"^did:[a-z]+:[A-Za-z0-9._:%-]+$")
_BLUESKY_HANDLE = re.compile(r"^@?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
_X_NAME = re.compile(r"^@[A-Za-z0-9_]{1,15}$")


def node_id(account: Account) -> str:
    """The account's id in the graph's tables."""
    return account.acct if account.network == "mastodon" else account.id


def parse_seed(text: str) -> tuple[str, str]:
    """(network, what to look up) of a seed line: `network:anything` (`x:12345`,
    `bluesky:did:plc:...`, `mastodon:user@server`), a profile URL, `user@server` (Mastodon),
    a DID or `name.domain` (Bluesky), `@name` or a numeric id (X)."""
    text = text.strip()
    network, _, rest = text.partition(":")
    if network in NETWORKS and rest and not rest.startswith("//"):
        return network, rest.strip()
    if _DID.match(text):
        return "bluesky", text
    if "@" in text[1:] and "/" not in text:
        user, server = mastodon.parse_handle(text)
        return "mastodon", f"{user}@{server}"
    ref = parse_profile_url(text) if "/" in text else None
    if ref is not None and ref.network == "mastodon":
        return "mastodon", f"{ref.username}@{ref.server}"
    if ref is not None:
        return ref.network, ref.username
    if text.isdigit():
        return "x", text
    if _X_NAME.match(text):
        return "x", text
    if _BLUESKY_HANDLE.match(text):
        return "bluesky", text.lstrip("@")
    raise SourceError("bad_input", f"not a handle, profile URL or id of {NETWORKS}: {text!r}")


async def lookup(fetcher: Fetcher, sources: SourcesSettings, network: str, name: str) -> Account:
    """The account a seed or a node names (`parse_seed`'s answer, or a node's id), read fresh."""
    if network == "mastodon":
        return await mastodon.lookup(fetcher, sources, name)
    if network == "bluesky":
        return await bluesky.get_profile(fetcher, sources, name)
    if network == "x":
        if name.isdigit():
            return await x.user_by_id(fetcher, sources, name)
        return await x.user(fetcher, sources, name)
    raise SourceError("bad_input", f"no connector for network {network!r}")


async def follows_page(
    fetcher: Fetcher, sources: SourcesSettings, account: Account, kind: str, cursor: str | None
) -> Page[Account]:
    """One page of the accounts following `account` (`kind` FOLLOWERS) or that it follows."""
    if account.network == "mastodon":
        read = mastodon.followers if kind == FOLLOWERS else mastodon.following
        return await read(fetcher, sources, account, cursor)
    if account.network == "bluesky":
        read = bluesky.followers if kind == FOLLOWERS else bluesky.follows
        return await read(fetcher, sources, account, cursor)
    if account.network == "x":
        read = x.followers if kind == FOLLOWERS else x.following
        return await read(fetcher, sources, account, cursor)
    raise SourceError("bad_input", f"no connector for network {account.network!r}")


async def posts_page(
    fetcher: Fetcher, sources: SourcesSettings, account: Account, cursor: str | None
) -> Page[Post]:
    """One page of the account's timeline, newest first, with reposts and replies (flagged)."""
    if account.network == "mastodon":
        return await mastodon.statuses(
            fetcher, sources, account, max_id=cursor, only_media=False, exclude_reblogs=False
        )
    if account.network == "bluesky":
        return await bluesky.author_feed(
            fetcher, sources, account, cursor, feed_filter="posts_with_replies"
        )
    if account.network == "x":
        return await x.timeline(
            fetcher, sources, account, pagination_token=cursor, exclude_replies=False
        )
    raise SourceError("bad_input", f"no connector for network {account.network!r}")
