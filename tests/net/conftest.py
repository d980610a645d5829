"""A real threaded HTTP(S) server on 127.0.0.1 that misbehaves in every way the fetcher handles."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import math
import shutil
import ssl
import subprocess
import sys
import threading
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
from PIL import Image
from sqlalchemy import Engine

from sleuth.config import NetSettings
from sleuth.net.fetcher import Fetcher
from sleuth.store.db import make_engine, migrate
from tests.jobs.conftest import delete_prefix
from tests.servers import REDIS_URL, require, scratch_database


def _image(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 6), (200, 30, 90)).save(out, fmt)
    return out.getvalue()


PNG = _image("PNG")
JPEG = _image("JPEG")
PPM = _image("PPM")
HTML = b"<!doctype html><html><head><title>Not an image</title></head><body>hi</body></html>"


@dataclass
class Stats:
    """What the server saw; the counters are shared by its handler threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    hits: Counter[str] = field(default_factory=Counter)
    connections: int = 0  # accepted in all
    open_connections: int = 0
    max_connections: int = 0
    active_slow: int = 0
    max_active_slow: int = 0
    slow_starts: list[float] = field(default_factory=list)
    # Per key: the client address and arrival time (epoch s) of every request, in order.
    arrivals: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    # Budgeted routes, per (key, client address): [window end (epoch s), requests in window].
    windows: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    # Per key: how many requests a budgeted route answered with 429.
    refused: Counter[str] = field(default_factory=Counter)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: LocalServer

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the tests read outcomes, not logs."""

    def setup(self) -> None:
        super().setup()
        stats = self.server.stats
        with stats.lock:
            stats.connections += 1
            stats.open_connections += 1
            stats.max_connections = max(stats.max_connections, stats.open_connections)

    def finish(self) -> None:
        stats = self.server.stats
        with stats.lock:
            stats.open_connections -= 1
        with contextlib.suppress(OSError):
            super().finish()

    def count(self, key: str) -> int:
        """How many times `key` was requested, this request included."""
        with self.server.stats.lock:
            self.server.stats.hits[key] += 1
            return self.server.stats.hits[key]

    def do_POST(self) -> None:
        self.do_GET()

    def do_HEAD(self) -> None:
        self.do_GET()

    def reply(
        self,
        status: int,
        body: bytes = b"",
        content_type: str = "text/plain",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD" and status != 304:
            self.wfile.write(body)

    def arrive(self, key: str) -> None:
        """Record who sent a request for `key`, and when."""
        with self.server.stats.lock:
            self.server.stats.arrivals.setdefault(key, []).append(
                (self.client_address[0], time.time())
            )

    def do_GET(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.body = self.rfile.read(length) if length else b""  # read, so keep-alive works
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        segments = parts.path.strip("/").split("/")
        route, args = segments[0], segments[1:]
        self.count(self.path)
        handler = getattr(self, "route_" + route.replace("-", "_").replace(".", "_"), None)
        if handler is None:
            self.reply(404, b"no such route")
            return
        handler(args, query)

    def route_image_png(self, args: list[str], query: dict[str, str]) -> None:
        self.reply(200, PNG, "image/png")

    def route_image_jpg(self, args: list[str], query: dict[str, str]) -> None:
        self.reply(200, JPEG, "image/jpeg")

    def route_png_as_text(self, args: list[str], query: dict[str, str]) -> None:
        self.reply(200, PNG, "text/plain")

    def route_html_as_jpeg(self, args: list[str], query: dict[str, str]) -> None:
        self.reply(200, HTML, "image/jpeg")

    def route_tiny_text(self, args: list[str], query: dict[str, str]) -> None:
        self.reply(200, b"GIF", "image/gif")

    def route_status(self, args: list[str], query: dict[str, str]) -> None:
        headers = {"Retry-After": query["retry_after"]} if "retry_after" in query else {}
        self.reply(int(args[0]), b"status body", headers=headers)

    def route_error_doc(self, args: list[str], query: dict[str, str]) -> None:
        """400 with an XRPC error document, gzipped for `args[0] == "gzip"`, padded to
        `pad` bytes when asked."""
        doc = json.dumps(
            {
                "error": "InvalidRequest",
                "message": "Profile not found",
                "pad": "x" * int(query.get("pad", "0")),
            }
        ).encode()
        headers = {}
        if args[0] == "gzip":
            doc, headers = gzip.compress(doc), {"Content-Encoding": "gzip"}
        self.reply(400, doc, "application/json", headers=headers)

    def route_flaky(self, args: list[str], query: dict[str, str]) -> None:
        """500 on the first request of each key, then the image."""
        if self.count("flaky:" + args[0]) == 1:
            self.reply(500, b"try again")
        else:
            self.reply(200, PNG, "image/png")

    def route_ratelimited(self, args: list[str], query: dict[str, str]) -> None:
        """429 with `Retry-After: after` on the first request of each key, then the image."""
        if self.count("ratelimited:" + args[0]) == 1:
            self.reply(429, b"slow down", headers={"Retry-After": query.get("after", "1")})
        else:
            self.reply(200, PNG, "image/png")

    def route_redirect(self, args: list[str], query: dict[str, str]) -> None:
        """A chain of `n` relative redirects ending at the PNG."""
        n = int(args[0])
        if n == 0:
            self.reply(200, PNG, "image/png")
        else:
            self.reply(302, headers={"Location": f"/redirect/{n - 1}"})

    def route_loop(self, args: list[str], query: dict[str, str]) -> None:
        self.reply(301, headers={"Location": "/loop/b" if args[0] == "a" else "/loop/a"})

    def route_redirect_to(self, args: list[str], query: dict[str, str]) -> None:
        self.reply(int(query.get("status", "302")), headers={"Location": query["url"]})

    def route_no_location(self, args: list[str], query: dict[str, str]) -> None:
        self.reply(302)

    def route_chunked_huge(self, args: list[str], query: dict[str, str]) -> None:
        """`size` bytes in 64 KiB chunks, without Content-Length."""
        size = int(query["size"])
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chunk = b"x" * 65536
        try:
            while size > 0:
                part = chunk[: min(size, len(chunk))]
                self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                size -= len(part)
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            self.close_connection = True

    def route_big_length(self, args: list[str], query: dict[str, str]) -> None:
        """Declares a gigabyte; sends a little and hangs up."""
        self.send_response(200)
        self.send_header("Content-Length", str(10**9))
        self.end_headers()
        self.wfile.write(b"x" * 1000)
        self.close_connection = True

    def route_drip(self, args: list[str], query: dict[str, str]) -> None:
        """One byte every 0.5 s: each read is quick, the whole body is not."""
        self.send_response(200)
        self.send_header("Content-Length", "100")
        self.end_headers()
        try:
            for _ in range(100):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.5)
        except OSError:
            self.close_connection = True

    def route_cut(self, args: list[str], query: dict[str, str]) -> None:
        """Promises 1000 bytes, sends 100, closes the connection."""
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        self.wfile.write(b"x" * 100)
        self.close_connection = True

    def route_json(self, args: list[str], query: dict[str, str]) -> None:
        self.reply(200, b'{"items": [1, 2, 3], "next": null}', "application/json")

    def route_bad_json(self, args: list[str], query: dict[str, str]) -> None:
        self.reply(200, b'{"items": [1, 2,', "application/json")

    def route_encoded(self, args: list[str], query: dict[str, str]) -> None:
        """JSON (or `zeros` zero bytes) compressed as `args[0]`; `cut` drops the last bytes."""
        data = b"\0" * int(query["zeros"]) if "zeros" in query else b'{"packed": true}'
        kind = args[0]
        if kind == "gzip":
            body = gzip.compress(data)
        elif kind == "deflate":
            body = zlib.compress(data)
        elif kind == "raw-deflate":
            packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
            body = packer.compress(data) + packer.flush()
        else:
            body = data
        if "cut" in query:
            body = body[: -int(query["cut"])]
        encoding = "deflate" if kind == "raw-deflate" else kind
        self.reply(200, body, "application/json", headers={"Content-Encoding": encoding})

    def route_echo(self, args: list[str], query: dict[str, str]) -> None:
        """The request headers as JSON (names lower-cased)."""
        body = json.dumps({k.lower(): v for k, v in self.headers.items()}).encode()
        self.reply(200, body, "application/json")

    def route_echo_image(self, args: list[str], query: dict[str, str]) -> None:
        """The PNG, with the request's Accept and Accept-Encoding echoed in headers."""
        seen = {
            "X-Seen-Accept": self.headers.get("Accept", ""),
            "X-Seen-Accept-Encoding": self.headers.get("Accept-Encoding", ""),
        }
        self.reply(200, PNG, "image/png", headers=seen)

    def route_set_cookie(self, args: list[str], query: dict[str, str]) -> None:
        self.reply(200, b"{}", "application/json", headers={"Set-Cookie": "session=abc; Path=/"})

    def route_slow(self, args: list[str], query: dict[str, str]) -> None:
        """Holds the request `delay` seconds, recording how many are in progress together."""
        stats = self.server.stats
        with stats.lock:
            stats.slow_starts.append(time.monotonic())
            stats.active_slow += 1
            stats.max_active_slow = max(stats.max_active_slow, stats.active_slow)
        time.sleep(float(query.get("delay", "0.2")))
        with stats.lock:
            stats.active_slow -= 1
        self.reply(200, PNG, "image/png")

    def route_image_ppm(self, args: list[str], query: dict[str, str]) -> None:
        self.reply(200, PPM, "image/x-portable-pixmap")

    def route_peer(self, args: list[str], query: dict[str, str]) -> None:
        """The client's address and the request's method and body, as JSON."""
        self.arrive("peer:" + query.get("k", ""))
        answer = {
            "peer": self.client_address[0],
            "method": self.command,
            "body": self.body.decode(),
            "content-type": self.headers.get("Content-Type", ""),
            "authorization": self.headers.get("Authorization", ""),
            "query": query,
        }
        self.reply(200, json.dumps(answer).encode(), "application/json")

    def route_budget(self, args: list[str], query: dict[str, str]) -> None:
        """A budget of `limit` requests per `window` seconds per (key, client address), told
        in `args[0]`'s header dialect (mastodon, x, bluesky); over it, 429."""
        dialect, key = args[0], args[1]
        limit, window = int(query.get("limit", "5")), float(query.get("window", "1"))
        self.arrive(key)
        now = time.time()
        with self.server.stats.lock:
            state = self.server.stats.windows.setdefault((key, self.client_address[0]), [0, 0])
            if now >= state[0]:
                state[:] = [now + window, 0]
            state[1] += 1
            used, reset = int(state[1]), state[0]
            if used > limit:
                self.server.stats.refused[key] += 1
        remaining = str(max(0, limit - used))
        if dialect == "mastodon":
            stamp = datetime.fromtimestamp(reset, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            headers = {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": remaining,
                       "X-RateLimit-Reset": stamp}  # fmt: skip
        elif dialect == "x":
            headers = {"x-rate-limit-limit": str(limit), "x-rate-limit-remaining": remaining,
                       "x-rate-limit-reset": str(math.floor(reset))}  # fmt: skip
        else:  # atproto's xrpc-server: epoch seconds, rounded down, and a policy
            headers = {"RateLimit-Limit": str(limit), "RateLimit-Remaining": remaining,
                       "RateLimit-Reset": str(math.floor(reset)),
                       "RateLimit-Policy": f"{limit};w={window:g}"}  # fmt: skip
        if used > limit:
            headers["Retry-After"] = str(math.ceil(reset - now))
            self.reply(429, b"Too Many Requests", headers=headers)
        else:
            self.reply(200, b'{"ok": true}', "application/json", headers=headers)

    def route_retry_at(self, args: list[str], query: dict[str, str]) -> None:
        """429 with `Retry-After` as an HTTP date `args[1]` s ahead on the first request of
        key `args[0]`, then 200; the date and arrivals are recorded."""
        key = args[0]
        self.arrive(key)
        if self.count("retry-at:" + key) == 1:
            at = math.ceil(time.time()) + int(args[1])
            with self.server.stats.lock:
                self.server.stats.refused[key] = at
            self.reply(429, b"later", headers={"Retry-After": formatdate(at, usegmt=True)})
        else:
            self.reply(200, b"{}", "application/json")

    def route_arrivals(self, args: list[str], query: dict[str, str]) -> None:
        """`args[1]` on every request of key `args[0]`, recording arrivals."""
        self.arrive(args[0])
        self.reply(int(args[1]), b"status body")

    def route_conditional(self, args: list[str], query: dict[str, str]) -> None:
        """An ETag and Last-Modified; 304 when the request names the same."""
        etag, modified = '"v1"', "Tue, 01 Dec 2026 10:00:00 GMT"
        headers = {"ETag": etag, "Last-Modified": modified}
        if self.headers.get("If-None-Match") == etag or (
            "by" in query and self.headers.get("If-Modified-Since") == modified
        ):
            self.reply(304, headers=headers)
        else:
            self.reply(200, b'{"version": 1}', "application/json", headers=headers)

    def route_xml(self, args: list[str], query: dict[str, str]) -> None:
        """An XML document `args[0]`: good, broken, or declaring entities."""
        documents = {
            "good": b'<?xml version="1.0"?><forum id="7"><thread id="1">Hello &amp; welcome'
            b'</thread><thread id="2"/></forum>',
            "broken": b"<forum><thread></forum>",
            "bomb": b'<?xml version="1.0"?><!DOCTYPE b [<!ENTITY a "aaaaaaaaaa">'
            b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><b>&b;</b>',
            "external": b'<?xml version="1.0"?><!DOCTYPE f [<!ENTITY x SYSTEM '
            b'"file:///etc/passwd">]><f>&x;</f>',
        }
        self.reply(200, documents[args[0]], "application/xml")

    def route_pages(self, args: list[str], query: dict[str, str]) -> None:
        """Seven items paged three at a time, the way `args[0]` pages: `link` (Mastodon's
        Link header with max_id), `cursor` (Bluesky), `token` (X), `number` (Discourse)."""
        items = list(range(7, 0, -1))
        style = args[0]
        if style == "link":
            below = int(query.get("max_id", "100"))
            chunk = [i for i in items if i < below][:3]
            headers = {}
            if chunk and chunk[-1] > 1:
                base = f"{self.server.url('/pages/link')}"
                headers["Link"] = (
                    f'<{base}?max_id={chunk[-1]}>; rel="next", <{base}?min_id={chunk[0]}>; '
                    'rel="prev"'
                )
            self.reply(200, json.dumps(chunk).encode(), "application/json", headers=headers)
            return
        if style == "number":
            page = int(query.get("page", "0"))
            chunk = items[page * 3 : page * 3 + 3]
            more = f"/latest?page={page + 1}" if page * 3 + 3 < len(items) else None
            body: dict[str, object] = {"topic_list": {"topics": chunk}}
            if more:
                body["topic_list"]["more_topics_url"] = more  # type: ignore[index]
            self.reply(200, json.dumps(body).encode(), "application/json")
            return
        name = "cursor" if style == "cursor" else "pagination_token"
        offset = int(query.get(name, "0"))
        chunk = items[offset : offset + 3]
        following = str(offset + 3) if offset + 3 < len(items) else None
        if style == "cursor":
            data: dict[str, object] = {"feed": chunk}
            if following:
                data["cursor"] = following
        else:
            data = {"data": chunk, "meta": {"result_count": len(chunk)}}
            if following:
                data["meta"]["next_token"] = following  # type: ignore[index]
        self.reply(200, json.dumps(data).encode(), "application/json")


class LocalServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # concurrency tests open many connections at once
    png = PNG
    jpeg = JPEG
    ppm = PPM

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.stats = Stats()
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)
        self.scheme = "https" if tls is not None else "http"
        self.port = self.server_address[1]
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def handle_error(self, request: object, client_address: tuple[str, int]) -> None:
        """A client hanging up early is what several tests do; anything else is reported."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class SharedStore:
    """One store that every worker shares (Redis, or a migrated SQLite, PostgreSQL or MariaDB
    database), opened anew for each simulated worker process: `open()` gives a Redis client
    or an engine of its own, closed with the fixture."""

    def __init__(self, kind: str, url: str, prefix: str) -> None:
        self.kind, self.url, self.prefix = kind, url, prefix
        self._closers: list[Callable[[], None]] = []

    def redis(self) -> redis.Redis:
        # As the queue opens it: the stores get the queue's own client, which decodes replies.
        client = redis.Redis.from_url(self.url, decode_responses=True)
        self._closers.append(client.close)
        return client

    def engine(self) -> Engine:
        engine = make_engine(self.url)
        self._closers.append(engine.dispose)
        return engine

    def close(self) -> None:
        for close in self._closers:
            close()


SHARED_KINDS = ["redis", "sqlite", "postgresql", "mysql"]


@contextlib.contextmanager
def open_shared_store(kind: str, tmp_path: Path) -> Iterator[SharedStore]:
    """A fresh store of `kind`: a private Redis key prefix, or a new migrated database."""
    with ExitStack() as stack:
        prefix = f"sleuth-test-{uuid.uuid4().hex[:12]}"
        if kind == "redis":
            require("redis", REDIS_URL)
            stack.callback(delete_prefix, prefix)
            url = REDIS_URL
        elif kind == "sqlite":
            url = f"sqlite:///{tmp_path / 'shared.db'}"
        else:
            url = stack.enter_context(scratch_database(kind))
        store = SharedStore(kind, url, prefix)
        stack.callback(store.close)
        if kind != "redis":
            migrate(store.engine())
        yield store


@pytest.fixture(params=SHARED_KINDS)
def shared_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SharedStore]:
    """Each kind of store that host clocks and rate-limit budgets are shared in."""
    with open_shared_store(request.param, tmp_path) as store:
        yield store


LOOPBACK = NetSettings(retries=0, connect_timeout=10.0, read_timeout=10.0, total_timeout=30.0)


def loopback_fetcher(settings: NetSettings = LOOPBACK, **changes: object) -> Fetcher:
    """A loopback-allowed fetcher with quick retries, so tests wait only where they mean to."""
    return Fetcher(replace(settings, **changes), allow_private=True, backoff=0.01)


def key() -> str:
    """A fresh key, so tests sharing a server never see each other's counts."""
    return uuid.uuid4().hex


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    """One plain HTTP server shared by a module's tests (state is keyed per test)."""
    srv = LocalServer()
    yield srv
    srv.stop()


@pytest.fixture
def fresh_server() -> Iterator[LocalServer]:
    """A server of the test's own, for tests that read its connection statistics."""
    srv = LocalServer()
    yield srv
    srv.stop()


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A self-signed certificate for the name `localhost` only (not for 127.0.0.1)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl command not found: cannot make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    files = TlsFiles(folder / "cert.pem", folder / "key.pem")
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "1", "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost",
            "-keyout", str(files.key), "-out", str(files.cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return files


@pytest.fixture(scope="module")
def tls_server(tls_files: TlsFiles) -> Iterator[LocalServer]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls_files.cert, tls_files.key)
    srv = LocalServer(tls=context)
    yield srv
    srv.stop()
