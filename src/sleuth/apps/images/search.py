"""Search the stored images by pHash: the images app's search service.

Every stored image's pHash is kept in an exact `HammingIndex` under an id derived from its MD5
(the MD5's top 63 bits), so the index needs no id table of its own and a hit's rows are found
again by a range on the images' primary key. Two MD5s sharing those 63 bits (about one chance
in 10^5 among 10M images) are both returned when their pHashes are equal; otherwise the second
cannot be indexed and is logged. Distances are recomputed from the rows read back, so results
are exact whatever the index holds.

Keeping up with crawls that run in other processes, without a restart: the images table has no
row sequence, but `first_seen` is indexed. Before each query the rows stored after the newest
one indexed are read (usually none: one cheap indexed query). A row can commit later than a
newer one (SQLite waits up to 30 s for its write lock, servers wait on row locks), so every
`RESCAN_INTERVAL` the last `LATE_COMMIT_WINDOW` seconds are read again; adding an id twice is a
no-op. Images are never deleted, so nothing is ever removed.

The index is saved under `<data_dir>/index/images/` as a snapshot (the index folder plus the
newest `first_seen` it covers and which database it indexes) named by a `CURRENT` file that is
replaced atomically, so processes saving at once never tear each other's copy. A start loads the
snapshot (memory-mapped) and reads only what was stored since; a missing, damaged or foreign
snapshot is rebuilt from the database.

Subsets (the images of one crawl, or with a source URL on one host) are read from the database
at query time, so they are always current, and given to the index as ids, which it answers at
the cost of the subset, not of the whole index.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import os
import re
import shutil
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import sqlalchemy as sa
from PIL import Image
from sqlalchemy import Connection, Engine

from sleuth.apps.images.app import NAME as APP
from sleuth.apps.images.limits import DEFAULT_LIMIT, DEFAULT_MAX_DISTANCE, MAX_DISTANCE, MAX_LIMIT
from sleuth.apps.images.models import (
    PHASH,
    ImageRecord,
    image_sources,
    images,
)
from sleuth.config import NetSettings
from sleuth.crawl.models import DONE, crawl_run_items
from sleuth.crawl.runs import run_exists
from sleuth.imaging.decode import decode_image
from sleuth.imaging.encode import thumbnail_png
from sleuth.imaging.errors import ImageError
from sleuth.imaging.gray import gray_image
from sleuth.imaging.hashes import phash_from_db
from sleuth.imaging.phash import phash_from_image
from sleuth.index import HammingIndex, IndexFileError
from sleuth.net.errors import FetchError
from sleuth.net.fetcher import Fetcher
from sleuth.record import TIME, from_row, record_field
from sleuth.services import Services

log = logging.getLogger(__name__)

MAX_MATCH_SOURCES = 20  # source URLs listed per match (their total is given too)
MAX_SOURCES = 100  # source URLs listed for one image
LATE_COMMIT_WINDOW = 60.0  # seconds; over SQLite's 30 s busy timeout, with room to spare
RESCAN_INTERVAL = 5.0  # seconds between re-reads of that window
READ_CHUNK = 50_000  # rows per fetch when reading the images table
LOOKUP_CHUNK = 100  # MD5 ranges per query when reading hits back
SAVE_MIN = 10_000  # save once this many images were indexed since the last save ...
SAVE_SHARE = 8  # ... and at least 1/8 of the index: a start never re-reads more than that
SNAPSHOT_GRACE = 60.0  # seconds an old snapshot is kept for a process still loading it
STATE_FORMAT = "sleuth.images-search"
STATE_VERSION = 1
_SNAPSHOT_NAME = re.compile(r"^(\d{20})-\d+$")
# A host as a search names it: a name or address, or an IPv6 address in brackets.
HOST_PATTERN = r"^([A-Za-z0-9_.:-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])$"
_HOST = re.compile(HOST_PATTERN)
# Pillow's warning filters are process-wide (see sleuth.imaging.decode): decode one at a time.
_DECODE_LOCK = threading.Lock()
# Fetch failures that are the query's fault; the others are the remote server's (502).
_CLIENT_FETCH_REASONS = frozenset({"bad_url", "blocked_address", "not_image", "too_large"})


class QueryError(Exception):
    """A search that cannot be answered: `code` is stable and machine-readable, `message`
    states the reason; `status` is the HTTP status that fits (400 the query, 404 an unknown
    subset, 502 a remote server that failed)."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Query:
    """The query image: its pHash and size."""

    phash: int = record_field("64-bit pHash", codec=PHASH)
    width: int = record_field("pixels", minimum=1)
    height: int = record_field("pixels", minimum=1)
    format: str = record_field(in_json=False)
    image: Image.Image = record_field(in_json=False)  # for the preview

    def preview_png(self, max_side: int) -> bytes:
        """A small gray PNG of the query, drawn like the gallery's thumbnails."""
        return thumbnail_png(gray_image(self.image), max_side)


def query_from_bytes(data: bytes, max_pixels: int) -> Query:
    """Decode an uploaded or fetched image (first frame, `max_pixels` guard) and pHash it."""
    with _DECODE_LOCK:
        try:
            decoded = decode_image(data, max_pixels)
            phash = phash_from_image(decoded.image)
        except ImageError as exc:
            raise QueryError(exc.reason, f"not a usable image: {exc}") from None
    return Query(phash, decoded.width, decoded.height, decoded.format, decoded.image)


def fetch_query_image(url: str, net: NetSettings) -> bytes:
    """Download a query image through the one fetcher (SSRF guard, size cap, retries)."""

    async def get() -> bytes:
        async with Fetcher(net) as fetcher:
            return (await fetcher.get(url, expect="image")).body

    try:
        return asyncio.run(get())
    except FetchError as exc:
        status = 400 if exc.reason in _CLIENT_FETCH_REASONS else 502
        raise QueryError(
            f"fetch_{exc.reason}", f"could not fetch {url[:200]}: {exc}", status
        ) from None


def normalize_host(host: str) -> str:
    """A source host as URLs name it once parsed: lower case, no brackets or final dot."""
    if not _HOST.search(host):
        raise QueryError("invalid_host", f"{host[:200]!r} is not a host name or address")
    return host.lower().strip("[]").rstrip(".")


def md5_ids(md5s: Sequence[str]) -> np.ndarray:
    """The index ids of MD5s (hex): their top 63 bits, as non-negative int64."""
    if not md5s:
        return np.empty(0, dtype=np.int64)
    top = np.frombuffer(bytes.fromhex("".join(m[:16] for m in md5s)), dtype=">u8")
    return (top >> np.uint64(1)).astype(np.int64)


def _md5_range(id_: int) -> tuple[str, str]:
    """The first and last MD5 (hex) whose index id is `id_`."""
    return f"{id_ << 1:016x}", f"{(id_ << 1) | 1:016x}" + "f" * 16


@dataclass(frozen=True)
class Source:
    """A URL an image was downloaded from."""

    url: str
    first_seen: float = record_field(codec=TIME)
    last_seen: float = record_field(codec=TIME)


@dataclass(frozen=True)
class Sourced(ImageRecord):
    """A stored image and the URLs it came from."""

    sources: tuple[Source, ...] = record_field(
        f"oldest first: at most {MAX_SOURCES} for one image, {MAX_MATCH_SOURCES} per match"
    )
    sources_total: int = record_field("how many URLs in all", minimum=0)


@dataclass(frozen=True)
class Match(Sourced):
    """A stored image within the distance."""

    distance: int = record_field(
        "Hamming distance between the two 64-bit pHashes", minimum=0, maximum=MAX_DISTANCE
    )


@dataclass(frozen=True)
class Found:
    """Matches by distance, then MD5."""

    max_distance: int = record_field(minimum=0, maximum=MAX_DISTANCE)
    limit: int = record_field(minimum=1, maximum=MAX_LIMIT)
    truncated: bool = record_field("more images lie within max_distance than limit lets through")
    matches: tuple[Match, ...] = record_field("by distance, then MD5")


@dataclass(frozen=True)
class Result:
    """A search: the query and what was found (`sleuth images search --json`)."""

    query: Query
    found: Found = record_field(flatten=True)


def _check_range(name: str, value: int, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise QueryError(
            "invalid_parameter", f"{name} must be an integer from {low} to {high}, not {value!r}"
        )


class ImageSearch:
    """The pHash index of one database's images, kept current and saved in `folder`.

    `database_key` names the database, so a snapshot of another one is never used;
    `rescan_interval` is how often late commits are looked for (see the module doc)."""

    def __init__(
        self,
        engine: Engine,
        folder: Path,
        database_key: str,
        *,
        rescan_interval: float = RESCAN_INTERVAL,
    ) -> None:
        self._engine = engine
        self._folder = Path(folder)
        self._database_key = database_key
        self._rescan_interval = rescan_interval
        self._lock = threading.Lock()  # one refresh or save at a time
        self._last_rescan = -math.inf
        self._index, self._high, self._saved = self._load()

    @classmethod
    def for_services(
        cls, services: Services, *, rescan_interval: float = RESCAN_INTERVAL
    ) -> ImageSearch:
        """The search of a configuration's database, saved under its data folder."""
        settings = services.settings
        key = hashlib.sha256(settings.effective_database_url.encode()).hexdigest()[:16]
        folder = settings.data_dir / "index" / "images"
        return cls(services.engine, folder, key, rescan_interval=rescan_interval)

    def __len__(self) -> int:
        return len(self._index)

    # ----------------------------------------------------------------- keeping up

    def refresh(self) -> int:
        """Index what was stored since the last refresh; returns how many images are new."""
        with self._lock:
            before = len(self._index)
            now = time.monotonic()
            if self._high is None:
                self._read(None)
            elif now - self._last_rescan >= self._rescan_interval:
                self._read(images.c.first_seen >= self._high - LATE_COMMIT_WINDOW)
                self._last_rescan = now
            else:
                self._read(images.c.first_seen > self._high)
            added = len(self._index) - before
            if len(self._index) - self._saved >= max(SAVE_MIN, len(self._index) // SAVE_SHARE):
                self._save_quietly()
            return added

    def _read(self, where: sa.ColumnElement[bool] | None) -> None:
        # Oldest first: of two images whose ids clash, the one stored first is indexed.
        query = sa.select(images.c.md5, images.c.phash, images.c.first_seen).order_by(
            images.c.first_seen, images.c.md5
        )
        if where is not None:
            query = query.where(where)
        parts_ids, parts_codes, newest = [], [], []
        with self._engine.connect() as conn:
            result = conn.execution_options(yield_per=READ_CHUNK).execute(query)
            for rows in result.partitions():
                md5s, codes, seen = zip(*rows, strict=True)
                parts_ids.append(md5_ids(md5s))
                parts_codes.append(np.array(codes, dtype=np.int64))
                newest.append(max(seen))
        if parts_ids:
            self._add(np.concatenate(parts_ids), np.concatenate(parts_codes))
            # Only now: rows of a read that failed half way are read again next time.
            self._high = max(newest if self._high is None else [*newest, self._high])

    def _add(self, ids: np.ndarray, codes: np.ndarray) -> None:
        """Add all; an id clash (two MD5s, one id, two pHashes) is bisected down to the one
        image that cannot be indexed, and logged."""
        try:
            self._index.add(ids, codes)
        except ValueError as exc:
            if len(ids) == 1:
                log.warning("image id %d cannot be indexed: %s", int(ids[0]), exc)
                return
            half = len(ids) // 2
            self._add(ids[:half], codes[:half])
            self._add(ids[half:], codes[half:])

    # ----------------------------------------------------------------- persistence

    def save(self) -> None:
        """Write a snapshot now (otherwise done when enough was added since the last one)."""
        with self._lock:
            self._save()

    def _save_quietly(self) -> None:
        """Saving is a cache for the next start: a failure must not fail the search."""
        try:
            self._save()
        except OSError as exc:
            log.warning("could not save the image search index in %s: %s", self._folder, exc)

    def _save(self) -> None:
        snapshots = self._folder / "snapshots"
        name = f"{time.time_ns():020d}-{os.getpid()}"
        snapshot = snapshots / name
        count = len(self._index)
        self._index.save(snapshot / "hamming")
        state = {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "database": self._database_key,
            "high_water": self._high,
        }
        _write_atomically(snapshot / "state.json", json.dumps(state))
        _write_atomically(self._folder / "CURRENT", name)
        self._saved = count
        self._prune(snapshots, name)

    @staticmethod
    def _prune(snapshots: Path, current: str) -> None:
        """Drop snapshots older than the current one, once no process can still be opening
        them (a process that is gets a rebuild, not a wrong answer)."""
        current_ns = int(current[:20])
        cutoff = time.time_ns() - int(SNAPSHOT_GRACE * 1e9)
        for path in snapshots.iterdir():
            match = _SNAPSHOT_NAME.match(path.name)
            born = int(match.group(1)) if match else 0
            if path.name != current and born < current_ns and born < cutoff:
                shutil.rmtree(path, ignore_errors=True)

    def _load(self) -> tuple[HammingIndex, float | None, int]:
        """The saved snapshot, or an empty index (read in full by the first refresh)."""
        try:
            name = (self._folder / "CURRENT").read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return HammingIndex(), None, 0
        try:
            if not _SNAPSHOT_NAME.match(name):
                raise ValueError(f"CURRENT names {name[:100]!r}, not a snapshot")
            snapshot = self._folder / "snapshots" / name
            state = json.loads((snapshot / "state.json").read_text(encoding="utf-8"))
            if state.get("format") != STATE_FORMAT or state.get("version") != STATE_VERSION:
                raise ValueError("not a snapshot of this format and version")
            if state.get("database") != self._database_key:
                log.info("the saved image search index is of another database: rebuilding")
                return HammingIndex(), None, 0
            high = state["high_water"]
            index = HammingIndex.load(snapshot / "hamming")
        except (OSError, ValueError, KeyError, TypeError, IndexFileError) as exc:
            log.warning("the saved image search index is unusable (%s): rebuilding", exc)
            return HammingIndex(), None, 0
        return index, None if high is None else float(high), len(index)

    # ----------------------------------------------------------------- searching

    def search(
        self,
        phash: int,
        max_distance: int = DEFAULT_MAX_DISTANCE,
        limit: int = DEFAULT_LIMIT,
        *,
        crawl: str | None = None,
        host: str | None = None,
    ) -> Found:
        """The stored images whose pHash is within `max_distance` of `phash`, nearest first
        (ties by MD5), at most `limit`; only those of `crawl` and/or with a source on
        `host` when given."""
        _check_range("max_distance", max_distance, 0, MAX_DISTANCE)
        _check_range("limit", limit, 1, MAX_LIMIT)
        self.refresh()
        with self._engine.connect() as conn:
            subset = self._subset(conn, crawl, host)
            hits = self._index.batch_radius_search([phash], max_distance, subset=subset)
            ids, _ = hits.arrays(0)
            matches = self._matches(conn, phash, max_distance, ids[:limit].tolist())
        return Found(max_distance, limit, len(ids) > limit, tuple(matches[:limit]))

    def _subset(self, conn: Connection, crawl: str | None, host: str | None) -> np.ndarray | None:
        subset = None
        if crawl is not None:
            if not run_exists(conn, APP, crawl):
                raise QueryError("crawl_not_found", f"no crawl with id {crawl[:100]!r}", 404)
            md5s = conn.execute(
                sa.select(crawl_run_items.c.result)
                .where(crawl_run_items.c.run_id == crawl, crawl_run_items.c.state == DONE)
                .distinct()
            ).scalars()
            subset = md5_ids([m for m in md5s if m])
        if host is not None:
            name = normalize_host(host)
            pattern = "%" + re.sub(r"([\\%_])", r"\\\1", name) + "%"
            rows = conn.execute(
                sa.select(image_sources.c.md5, image_sources.c.url).where(
                    sa.func.lower(image_sources.c.url).like(pattern, escape="\\")
                )
            )
            on_host = md5_ids(sorted({md5 for md5, url in rows if _hostname(url) == name}))
            subset = on_host if subset is None else np.intersect1d(subset, on_host)
        return subset

    def _matches(
        self, conn: Connection, phash: int, max_distance: int, ids: list[int]
    ) -> list[Match]:
        """Read hits back by MD5 range, with exact distances, sorted by distance then MD5."""
        wanted = set(ids)
        rows = []
        for lo in range(0, len(ids), LOOKUP_CHUNK):
            ranges = [images.c.md5.between(*_md5_range(i)) for i in ids[lo : lo + LOOKUP_CHUNK]]
            rows += conn.execute(sa.select(images).where(sa.or_(*ranges))).all()
        found = []
        for row in rows:
            distance = (phash_from_db(row.phash) ^ phash).bit_count()
            if distance <= max_distance and int(md5_ids([row.md5])[0]) in wanted:
                found.append((distance, row))
        found.sort(key=lambda pair: (pair[0], pair[1].md5))
        sourced = sources_of(conn, [from_row(ImageRecord, row) for _, row in found])
        return [Match(**vars(s), distance=d) for s, (d, _) in zip(sourced, found, strict=True)]


def _hostname(url: str) -> str | None:
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None


def sources_of(
    conn: Connection, records: Sequence[ImageRecord], limit: int = MAX_MATCH_SOURCES
) -> list[Sourced]:
    """Each image with its first `limit` sources (oldest first) and their total."""
    md5s = [r.md5 for r in records]
    if not md5s:
        return []
    c = image_sources.c
    numbered = (
        sa.select(
            c.md5,
            c.url,
            c.first_seen,
            c.last_seen,
            sa.func.row_number()
            .over(partition_by=c.md5, order_by=(c.first_seen, c.url_key))
            .label("n"),
        )
        .where(c.md5.in_(md5s))
        .subquery()
    )
    sources: dict[str, list[Source]] = {}
    for row in conn.execute(
        sa.select(numbered).where(numbered.c.n <= limit).order_by(numbered.c.n)
    ):
        sources.setdefault(row.md5, []).append(Source(row.url, row.first_seen, row.last_seen))
    counted = sa.select(c.md5, sa.func.count()).where(c.md5.in_(md5s)).group_by(c.md5)
    totals = {md5: int(total) for md5, total in conn.execute(counted)}
    return [
        Sourced(**vars(r), sources=tuple(sources.get(md5, ())), sources_total=totals.get(md5, 0))
        for r, md5 in zip(records, md5s, strict=True)
    ]


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
