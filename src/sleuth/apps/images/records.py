"""Writes of the images app. Each is one transaction and idempotent: a job that runs twice
finds its line (a crawl item, `sleuth.crawl.runs`) already resolved and changes nothing, so
outcome counters never double."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from sleuth.apps.images.app import NAME as APP
from sleuth.apps.images.models import ImageContent, ImageRecord, image_sources, images
from sleuth.crawl import runs
from sleuth.record import to_row
from sleuth.store.retry import in_transaction
from sleuth.store.upsert import insert_ignore


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


def url_key(url: str) -> str:
    return hashlib.sha1(url.encode("utf-8", "surrogatepass")).hexdigest()


# Statements run once or more per image, built once and given their values as parameters
# (building them per call cost more Python time than the database spent running them).
# Parameters named after a column set it; the `w_` ones are compared in WHERE clauses.
_SEEN_IMAGE = sa.update(images).where(images.c.md5 == sa.bindparam("w_md5"))
_SEEN_SOURCE = sa.update(image_sources).where(
    image_sources.c.md5 == sa.bindparam("w_md5"),
    image_sources.c.url_key == sa.bindparam("w_url_key"),
)


def is_resolved(engine: Engine, item: Item) -> bool:
    return runs.is_resolved(engine, item.crawl, str(item.line))


def resolved_items(engine: Engine, items: Sequence[Item]) -> set[Item]:
    """The items whose line has its outcome, in one query per crawl."""
    with engine.connect() as conn:
        done = runs.resolved_keys(conn, [runs.RunItem(i.crawl, str(i.line), i.url) for i in items])
    return {item for item in items if (item.crawl, str(item.line)) in done}


def record_error(
    engine: Engine, item: Item, reason: str, detail: str, http_status: int | None = None
) -> bool:
    """Fail the line (once, however often its job runs) and record why."""
    with engine.begin() as conn:
        return runs.fail(conn, APP, item.crawl, str(item.line), reason, detail, http_status)


def store_image(engine: Engine, item: Item, image: ImageContent) -> str:
    """Insert the image once per MD5 and the URL as one of its sources; the line's outcome is
    `success` for the first time these bytes are seen, `duplicate` after. Run again whole
    when the database breaks a deadlock (MariaDB does, between workers storing one MD5)."""
    return store_images(engine, [(item, image)])[0]


def store_images(engine: Engine, stored: Sequence[tuple[Item, ImageContent]]) -> list[str]:
    """`store_image` for many lines in one transaction (in MD5 order, so that two workers
    storing overlapping batches take row locks in the same order); their outcomes, in order."""
    order = sorted(range(len(stored)), key=lambda i: (stored[i][1].md5, i))

    def work(conn: Connection) -> list[str]:
        outcomes = [""] * len(stored)
        for i in order:
            outcomes[i] = _store(conn, *stored[i])
        return outcomes

    return in_transaction(engine, work)


def _store(conn: Connection, item: Item, image: ImageContent) -> str:
    now = time.time()
    row = to_row(ImageRecord(**vars(image), first_seen=now, last_seen=now))
    inserted = insert_ignore(conn, images, row)
    if not inserted:
        conn.execute(_SEEN_IMAGE, {"w_md5": image.md5, "last_seen": now})
    key = url_key(item.url)
    source = {"md5": image.md5, "url_key": key, "url": item.url}
    if not insert_ignore(conn, image_sources, {**source, "first_seen": now, "last_seen": now}):
        conn.execute(_SEEN_SOURCE, {"w_md5": image.md5, "w_url_key": key, "last_seen": now})
    outcome = "success" if inserted else "duplicate"
    runs.resolve(conn, APP, item.crawl, str(item.line), outcome, result=image.md5)
    return outcome
