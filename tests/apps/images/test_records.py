"""The images app's writes on SQLite, PostgreSQL and MariaDB: each line resolved once, each
image stored once per MD5 however many workers race, counters that never double, and every
64-bit pHash kept exactly."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from sleuth.app import migration_dirs
from sleuth.apps.images.models import (
    ImageContent,
    image_sources,
    images,
)
from sleuth.apps.images.records import Item, is_resolved, record_error, store_image
from sleuth.crawl.models import crawl_failures, crawl_run_items
from sleuth.crawl.runs import open_run
from sleuth.imaging.hashes import phash_from_db, phash_to_db
from sleuth.observe.counters import outcome_counts
from sleuth.store.db import make_engine, migrate
from tests.patience import PATIENCE

CRAWL = "records"


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    migrate(engine, migration_dirs())
    open_run(engine, CRAWL, "images", "tests")
    yield engine
    engine.dispose()


def add_lines(engine: Engine, urls: list[str]) -> list[Item]:
    with engine.begin() as conn:
        start = conn.execute(sa.select(sa.func.count()).select_from(crawl_run_items)).scalar_one()
        items = [Item(CRAWL, start + i + 1, url) for i, url in enumerate(urls)]
        conn.execute(
            sa.insert(crawl_run_items),
            [
                {"run_id": CRAWL, "item_key": str(it.line), "target": it.url, "state": "queued"}
                for it in items
            ],
        )
    return items


def image(md5: str = "a" * 32, phash: int = 0x0123456789ABCDEF) -> ImageContent:
    return ImageContent(
        md5=md5, bytes=10, width=2, height=3, phash=phash, gray_key="b" * 64, format="PNG", mode="L"
    )


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(outcome_counts.c.outcome, sa.func.sum(outcome_counts.c.count)).group_by(
                outcome_counts.c.outcome
            )
        ).all()
    return {outcome: int(total) for outcome, total in rows}


def outcomes(engine: Engine) -> list[str | None]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(crawl_run_items.c.item_key, crawl_run_items.c.outcome))
        return [outcome for _, outcome in sorted(rows, key=lambda r: int(r[0]))]


def test_a_line_is_resolved_once_whatever_runs_twice(engine: Engine) -> None:
    first, second = add_lines(engine, ["http://h/1.png", "http://h/2.png"])
    assert not is_resolved(engine, first)
    assert store_image(engine, first, image()) == "success"
    assert is_resolved(engine, first)
    store_image(engine, first, image())  # the store job delivered again
    assert record_error(engine, first, "timeout", "late") is False  # resolved: no change
    assert record_error(engine, second, "http_status", "x" * 5000, 404) is True
    assert record_error(engine, second, "http_status", "again", 404) is False
    assert outcomes(engine) == ["success", "error"]
    assert counts(engine) == {"success": 1, "error": 1}
    with engine.connect() as conn:
        query = sa.select(crawl_failures).where(crawl_failures.c.item_key == str(second.line))
        row = conn.execute(query).mappings().one()
        assert (row["reason"], row["http_status"], len(row["message"])) == (
            "http_status",
            404,
            2000,
        )
        assert row["attempts"] == 1
        assert conn.execute(sa.select(sa.func.count()).select_from(image_sources)).scalar() == 1


def test_racing_workers_store_each_md5_once(engine: Engine) -> None:
    """8 lines with the same bytes, stored by 8 threads at once: one success, 7 duplicates,
    one image row, 8 sources, counters that add up."""
    items = add_lines(engine, [f"http://h/copy-{i}.png" for i in range(8)])
    url = engine.url.render_as_string(hide_password=False)
    start = threading.Barrier(len(items))
    results: list[str] = []

    def store(item: Item) -> None:
        own = make_engine(url)
        start.wait(PATIENCE)
        results.append(store_image(own, item, image()))
        own.dispose()

    threads = [threading.Thread(target=store, args=(item,)) for item in items]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(PATIENCE)
    assert sorted(results) == ["duplicate"] * 7 + ["success"]
    assert counts(engine) == {"success": 1, "duplicate": 7}
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(images)).scalar() == 1
        assert conn.execute(sa.select(sa.func.count()).select_from(image_sources)).scalar() == 8


PHASHES = [0, 1, 2**63 - 1, 2**63, 2**64 - 1, 0x8000_0000_0000_0001]


def test_every_64_bit_phash_is_kept_exactly(engine: Engine) -> None:
    items = add_lines(engine, [f"http://h/p{i}.png" for i in range(len(PHASHES))])
    for item, phash in zip(items, PHASHES, strict=True):
        store_image(engine, item, image(md5=f"{phash:032x}", phash=phash))
    with engine.connect() as conn:
        stored = dict(conn.execute(sa.select(images.c.md5, images.c.phash)).all())
    assert {phash_from_db(stored[f"{p:032x}"]) for p in PHASHES} == set(PHASHES)
    assert all(phash_to_db(p) == stored[f"{p:032x}"] for p in PHASHES)
