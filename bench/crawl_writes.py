"""The database cost of a crawl's line bookkeeping: listing the lines (`enqueue_list`), then
resolving each one in its own transaction as the pipeline's last stage does (`store_image` for
9 lines in 10, `record_error` for the tenth), then the same again (a redelivery: no change).

    .venv/bin/python -m bench.crawl_writes [--lines 5000] [--database-url URL] [--dir /tmp]

Uses only the images app's API that is the same before and after the crawl layer, so running
it with another checkout's interpreter measures that checkout (e.g. `main`'s, from its own
venv). Prints microseconds of wall and of this process's CPU per line for each phase.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import sleuth
from sleuth.apps.images.crawl import crawl_id_for, enqueue_list, open_crawl
from sleuth.apps.images.models import ImageContent
from sleuth.apps.images.records import Item, record_error, store_image
from sleuth.config import Settings
from sleuth.services import Services


def timed(what: str, lines: int, work: Callable[[], object]) -> None:
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{what:<28} {1e6 * wall / lines:8.0f} µs/line wall {1e6 * cpu / lines:8.0f} µs/line CPU")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=5000)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="sleuth-bench-crawl-", dir=args.dir))
    services = Services(Settings(data_dir=folder, database_url=args.database_url))
    engine, queue = services.engine, services.queue
    print(f"sleuth from {Path(sleuth.__file__).parent}, Python {platform.python_version()}")
    print(f"database {engine.url.render_as_string(hide_password=True)}, {args.lines} lines")

    listing = "".join(f"http://127.0.0.1:9/{i}.jpg\n" for i in range(args.lines))
    source = str(folder / "urls.txt")
    crawl_id = crawl_id_for(source)
    open_crawl(engine, crawl_id, source)
    timed(
        "list (enqueue_list)",
        args.lines,
        lambda: enqueue_list(engine, queue, crawl_id, io.StringIO(listing)),
    )

    def image(i: int) -> ImageContent:
        md5 = hashlib.md5(str(i).encode()).hexdigest()
        return ImageContent(
            width=64,
            height=48,
            phash=i,
            gray_key="g" * 64,
            format="JPEG",
            mode="RGB",
            md5=md5,
            bytes=1000,
        )

    def resolve_all() -> None:
        for i in range(args.lines):
            item = Item(crawl_id, i + 1, f"http://127.0.0.1:9/{i}.jpg")
            if i % 10 == 9:
                record_error(engine, item, "http_status", "answered 404", 404)
            else:
                store_image(engine, item, image(i))

    timed("resolve (one tx per line)", args.lines, resolve_all)
    timed("redelivered (no change)", args.lines, resolve_all)
    services.close()


if __name__ == "__main__":
    main()
