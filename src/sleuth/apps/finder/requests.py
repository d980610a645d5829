"""The finder's requests: a user's query for an artwork URL, or an image search, from its
first status to END, as AOTF's clients see them.

A query is identified by its URL (AOTF's rule: asking again for the same URL returns the
same request); a search by a random identifier. Requests are rows (`finder_requests`), so
every web process and worker shares them; a status only moves forward, so a job run twice
cannot move a request back. A finished request is kept for a while (AOTF's retention: 3 h,
1 h after an error, 10 min after an input error), then forgotten; a query for the same URL
after that starts afresh."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from sleuth.apps.finder.models import ip_limits, requests
from sleuth.store.upsert import insert_ignore

STATUSES = (
    "WAIT_LINK_FINDER",
    "LINK_FINDER",
    "WAIT_INDEX_ACCOUNTS_TWEETS",
    "INDEX_ACCOUNTS_TWEETS",
    "WAIT_IMAGE_REVERSE_SEARCH",
    "IMAGE_REVERSE_SEARCH",
    "END",
)
WAIT_LINK_FINDER, LINK_FINDER, WAIT_INDEX, INDEX, WAIT_SEARCH, SEARCH, END = range(7)

# AOTF's error codes, by what caused them.
INPUT_ERRORS = frozenset(
    {"NO_URL_FIELD", "URL_TOO_LONG", "NOT_AN_URL", "UNSUPPORTED_WEBSITE", "NOT_AN_ARTWORK_PAGE"}
)
ACCOUNT_ERRORS = frozenset(
    {"NO_TWITTER_ACCOUNT_FOUND", "NO_VALID_TWITTER_ACCOUNT_FOUND", "BLOCKED_BY_TWITTER_ACCOUNT"}
)
PROCESSING_ERRORS = frozenset(
    {
        "ERROR_DURING_REVERSE_SEARCH",
        "QUERY_IMAGE_TOO_BIG",
        "PROCESSING_ERROR",
        "YOUR_IP_HAS_MAX_PROCESSING_REQUESTS",
    }
)
SEARCH_ERRORS = frozenset(
    {
        "CANNOT_GET_IMAGE",
        "INVALID_TWITTER_ACCOUNT",
        "TWITTER_ACCOUNT_NOT_INDEXED",
        "IDENTIFIER_MISSING",
        "IMAGE_MISSING",
        "NO_SUCH_REQUEST",
    }
)
ERRORS = INPUT_ERRORS | ACCOUNT_ERRORS | PROCESSING_ERRORS | SEARCH_ERRORS

# Seconds a finished request is kept.
KEEP = 3 * 3600.0
KEEP_AFTER_ERROR = 3600.0
KEEP_AFTER_INPUT_ERROR = 600.0
# Of those, the errors of an input that will not get better (AOTF keeps them 10 minutes).
_SHORT_LIVED = frozenset({"NOT_AN_URL", "NOT_AN_ARTWORK_PAGE", "UNSUPPORTED_WEBSITE"})


def query_id(url: str) -> str:
    return "q" + hashlib.sha1(url.encode("utf-8")).hexdigest()


def new_search_id() -> tuple[str, str]:
    """(request id, identifier) of a new image search: the identifier is AOTF's token_hex(16)."""
    identifier = secrets.token_hex(16)
    return "s" + identifier, identifier


def keep_for(error: str | None) -> float:
    """How long a request that ended with `error` (None: success) is kept."""
    if error is None:
        return KEEP
    return KEEP_AFTER_INPUT_ERROR if error in _SHORT_LIVED else KEEP_AFTER_ERROR


@dataclass(frozen=True)
class Account:
    """An account a request found: AOTF's `twitter_accounts` entry, with its network."""

    network: str
    account_id: str
    account_name: str  # lower-cased username (Bluesky: the handle; Mastodon: user@server)
    url: str

    def aotf(self) -> dict[str, str]:
        return {
            "account_name": self.account_name,
            "account_id": self.account_id,
            "network": self.network,
            "url": self.url,
        }


@dataclass(frozen=True)
class Result:
    """A post that contains the artwork: AOTF's `results` entry (ids as strings), with its
    network, its URL and whether the match was of the mirrored image."""

    network: str
    post_id: str
    account_id: str
    post_url: str
    position: int  # 1-based
    images_count: int
    distance: int
    mirrored: bool = False
    media_url: str = ""  # the matching image's own URL on its network (a page links it)

    def aotf(self) -> dict[str, Any]:
        return {
            "tweet_id": self.post_id,
            "account_id": self.account_id,
            "image_position": f"{self.position}/{self.images_count}",
            "distance": self.distance,
            "network": self.network,
            "post_url": self.post_url,
            "mirrored": self.mirrored,
            "media_url": self.media_url,
        }


def sort_results(results: Sequence[Result]) -> list[Result]:
    """AOTF's order: distance, then images in the post, then post id (as a number where it
    is one, so that snowflakes sort by time)."""

    def post_order(post_id: str) -> tuple[int, int | str]:
        return (0, int(post_id)) if post_id.isdigit() else (1, post_id)

    return sorted(results, key=lambda r: (r.distance, r.images_count, post_order(r.post_id)))


@dataclass(frozen=True)
class FinderRequest:
    """One row of `finder_requests`."""

    id: str
    kind: str
    url: str | None
    ip: str
    status: int
    error: str | None
    has_first_time_scan: bool
    accounts: list[dict[str, Any]] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    account_name: str | None = None
    phash: int | None = None  # signed, as stored
    phash_mirror: int | None = None
    artwork_at: float | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    finished_at: float | None = None
    expires_at: float | None = None

    @property
    def identifier(self) -> str | None:
        return self.id[1:] if self.kind == "search" else None

    @property
    def finished(self) -> bool:
        return self.finished_at is not None

    def aotf(self) -> dict[str, Any]:
        """The JSON AOTF's web page and client read."""
        out: dict[str, Any] = {
            "status": STATUSES[self.status] if 0 <= self.status < len(STATUSES) else None,
            "has_first_time_scan": self.has_first_time_scan,
            "twitter_accounts": self.accounts,
            "results": self.results,
            "error": self.error,
        }
        if self.kind == "search":
            out["identifier"] = self.identifier
        return out


def empty_answer(error: str | None) -> dict[str, Any]:
    """AOTF's answer when no request was made (an input error, a limit)."""
    return {
        "status": None,
        "has_first_time_scan": False,
        "twitter_accounts": [],
        "results": [],
        "error": error,
    }


def _from_row(row: Mapping[str, Any]) -> FinderRequest:
    values = dict(row)
    values["accounts"] = json.loads(values["accounts"])
    values["results"] = json.loads(values["results"])
    values["has_first_time_scan"] = bool(values["has_first_time_scan"])
    return FinderRequest(**values)


def get(conn: Connection, request_id: str, now: float) -> FinderRequest | None:
    """The request, unless there is none or it has expired."""
    row = conn.execute(sa.select(requests).where(requests.c.id == request_id)).mappings().first()
    if row is None or (row["expires_at"] is not None and row["expires_at"] <= now):
        return None
    return _from_row(row)


def in_progress(conn: Connection, ip: str) -> int:
    """Requests of this address not finished yet."""
    query = sa.select(sa.func.count()).where(requests.c.ip == ip, requests.c.finished_at.is_(None))
    return int(conn.execute(query).scalar_one())


def open_request(
    engine: Engine,
    request_id: str,
    kind: str,
    ip: str,
    now: float,
    *,
    url: str | None = None,
    account_name: str | None = None,
    max_in_progress: int | None = None,
) -> tuple[FinderRequest | None, bool]:
    """(the request, whether this call created it). An existing, unexpired request is
    returned as it is. A new one is refused, (None, False), when the address already has
    `max_in_progress` unfinished requests."""
    with engine.begin() as conn:
        found = get(conn, request_id, now)
        if found is not None:
            return found, False
        if max_in_progress is not None and in_progress(conn, ip) >= max_in_progress:
            return None, False
        conn.execute(sa.delete(requests).where(requests.c.id == request_id))  # expired
        row = {
            "id": request_id,
            "kind": kind,
            "url": url,
            "ip": ip,
            "status": WAIT_LINK_FINDER if kind == "query" else WAIT_SEARCH,
            "error": None,
            "has_first_time_scan": False,
            "accounts": "[]",
            "results": "[]",
            "account_name": account_name,
            "phash": None,
            "phash_mirror": None,
            "artwork_at": None,
            "created_at": now,
            "updated_at": now,
            "finished_at": None,
            "expires_at": None,
        }
        if not insert_ignore(conn, requests, row):  # another process opened it meanwhile
            raced = get(conn, request_id, now)
            return raced, False
        return _from_row(row), True


def advance(
    engine: Engine,
    request_id: str,
    status: int,
    now: float,
    *,
    accounts: Sequence[Account] | None = None,
    has_first_time_scan: bool | None = None,
    hashes: tuple[int, int] | None = None,
    artwork_at: float | None = None,
) -> bool:
    """Move an unfinished request forward to `status` (never back), with what it learnt;
    False when it is finished, gone or already further."""
    values: dict[str, Any] = {"status": status, "updated_at": now}
    if accounts is not None:
        values["accounts"] = json.dumps([a.aotf() for a in accounts])
    if has_first_time_scan is not None:
        values["has_first_time_scan"] = has_first_time_scan
    if hashes is not None:
        values["phash"], values["phash_mirror"] = hashes
    if artwork_at is not None:
        values["artwork_at"] = artwork_at
    query = (
        sa.update(requests)
        .where(
            requests.c.id == request_id,
            requests.c.finished_at.is_(None),
            requests.c.status <= status,
        )
        .values(**values)
    )
    with engine.begin() as conn:
        return conn.execute(query).rowcount == 1


def finish(
    engine: Engine,
    request_id: str,
    now: float,
    *,
    error: str | None = None,
    results: Sequence[Result] = (),
) -> bool:
    """End the request (status END), with its results or its error; a finished request is
    left as it is (a job run twice ends it once)."""
    if error is not None and error not in ERRORS:
        raise ValueError(f"unknown error code {error!r}")
    values = {
        "status": END,
        "error": error,
        "results": json.dumps([r.aotf() for r in sort_results(results)]),
        "updated_at": now,
        "finished_at": now,
        "expires_at": now + keep_for(error),
    }
    query = (
        sa.update(requests)
        .where(requests.c.id == request_id, requests.c.finished_at.is_(None))
        .values(**values)
    )
    with engine.begin() as conn:
        return conn.execute(query).rowcount == 1


def purge(engine: Engine, now: float, limit_older_than: float = 3600.0) -> int:
    """Forget expired requests and per-address limits not used for an hour; returns how
    many requests went."""
    with engine.begin() as conn:
        gone = conn.execute(
            sa.delete(requests).where(
                requests.c.expires_at.is_not(None), requests.c.expires_at <= now
            )
        ).rowcount
        conn.execute(sa.delete(ip_limits).where(ip_limits.c.accepted_at < now - limit_older_than))
    return int(gone)


def accept(engine: Engine, ip: str, now: float, interval: float = 1.0) -> bool:
    """AOTF's per-address limit: let a request through when more than `interval` seconds
    passed since the last one let through (a refused one does not count)."""
    with engine.begin() as conn:
        moved = conn.execute(
            sa.update(ip_limits)
            .where(ip_limits.c.ip == ip, ip_limits.c.accepted_at <= now - interval)
            .values(accepted_at=now)
        ).rowcount
        if moved == 1:
            return True
        return insert_ignore(conn, ip_limits, {"ip": ip, "accepted_at": now})


def counts(conn: Connection) -> dict[str, int]:
    """Unfinished requests by kind, for `/stats`."""
    query = (
        sa.select(requests.c.kind, sa.func.count())
        .where(requests.c.finished_at.is_(None))
        .group_by(requests.c.kind)
    )
    found = {kind: int(n) for kind, n in conn.execute(query)}
    return {"query": found.get("query", 0), "search": found.get("search", 0)}
