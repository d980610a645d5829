"""Writes of the images app. Each is one transaction and idempotent: a job that runs twice
finds its line already resolved and changes nothing, so outcome counters never double."""

from __future__ import annotations

import hashlib
import time
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
    """One line of a crawled URL list: the unit of work and of outcome counting."""

    crawl: str
    line: int
    url: str

    @classmethod
    def from_payload(cls, payload: dict) -> Item:
        return cls(crawl=payload["crawl"], line=int(payload["line"]), url=payload["url"])

    def payload(self) -> dict:
        return {"crawl": self.crawl, "line": self.line, "url": self.url}

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


def is_resolved(engine: Engine, item: Item) -> bool:
    with engine.connect() as conn:
        outcome = conn.execute(
            sa.select(crawl_items.c.outcome).where(
                crawl_items.c.crawl_id == item.crawl, crawl_items.c.line_no == item.line
            )
        ).scalar()
    return outcome is not None


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
        sa.update(crawl_items)
        .where(
            crawl_items.c.crawl_id == item.crawl,
            crawl_items.c.line_no == item.line,
            crawl_items.c.outcome.is_(None),
        )
        .values(
            outcome=outcome,
            md5=md5,
            reason=reason,
            detail=(detail or "")[:2000] or None,
            http_status=http_status,
            finished_at=now,
        )
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
    return in_transaction(engine, lambda conn: _store(conn, item, image))


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
        conn.execute(sa.update(images).where(images.c.md5 == image.md5).values(last_seen=now))
    key = url_key(item.url)
    source = {"md5": image.md5, "url_key": key, "url": item.url}
    if not insert_ignore(conn, image_sources, {**source, "first_seen": now, "last_seen": now}):
        conn.execute(
            sa.update(image_sources)
            .where(image_sources.c.md5 == image.md5, image_sources.c.url_key == key)
            .values(last_seen=now)
        )
    outcome = "success" if inserted else "duplicate"
    _resolve(conn, item, outcome, md5=image.md5)
    return outcome
