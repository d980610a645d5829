"""Crawls of the images app: a URL list read as a stream, one `fetch` job per line, on the
crawl layer (`sleuth.crawl`): each line is an item keyed by its line number.

A crawl is named after its list file, so running the same command again resumes it: lines
already resolved are skipped and lines still queued are not queued twice (dedup keys)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import IO

from sqlalchemy import Engine

from sleuth.apps.images.pipeline import FETCH
from sleuth.apps.images.records import APP, Item
from sleuth.crawl import runs
from sleuth.crawl.failures import by_reason
from sleuth.jobs.base import QueueBackend

BATCH = 1000
# Outcomes as the progress line shows them.
LABELS = {"success": "ok", "duplicate": "dup", "error": "err"}


class Progress(runs.Progress):
    """A crawl's progress, with the images app's three outcomes by name."""

    @classmethod
    def of(cls, p: runs.Progress) -> Progress:
        return cls(total=p.total, listed=p.listed, outcomes=p.outcomes)

    @property
    def success(self) -> int:
        return self.count("success")

    @property
    def duplicate(self) -> int:
        return self.count("duplicate")

    @property
    def error(self) -> int:
        return self.count("error")


def crawl_id_for(source: str, fresh: bool = False) -> str:
    """The crawl of a list file is keyed by its absolute path; `fresh` starts a new one."""
    return runs.run_id_for(str(Path(source).resolve()) if source != "-" else "-", fresh)


def open_crawl(engine: Engine, crawl_id: str, source: str) -> None:
    runs.open_run(engine, crawl_id, APP, source)


def item_job(item: runs.RunItem) -> runs.ItemJob:
    """A line's `fetch` job: what a crawl queues and `retry-errors` queues again."""
    line = Item(crawl=item.run, line=int(item.key), url=item.target)
    return runs.ItemJob(FETCH, line, f"fetch:{line.key}")


def read_lines(stream: IO[str]) -> Iterator[tuple[int, str]]:
    """(line number, URL) for every non-blank, non-comment line; numbering is physical."""
    for number, raw in enumerate(stream, start=1):
        url = raw.strip()
        if url and not url.startswith("#"):
            yield number, url


def enqueue_list(engine: Engine, queue: QueueBackend, crawl_id: str, stream: IO[str]) -> int:
    """Queue every unresolved line of the list, in bounded batches; returns the line count."""
    total = 0
    batch: list[runs.RunItem] = []
    for number, url in read_lines(stream):
        total += 1
        batch.append(runs.RunItem(crawl_id, str(number), url))
        if len(batch) >= BATCH:
            runs.add_items(engine, queue, batch, item_job)
            batch = []
    if batch:
        runs.add_items(engine, queue, batch, item_job)
    runs.set_total(engine, crawl_id, total)
    return total


def progress(engine: Engine, crawl_id: str) -> Progress:
    return Progress.of(runs.progress(engine, crawl_id))


def error_reasons(engine: Engine, crawl_id: str) -> list[tuple[str, int]]:
    """Errors of a crawl grouped by reason, most frequent first, for the summary."""
    with engine.connect() as conn:
        return list(by_reason(conn, APP, crawl_id).items())
