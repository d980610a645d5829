"""The one reader of queue URLs (`Settings.queue_url`): what a URL names, or a ValueError with
the reason and the URL quoted with its password hidden. `open_queue` opens what it names and
`config` validates settings with it."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from sleuth.config import mask_url

SCHEMES = ("sqlite", "redis")
DEFAULT_PREFIX = "sleuth"
_PREFIX_RE = re.compile(r"[A-Za-z0-9_.:-]+")


@dataclasses.dataclass(frozen=True)
class SqliteTarget:
    """Where a `sqlite:///path.db` queue URL points."""

    path: Path


@dataclasses.dataclass(frozen=True)
class RedisTarget:
    """Where a `redis://` queue URL points."""

    host: str
    port: int
    db: int
    prefix: str
    username: str | None = None
    password: str | None = None

    def __repr__(self) -> str:
        auth = "***@" if self.password else ""
        return f"redis://{auth}{self.host}:{self.port}/{self.db}?prefix={self.prefix}"


def parse_queue_url(url: str) -> SqliteTarget | RedisTarget:
    """`sqlite:///relative/path.db` or `sqlite:////absolute/path.db` (as SQLAlchemy spells
    SQLite URLs, so the data and queue settings read alike), or
    `redis://[[user]:password@]host[:port][/db][?prefix=name]` for the distributed queue."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in SCHEMES:
        why = f"unknown scheme {scheme!r}" if sep else "no scheme"
        raise ValueError(
            f"unsupported queue URL {mask_url(url)!r} ({why}); expected redis://host:6379/0 or"
            " sqlite:///path.db"
        )
    if scheme == "redis":
        return parse_redis_url(url)
    if not rest.startswith("/"):
        raise ValueError(
            f"queue URL {url!r}: a SQLite queue URL has no host; write sqlite:///path.db"
        )
    if "?" in rest or "#" in rest:
        raise ValueError(f"queue URL {url!r}: a SQLite queue URL takes no options")
    path = rest[1:]
    if not path or path == ":memory:":
        raise ValueError(f"queue URL {url!r} names no file; an in-memory queue is not durable")
    return SqliteTarget(Path(path))


def parse_redis_url(url: str) -> RedisTarget:
    """`redis://[[user]:password@]host[:port][/db][?prefix=name]`; db 0 and prefix `sleuth`
    by default. Raises ValueError, with the reason, for anything else."""
    shown = repr(mask_url(url))
    parts = urlsplit(url)
    if parts.scheme != "redis":
        raise ValueError(f"queue URL {shown}: expected the scheme redis://")
    if not parts.hostname:
        raise ValueError(f"queue URL {shown} names no host; write redis://host:port/db")
    try:
        port = parts.port or 6379
    except ValueError:
        raise ValueError(f"queue URL {shown}: the port is not a number from 1 to 65535") from None
    path = parts.path.strip("/")
    if path and not path.isdigit():
        raise ValueError(f"queue URL {shown}: the path must be a database number, not {path!r}")
    if parts.fragment:
        raise ValueError(f"queue URL {shown}: a Redis queue URL has no #fragment")
    try:
        options = parse_qs(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        raise ValueError(f"queue URL {shown}: cannot read the options {parts.query!r}") from None
    unknown = sorted(set(options) - {"prefix"})
    if unknown:
        raise ValueError(f"queue URL {shown}: unknown option(s) {unknown}; only prefix is known")
    prefixes = options.get("prefix", [DEFAULT_PREFIX])
    if len(prefixes) != 1 or not _PREFIX_RE.fullmatch(prefixes[0]):
        raise ValueError(
            f"queue URL {shown}: prefix must be one name of letters, digits and _ . : -"
            " (so that its keys can be matched literally)"
        )
    return RedisTarget(
        host=parts.hostname,
        port=port,
        db=int(path or 0),
        prefix=prefixes[0],
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )
