"""Which social account a profile link names: X, Mastodon or Bluesky, from the URL (or the
`@user@server` handle) a user, an art site or a link hub wrote.

Links come in many spellings (`twitter.com/#!/jack`, `mobile.twitter.com/@jack`,
`https://art.example/users/jack`), with noise among them (`twitter.com/intent/tweet`,
`twitter.com/home`); `parse_profile_url` reads the first kind and refuses the second, so the
same account found twice is one `AccountRef`: every part lower-cased.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import NamedTuple
from urllib.parse import urlsplit

X_SERVER = "x.com"
BLUESKY_SERVER = "bsky.social"

_X_HOSTS = frozenset({"x.com", "twitter.com", "mobile.x.com", "mobile.twitter.com"})
_X_NAME = re.compile(r"^[a-z0-9_]{1,15}$")
# First path segments of X that are pages, not accounts.
_X_RESERVED = frozenset(
    {
        "intent", "share", "home", "i", "search", "explore", "hashtag", "settings",
        "notifications", "messages", "login", "logout", "signup", "tos", "privacy", "compose",
        "about", "download", "account", "oauth", "web", "widgets", "jobs", "help", "status",
    }
)  # fmt: skip
_BLUESKY_HOSTS = frozenset({"bsky.app", "staging.bsky.app"})
_HANDLE = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]*$")
_DID = re.compile(r"^did:(?:plc|web):[a-z0-9._:%-]{1,2048}$")
_MASTODON_NAME = re.compile(r"^[a-z0-9_](?:[a-z0-9_.-]*[a-z0-9_])?$")
# Sites that use `/@name` too but are not Mastodon servers.
_NOT_MASTODON = frozenset(
    {
        "youtube.com", "m.youtube.com", "tiktok.com", "medium.com", "threads.net",
        "pinterest.com", "vimeo.com", "linktr.ee", "ko-fi.com", "patreon.com",
    }
)  # fmt: skip
_TEXT_HANDLE = re.compile(
    r"(?<![\w@/])@([A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?)@([A-Za-z0-9.-]+\.[A-Za-z]{2,})"
)
_TEXT_URL = re.compile(r"https?://[^\s<>\"')\]]+")


class AccountRef(NamedTuple):
    """An account on a network: `network` is "x", "mastodon" or "bluesky"; `server` its home
    (`x.com`, the Mastodon instance, `bsky.social`); `username` the X screen name, Mastodon
    local name or Bluesky handle (or DID). All lower-case."""

    network: str
    server: str
    username: str

    def __str__(self) -> str:
        if self.network == "mastodon":
            return f"mastodon:@{self.username}@{self.server}"
        return f"{self.network}:@{self.username}"


def _host(netloc: str) -> str:
    host = netloc.rsplit("@", 1)[-1].split(":", 1)[0].lower().rstrip(".")
    return host.removeprefix("www.")


def parse_profile_url(url: str) -> AccountRef | None:
    """The account a profile URL (or a `@user@server` handle) names, or None when it names none
    (a bare host, a page such as `intent` or `home`, another site)."""
    text = url.strip()
    handle = _TEXT_HANDLE.fullmatch(text)
    if handle:
        return _mastodon(handle.group(2).lower(), handle.group(1))
    if "://" not in text:
        text = "https://" + text
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https"):
        return None
    host = _host(parts.netloc)
    path = parts.path
    if parts.fragment.startswith("!/"):  # the old `twitter.com/#!/name` form
        path = parts.fragment[1:]
    segments = [s for s in path.split("/") if s]
    if not host or not segments:
        return None
    if host in _X_HOSTS:
        return _x(segments[0])
    if host in _BLUESKY_HOSTS:
        if len(segments) >= 2 and segments[0] == "profile":
            return _bluesky(segments[1])
        return None
    if host in _NOT_MASTODON:
        return None
    first = segments[0]
    if first.startswith("@"):
        name, _, server = first[1:].partition("@")  # `/@name@home` is a remote account
        return _mastodon(server.lower() or host, name)
    if first == "users" and len(segments) >= 2:
        return _mastodon(host, segments[1])
    return None


def _x(segment: str) -> AccountRef | None:
    name = segment.removeprefix("@").lower()
    if not _X_NAME.match(name) or name in _X_RESERVED:
        return None
    return AccountRef("x", X_SERVER, name)


def _bluesky(segment: str) -> AccountRef | None:
    name = segment.lower()
    if _DID.match(name) or _HANDLE.match(name):
        return AccountRef("bluesky", BLUESKY_SERVER, name)
    return None


def _mastodon(server: str, name: str) -> AccountRef | None:
    name = name.lower()
    if not _MASTODON_NAME.match(name) or not _HANDLE.match(server):
        return None
    return AccountRef("mastodon", server, name)


def links_in_text(text: str) -> list[str]:
    """The URLs and `@user@server` handles written in free text (a bio, a comment)."""
    found = [m.group(0).rstrip(".,;:!?") for m in _TEXT_URL.finditer(text)]
    found += [m.group(0) for m in _TEXT_HANDLE.finditer(text)]
    return found


def unique(refs: Iterable[AccountRef]) -> list[AccountRef]:
    """`refs` without repeats, in the order first seen."""
    return list(dict.fromkeys(refs))
