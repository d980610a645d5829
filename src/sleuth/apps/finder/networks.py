"""The finder's one view of X, Mastodon and Bluesky: an account from a profile reference,
and its posts with images, newest first, down to the cursor of the last scan.

Each network pages differently (Mastodon `max_id`/`since_id`, X `pagination_token`/
`since_id`, Bluesky an opaque cursor and no `since`); here they all become one async
iterator of pages that stops at the cursor."""

from __future__ import annotations

from collections.abc import AsyncIterator

import sleuth.sources.bluesky as bluesky
import sleuth.sources.mastodon as mastodon
import sleuth.sources.x as x
from sleuth.config import SourcesSettings
from sleuth.net.fetcher import Fetcher
from sleuth.sources.profiles import AccountRef
from sleuth.sources.social import Account, Post, SourceError, newer

NETWORKS = ("x", "mastodon", "bluesky")


async def lookup(fetcher: Fetcher, sources: SourcesSettings, ref: AccountRef) -> Account:
    """The account `ref` names, as its network shows it (SourceError when it cannot)."""
    if ref.network == "x":
        return await x.user(fetcher, sources, ref.username)
    if ref.network == "mastodon":
        return await mastodon.lookup(fetcher, sources, f"{ref.username}@{ref.server}")
    if ref.network == "bluesky":
        return await bluesky.get_profile(fetcher, sources, ref.username)
    raise SourceError("bad_input", f"no connector for network {ref.network!r}")


async def posts_since(
    fetcher: Fetcher, sources: SourcesSettings, account: Account, cursor: str | None
) -> AsyncIterator[list[Post]]:
    """Pages of the account's own posts with images (no reposts), newest first, newer than
    `cursor` (None: all the network lets us read)."""
    following: str | None = None
    while True:
        if account.network == "mastodon":
            page = await mastodon.statuses(
                fetcher, sources, account, max_id=following, since_id=cursor
            )
        elif account.network == "x":
            page = await x.timeline(
                fetcher, sources, account, pagination_token=following, since_id=cursor
            )
        elif account.network == "bluesky":
            page = await bluesky.author_feed(fetcher, sources, account, cursor=following)
        else:
            raise SourceError("bad_input", f"no connector for network {account.network!r}")
        fresh = [p for p in page.items if cursor is None or newer(p.id, cursor)]
        reached = len(fresh) < len(page.items)  # Bluesky has no `since`: stop at the cursor
        yield [p for p in fresh if p.images and not p.is_repost]
        if reached or page.next is None:
            return
        following = page.next
