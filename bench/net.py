"""What rate-limit budgets cost the client: loopback GETs through `Fetcher` with each budget
store, against a host that announces no budget (the image crawl's case: one look-up, no write)
and one that announces a budget too large to wait for (every answer is folded in).

    .venv/bin/python -m bench.net --requests 2000 --concurrency 32

The server runs in its own process, so the CPU figures are the client's alone. Redis must be
running on 127.0.0.1:6379 for the redis rows (db 15, a private key prefix, deleted after).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import tempfile
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import redis

from sleuth.config import NetSettings
from sleuth.net.budgets import BudgetStore, MemoryBudgets, RedisBudgets, SqlBudgets
from sleuth.net.fetcher import Fetcher
from sleuth.store.db import make_engine, migrate

REDIS_URL = "redis://127.0.0.1:6379/15"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""

    def do_GET(self) -> None:
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if self.path.startswith("/budget"):
            self.send_header("X-RateLimit-Limit", "1000000000")
            self.send_header("X-RateLimit-Remaining", "999999999")
            self.send_header("X-RateLimit-Reset", "2100-01-01T00:00:00.000000Z")
        self.end_headers()
        self.wfile.write(body)


def _serve(port: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    port.put(server.server_address[1])
    server.serve_forever()


async def _run(
    url: str, store: BudgetStore, requests: int, concurrency: int
) -> tuple[float, float]:
    settings = NetSettings(allow_private=True, per_host_concurrency=concurrency)
    async with Fetcher(settings, budgets=store) as fetcher:
        await fetcher.get(url)  # warm: connection, budget row
        queue = iter(range(requests))

        async def worker() -> None:
            for _ in queue:
                await fetcher.get(url)

        wall, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    ports: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    server = multiprocessing.Process(target=_serve, args=(ports,), daemon=True)
    server.start()
    port = ports.get(timeout=30)
    folder = Path(tempfile.mkdtemp(prefix="sleuth-bench-net-"))
    engine = make_engine(f"sqlite:///{folder / 'budgets.db'}")
    migrate(engine)
    prefix = f"sleuth-bench-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(REDIS_URL)
    stores: dict[str, Callable[[], BudgetStore]] = {
        "memory": MemoryBudgets,
        "sqlite": lambda: SqlBudgets(engine),
        "redis": lambda: RedisBudgets(client, prefix),
    }
    print(f"{args.requests} GETs, {args.concurrency} at once, loopback server in another process")
    print("| store | host | req/s | client CPU ms/req |")
    print("|---|---|---|---|")
    try:
        for name, make in stores.items():
            for path, label in (("/plain", "announces no budget"), ("/budget", "announces one")):
                url = f"http://127.0.0.1:{port}{path}"
                wall, cpu = asyncio.run(_run(url, make(), args.requests, args.concurrency))
                rate, per = args.requests / wall, cpu / args.requests * 1000
                print(f"| {name} | {label} | {rate:.0f} | {per:.2f} |")
    finally:
        for key in client.scan_iter(match=f"{prefix}:*"):
            client.delete(key)
        client.close()
        engine.dispose()
        server.terminate()
        server.join()


if __name__ == "__main__":
    main()
