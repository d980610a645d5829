"""Jobs delivered again after their line was resolved change nothing and leave nothing behind."""

from __future__ import annotations

import asyncio
from pathlib import Path

import sqlalchemy as sa

from sleuth.apps.images.cli import crawl_list
from sleuth.apps.images.crawl import crawl_id_for
from sleuth.apps.images.models import image_sources, images
from sleuth.apps.images.pipeline import GRAYSCALE, INFLIGHT_EXT, MD5, Md5Job
from sleuth.apps.images.records import Item
from sleuth.crawl.models import crawl_run_items
from sleuth.emulator.imagehost import create_imagehost_app
from sleuth.emulator.server import EmulatorServer
from sleuth.runner import run_worker
from tests.apps.images.test_crawl_e2e import loopback_services


def _snapshot(services) -> tuple[list, list, list]:  # type: ignore[no-untyped-def]
    with services.engine.connect() as conn:
        return tuple(  # type: ignore[return-value]
            sorted(map(tuple, conn.execute(sa.select(table)).all()), key=repr)
            for table in (images, image_sources, crawl_run_items)
        )


def test_a_late_original_is_removed_by_the_redelivered_stages(tmp_path: Path) -> None:
    with EmulatorServer(create_imagehost_app(seed=0)) as base_url:
        _crawl_then_redeliver(tmp_path, base_url)


def _crawl_then_redeliver(tmp_path: Path, base_url: str) -> None:
    urls_file = tmp_path / "urls.txt"
    urls_file.write_text(f"{base_url}/64/48\n", encoding="utf-8")
    services = loopback_services(tmp_path / "data", processes=1)
    crawl_id = crawl_id_for(str(urls_file))
    with urls_file.open(encoding="utf-8") as stream:
        assert crawl_list(services, crawl_id, stream).success == 1
    before = _snapshot(services)

    # A fetch delivered twice finished after `store`: its original is back, and the md5 and
    # grayscale jobs it enqueued will run.
    key = f"{crawl_id}-1"
    services.blobs.put(key, INFLIGHT_EXT, b"late bytes", overwrite=True)
    item = Item(crawl=crawl_id, line=1, url=f"{base_url}/64/48")
    services.queue.send(MD5, Md5Job(item.crawl, item.line, item.url))
    services.queue.send(GRAYSCALE, item)

    asyncio.run(
        run_worker(
            services,
            until=lambda: services.queue.pending([MD5.queue, GRAYSCALE.queue]) == 0,
            handle_signals=False,
        )
    )
    assert not services.blobs.path(key, INFLIGHT_EXT).exists()
    assert _snapshot(services) == before
    services.close()
