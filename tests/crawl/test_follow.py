"""Following a run from the command line, for any app: items listed while workers run, the
run finished when every item is resolved, a failed listing reported with its reason."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from sleuth.crawl import runs
from sleuth.crawl.follow import ListingError, follow_run
from sleuth.crawl.models import crawl_runs
from sleuth.jobs.base import QueueBackend
from tests.crawl.conftest import APP, WORK, toy_job

RUN = runs.run_id_for("toy follow")
LABELS = {"success": "ok", "error": "err"}


def lister(engine: Engine, queue: QueueBackend, n: int) -> Callable[[], None]:
    def list_items() -> None:
        items = [runs.RunItem(RUN, str(i), f"toy:{i}") for i in range(n)]
        runs.add_items(engine, queue, items, toy_job)
        runs.set_total(engine, RUN, n)

    return list_items


def work_once(engine: Engine, queue: QueueBackend) -> None:
    """The toy items' worker: odd keys fail, even ones succeed."""
    for job in queue.reserve([WORK.queue], 10, 60.0, "toy-worker"):
        key = str(job.payload["key"])
        with engine.begin() as conn:
            if int(key) % 2:
                runs.fail(conn, APP, RUN, key, "odd", f"{key} is odd")
            else:
                runs.resolve(conn, APP, RUN, key, "success")
        queue.ack(job)


def finished_at(engine: Engine) -> float | None:
    with engine.connect() as conn:
        query = sa.select(crawl_runs.c.finished_at).where(crawl_runs.c.id == RUN)
        return conn.execute(query).scalar()


def test_workers_here_run_the_items_to_the_end(engine: Engine, queue: QueueBackend) -> None:
    runs.open_run(engine, RUN, APP, "toy follow")

    async def workers(until: Callable[[], bool]) -> None:
        while not await asyncio.to_thread(until):
            await asyncio.to_thread(work_once, engine, queue)

    final = follow_run(
        engine, queue, RUN, lister(engine, queue, 7), [WORK.queue], LABELS, run_workers=workers
    )
    assert (final.total, final.done, final.finished) == (7, 7, True)
    assert dict(final.outcomes) == {"success": 4, "error": 3}
    assert finished_at(engine) is not None


def test_following_only_while_workers_run_elsewhere(engine: Engine, queue: QueueBackend) -> None:
    runs.open_run(engine, RUN, APP, "toy follow")
    stop = threading.Event()

    def elsewhere() -> None:
        while not stop.is_set():
            work_once(engine, queue)
            stop.wait(0.05)

    machine = threading.Thread(target=elsewhere)
    machine.start()
    try:
        final = follow_run(
            engine, queue, RUN, lister(engine, queue, 5), [WORK.queue], LABELS, run_workers=None
        )
    finally:
        stop.set()
        machine.join()
    assert final.finished and final.done == 5


def test_a_failed_listing_is_reported(engine: Engine, queue: QueueBackend) -> None:
    runs.open_run(engine, RUN, APP, "toy follow")

    def broken() -> None:
        raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")

    with pytest.raises(ListingError, match="invalid start byte") as caught:
        follow_run(engine, queue, RUN, broken, [WORK.queue], LABELS, run_workers=None)
    assert isinstance(caught.value.__cause__, UnicodeDecodeError)
    assert finished_at(engine) is None
