"""Running a crawl from the command line: its items are listed in a thread while workers
(here, or on other machines) work on them, and the run's progress line is redrawn, until
every item is resolved, nothing is left to run, or every job left waits more than `PARKED`
ahead (a usage cap: the command says until when). Ctrl-C stops it; the same command resumes."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence

from sqlalchemy import Engine

from sleuth.crawl.progress import PatientCheck, ProgressLine
from sleuth.crawl.runs import Progress, mark_finished, progress
from sleuth.jobs.base import QueueBackend
from sleuth.timefmt import iso_utc

REFRESH = 0.5  # seconds between two redraws of the progress line
# Jobs postponed further ahead than this (beyond any rate-limit window, which the command
# waits for) end the command: a usage cap may be a month away.
PARKED = 3600.0
PARKED_CHECK = 2.0  # seconds between two looks at the queues' delayed jobs

# Runs this process's workers until the given check says the crawl is done.
RunWorkers = Callable[[Callable[[], bool]], Awaitable[None]]


class ListingError(RuntimeError):
    """Listing the run's items failed; the cause is the listing's own exception."""


class _Lister(threading.Thread):
    """Lists the items while the workers already run."""

    def __init__(self, list_items: Callable[[], object]) -> None:
        super().__init__(name="sleuth-list-items", daemon=True)
        self.list_items = list_items
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.list_items()
        except BaseException as exc:
            self.error = exc


def follow_run(
    engine: Engine,
    queue: QueueBackend,
    run: str,
    list_items: Callable[[], object],
    queues: Sequence[str],
    labels: Mapping[str, str],
    *,
    run_workers: RunWorkers | None,
    listing: str = "listing",
) -> Progress:
    """Run `list_items` (which adds the run's items and sets its total) and follow the run
    to its end, or until interrupted; returns its final progress and records a finished run.
    With `run_workers` None only follow: workers of `queues` run elsewhere."""
    lister = _Lister(list_items)
    lister.start()
    line = ProgressLine(labels, listing=listing)
    reading = PatientCheck("reading the crawl's progress")
    checking = PatientCheck("checking whether the crawl is done")

    parked: list[tuple[int, float]] = []  # (jobs, when the soonest is due), once parked
    looked = [0.0]

    def is_parked() -> bool:
        if time.monotonic() - looked[0] < PARKED_CHECK:
            return False
        looked[0] = time.monotonic()
        stats = [s for s in queue.stats() if s.queue in queues]
        if any(s.ready or s.in_flight for s in stats):
            return False
        due = [s.next_due_in for s in stats if s.next_due_in is not None]
        if not due or min(due) < PARKED:
            return False
        parked.append((sum(s.delayed for s in stats), time.time() + min(due)))
        return True

    def finished() -> bool:
        # Every item has its outcome, or nothing is left to run (an item whose jobs died is
        # reported by the summary and `sleuth dead-letter list`), or nothing for an hour.
        return progress(engine, run).finished or queue.pending(queues) == 0 or is_parked()

    def done() -> bool:
        if lister.error is not None:  # stop, and say why below
            return True
        if lister.is_alive():
            return False
        return checking(finished, default=False)

    async def follow() -> None:
        while True:
            p = await asyncio.to_thread(reading, progress, engine, run, default=None)
            if p is not None:
                line.update(p)
            if await asyncio.to_thread(done):
                return
            await asyncio.sleep(REFRESH)

    async def main() -> None:
        if run_workers is None:
            await follow()
            return
        display = asyncio.create_task(follow())
        try:
            await run_workers(done)
        finally:
            display.cancel()

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C with no worker here: just stop
        asyncio.run(main())
    final = progress(engine, run)
    line.close(final)
    if parked and not final.finished:
        jobs, due = parked[-1]
        line.stream.write(
            f"{jobs} job(s) wait until {iso_utc(due)} (a rate limit or a usage cap; "
            "`sleuth queues` lists them): run the same command again then, or keep "
            "`sleuth serve` running to go on by itself.\n"
        )
    if lister.error is not None:
        raise ListingError(str(lister.error)) from lister.error
    if final.finished:
        mark_finished(engine, run)
    return final
