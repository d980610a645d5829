"""Writes of the images app. Each is one transaction and idempotent: a job that runs twice
finds its line already resolved and changes nothing, so outcome counters never double."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from sleuth.apps.images.models import crawl_items, image_sources, images, phash_to_db
from sleuth.observe.counters import count_outcome
from sleuth.store.retry import in_transaction
from sleuth.store.upsert import insert_ignore

APP = "images"


@dataclass(frozen=True)
class Item:
    """One line of a crawled URL list: the unit of work and of outcome counting, and the
    payload of the pipeline's per-line tasks."""

    crawl: str
    line: int
    url: str

    @property
    def key(self) -> str:
        return f"{self.crawl}-{self.line}"


@dataclass(frozen=True)
class StoredImage:
    md5: str
    size: int
    width: int
    height: int
    phash: int
    gray_key: str
    format: str
    mode: str


def url_key(url: str) -> str:
    return hashlib.sha1(url.encode("utf-8", "surrogatepass")).hexdigest()


# Statements run once or more per image, built once and given their values as parameters
# (building them per call cost more Python time than the database spent running them).
# Parameters named after a column set it; the `w_` ones are compared in WHERE clauses.
_LINE = (
    crawl_items.c.crawl_id == sa.bindparam("w_crawl"),
    crawl_items.c.line_no == sa.bindparam("w_line"),
)
_OUTCOME = sa.select(crawl_items.c.outcome).where(*_LINE)
_RESOLVE = sa.update(crawl_items).where(*_LINE, crawl_items.c.outcome.is_(None))
_SEEN_IMAGE = sa.update(images).where(images.c.md5 == sa.bindparam("w_md5"))
_SEEN_SOURCE = sa.update(image_sources).where(
    image_sources.c.md5 == sa.bindparam("w_md5"),
    image_sources.c.url_key == sa.bindparam("w_url_key"),
)


def _line(item: Item) -> dict[str, object]:
    return {"w_crawl": item.crawl, "w_line": item.line}


def is_resolved(engine: Engine, item: Item) -> bool:
    with engine.connect() as conn:
        outcome = conn.execute(_OUTCOME, _line(item)).scalar()
    return outcome is not None


def resolved_items(engine: Engine, items: Sequence[Item]) -> set[Item]:
    """The items whose line has an outcome, in one query per crawl."""
    by_crawl: dict[str, list[Item]] = {}
    for item in items:
        by_crawl.setdefault(item.crawl, []).append(item)
    done: set[Item] = set()
    with engine.connect() as conn:
        for crawl, members in by_crawl.items():
            lines = conn.execute(
                sa.select(crawl_items.c.line_no).where(
                    crawl_items.c.crawl_id == crawl,
                    crawl_items.c.line_no.in_([item.line for item in members]),
                    crawl_items.c.outcome.is_not(None),
                )
            ).scalars()
            resolved = set(lines)
            done.update(item for item in members if item.line in resolved)
    return done


def _resolve(
    conn: Connection,
    item: Item,
    outcome: str,
    *,
    md5: str | None = None,
    reason: str | None = None,
    detail: str | None = None,
    http_status: int | None = None,
) -> bool:
    """Set the line's outcome unless it has one, and count it; True when this call did."""
    now = time.time()
    changed = conn.execute(
        _RESOLVE,
        {
            **_line(item),
            "outcome": outcome,
            "md5": md5,
            "reason": reason,
            "detail": (detail or "")[:2000] or None,
            "http_status": http_status,
            "finished_at": now,
        },
    ).rowcount
    if changed:
        count_outcome(conn, APP, outcome, now)
    return bool(changed)


def record_error(
    engine: Engine, item: Item, reason: str, detail: str, http_status: int | None = None
) -> bool:
    with engine.begin() as conn:
        return _resolve(conn, item, "error", reason=reason, detail=detail, http_status=http_status)


def store_image(engine: Engine, item: Item, image: StoredImage) -> str:
    """Insert the image once per MD5 and the URL as one of its sources; the line's outcome is
    `success` for the first time these bytes are seen, `duplicate` after. Run again whole
    when the database breaks a deadlock (MariaDB does, between workers storing one MD5)."""
    return store_images(engine, [(item, image)])[0]


def store_images(engine: Engine, stored: Sequence[tuple[Item, StoredImage]]) -> list[str]:
    """`store_image` for many lines in one transaction (in MD5 order, so that two workers
    storing overlapping batches take row locks in the same order); their outcomes, in order."""
    order = sorted(range(len(stored)), key=lambda i: (stored[i][1].md5, i))

    def work(conn: Connection) -> list[str]:
        outcomes = [""] * len(stored)
        for i in order:
            outcomes[i] = _store(conn, *stored[i])
        return outcomes

    return in_transaction(engine, work)


def _store(conn: Connection, item: Item, image: StoredImage) -> str:
    now = time.time()
    inserted = insert_ignore(
        conn,
        images,
        {
            "md5": image.md5,
            "width": image.width,
            "height": image.height,
            "phash": phash_to_db(image.phash),
            "gray_key": image.gray_key,
            "format": image.format,
            "mode": image.mode,
            "bytes": image.size,
            "first_seen": now,
            "last_seen": now,
        },
    )
    if not inserted:
        conn.execute(_SEEN_IMAGE, {"w_md5": image.md5, "last_seen": now})
    key = url_key(item.url)
    source = {"md5": image.md5, "url_key": key, "url": item.url}
    if not insert_ignore(conn, image_sources, {**source, "first_seen": now, "last_seen": now}):
        conn.execute(_SEEN_SOURCE, {"w_md5": image.md5, "w_url_key": key, "last_seen": now})
    outcome = "success" if inserted else "duplicate"
    _resolve(conn, item, outcome, md5=image.md5)
    return outcome
