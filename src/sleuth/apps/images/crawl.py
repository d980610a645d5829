"""Crawls: a URL list read as a stream, one `fetch` job per line, resumable.

A crawl is named after its list file, so running the same command again resumes it: lines
already resolved are skipped and lines still queued are not queued twice (dedup keys)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import sqlalchemy as sa
from sqlalchemy import Engine

from sleuth.apps.images.models import crawl_items, crawls
from sleuth.apps.images.pipeline import FETCH
from sleuth.apps.images.records import Item
from sleuth.jobs.base import QueueBackend
from sleuth.store.upsert import insert_ignore, insert_ignore_many

BATCH = 1000


@dataclass(frozen=True)
class Progress:
    total: int | None  # None while the list is still being read
    queued: int
    success: int
    duplicate: int
    error: int

    @property
    def done(self) -> int:
        return self.success + self.duplicate + self.error

    @property
    def finished(self) -> bool:
        return self.total is not None and self.done >= self.total


def crawl_id_for(source: str, fresh: bool = False) -> str:
    """The crawl of a list file is keyed by its absolute path; `fresh` starts a new one."""
    name = str(Path(source).resolve()) if source != "-" else "-"
    if fresh:
        name += f"#{time.time_ns()}"
    return hashlib.sha1(name.encode()).hexdigest()


def open_crawl(engine: Engine, crawl_id: str, source: str) -> None:
    with engine.begin() as conn:
        insert_ignore(conn, crawls, {"id": crawl_id, "source": source, "created_at": time.time()})


def read_lines(stream: IO[str]) -> Iterator[tuple[int, str]]:
    """(line number, URL) for every non-blank, non-comment line; numbering is physical."""
    for number, raw in enumerate(stream, start=1):
        url = raw.strip()
        if url and not url.startswith("#"):
            yield number, url


def _flush(engine: Engine, queue: QueueBackend, crawl_id: str, batch: list[Item]) -> int:
    lines = [item.line for item in batch]
    with engine.begin() as conn:
        insert_ignore_many(
            conn,
            crawl_items,
            [{"crawl_id": crawl_id, "line_no": i.line, "url": i.url} for i in batch],
        )
        done = set(
            conn.execute(
                sa.select(crawl_items.c.line_no).where(
                    crawl_items.c.crawl_id == crawl_id,
                    crawl_items.c.line_no.between(min(lines), max(lines)),
                    crawl_items.c.outcome.is_not(None),
                )
            ).scalars()
        )
    todo = [(i, f"fetch:{i.key}") for i in batch if i.line not in done]
    return queue.send_many(FETCH, todo) if todo else 0


def enqueue_list(engine: Engine, queue: QueueBackend, crawl_id: str, stream: IO[str]) -> int:
    """Queue every unresolved line of the list, in bounded batches; returns the line count."""
    total = 0
    batch: list[Item] = []
    for number, url in read_lines(stream):
        total += 1
        batch.append(Item(crawl=crawl_id, line=number, url=url))
        if len(batch) >= BATCH:
            _flush(engine, queue, crawl_id, batch)
            batch = []
    if batch:
        _flush(engine, queue, crawl_id, batch)
    with engine.begin() as conn:
        conn.execute(sa.update(crawls).where(crawls.c.id == crawl_id).values(lines_total=total))
    return total


def progress(engine: Engine, crawl_id: str) -> Progress:
    with engine.connect() as conn:
        total = conn.execute(
            sa.select(crawls.c.lines_total).where(crawls.c.id == crawl_id)
        ).scalar()
        rows = conn.execute(
            sa.select(crawl_items.c.outcome, sa.func.count())
            .where(crawl_items.c.crawl_id == crawl_id)
            .group_by(crawl_items.c.outcome)
        ).all()
    counts = {outcome: int(n) for outcome, n in rows}
    return Progress(
        total=total,
        queued=sum(counts.values()),
        success=counts.get("success", 0),
        duplicate=counts.get("duplicate", 0),
        error=counts.get("error", 0),
    )


def error_reasons(engine: Engine, crawl_id: str) -> list[tuple[str, int]]:
    """Errors of a crawl grouped by reason, most frequent first, for the summary."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(crawl_items.c.reason, sa.func.count().label("n"))
            .where(crawl_items.c.crawl_id == crawl_id, crawl_items.c.outcome == "error")
            .group_by(crawl_items.c.reason)
            .order_by(sa.desc("n"))
        ).all()
    return [(reason or "unknown", int(n)) for reason, n in rows]
