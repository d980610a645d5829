"""Web throughput: requests/s and latency percentiles under concurrent clients, sleuth's pages
beside a bare Flask app on the same WSGI server, in one run.

    .venv/bin/python -m bench.web [--clients 64] [--seconds 10] [--images 20] [--write-results]

The data is real: a few generated PNGs served from loopback and crawled with `sleuth images
crawl`. Then, one after the other on the same gunicorn settings (`--web-workers`, `--threads`):
`sleuth serve --no-workers`, the same app on Werkzeug's development server (how `sleuth serve`
ran before), and a bare Flask app answering a small JSON document. The load comes
from a second process (`--load`, this file): `--clients` keep-alive HTTP/1.1 connections on a
plain asyncio loop (no HTTP library, so the client spends little CPU), each sending its next
request as soon as the last answer is read, for `--seconds` after a one-second warm-up. Each
request's latency is kept; p50 and p99 are read from them. `--write-results` replaces this
benchmark's section of `bench/RESULTS.md`.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this folder would come first on the import path and its `queue.py` would
# shadow the standard library's; import from the repository root instead.
_HERE = Path(__file__).resolve().parent
_ROOT = _HERE.parent
sys.path[:] = [str(_ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import shlex  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: E402
from urllib.parse import urlsplit  # noqa: E402

import numpy as np  # noqa: E402
from flask import Flask, jsonify  # noqa: E402
from PIL import Image  # noqa: E402

RESULTS = _HERE / "RESULTS.md"
SLEUTH = [sys.executable, "-m", "sleuth.cli"]
START, END = "<!-- web:start -->", "<!-- web:end -->"


# How `sleuth serve` ran before gunicorn: Werkzeug's threaded development server, one process.
WERKZEUG = """
import sys
from werkzeug.serving import run_simple
from sleuth.config import load_settings
from sleuth.services import Services
from sleuth.web.app import create_app
app = create_app(Services(load_settings()))
run_simple("127.0.0.1", int(sys.argv[1]), app, threaded=True)
"""


def bare_app() -> Flask:
    """The baseline: one route, a small JSON answer, nothing else."""
    app = Flask("bare")

    @app.get("/json")
    def small() -> object:
        return jsonify({"status": "ok", "n": 1})

    return app


# ---- the load, in its own process --------------------------------------------------------


async def _client(
    host: str,
    port: int,
    paths: list[str],
    until: float,
    warm: float,
    latencies: list[float],
    errors: list[str],
) -> None:
    """One client: its next request as soon as the last answer is read, on one keep-alive
    connection (a new one when the server closes it, as an HTTP/1.0 server does)."""
    connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    i = 0
    while (now := time.perf_counter()) < until:
        path = paths[i % len(paths)]
        i += 1
        if connection is None:
            connection = await asyncio.open_connection(host, port)
        reader, writer = connection
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        status = head[9:12]
        length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
        if length is None:
            raise RuntimeError(f"no Content-Length in the answer to {path}")
        await reader.readexactly(int(length[1]))
        if head.startswith(b"HTTP/1.0") or re.search(rb"(?i)\r\nconnection: *close", head):
            writer.close()
            connection = None
        if now >= warm:
            if status == b"200":
                latencies.append(time.perf_counter() - now)
            else:
                errors.append(status.decode())
    if connection is not None:
        connection[1].close()


async def _load(url: str, paths: list[str], clients: int, seconds: float) -> dict:
    parts = urlsplit(url)
    warm = time.perf_counter() + 1.0
    until = warm + seconds
    latencies: list[float] = []
    errors: list[str] = []
    await asyncio.gather(
        *(
            _client(
                parts.hostname or "127.0.0.1",
                parts.port or 80,
                paths,
                until,
                warm,
                latencies,
                errors,
            )
            for _ in range(clients)
        )
    )
    latencies.sort()
    cut = statistics.quantiles(latencies, n=100, method="inclusive") if len(latencies) > 1 else []
    return {
        "requests": len(latencies),
        "errors": len(errors),
        "rps": len(latencies) / seconds,
        "p50_ms": cut[49] * 1000 if cut else None,
        "p99_ms": cut[98] * 1000 if cut else None,
    }


def load(url: str, paths: list[str], clients: int, seconds: float) -> dict:
    """Run the load from a second process; returns its figures."""
    cmd = [
        sys.executable,
        "-m",
        "bench.web",
        "--load",
        url,
        "--clients",
        str(clients),
        "--seconds",
        str(seconds),
        *paths,
    ]
    done = subprocess.run(cmd, cwd=_ROOT, capture_output=True, text=True, timeout=seconds + 120)
    if done.returncode != 0:
        raise RuntimeError(f"the load process failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout)


# ---- the data ------------------------------------------------------------------------------


class _Images(BaseHTTPRequestHandler):
    bodies: dict[str, bytes] = {}

    def do_GET(self) -> None:
        body = self.bodies.get(self.path)
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, *args: object) -> None:
        pass


def crawl_images(count: int, env: dict[str, str], work: Path) -> None:
    """Serve `count` generated PNGs on loopback and crawl them into the install of `env`."""
    rng = np.random.default_rng(1)
    bodies = {}
    for n in range(count):
        out = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(out, "PNG")
        bodies[f"/img/{n}.png"] = out.getvalue()
    _Images.bodies = bodies
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Images)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    urls = work / "urls.txt"
    urls.write_text("".join(f"http://127.0.0.1:{server.server_port}{p}\n" for p in bodies))
    try:
        subprocess.run(
            [*SLEUTH, "images", "crawl", str(urls)],
            env=env,
            cwd=work,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=600,
        )
    finally:
        server.shutdown()


# ---- the servers ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:
            urllib.request.urlopen(url, timeout=5).read()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within 120 s")


@dataclass
class Server:
    name: str
    cmd: list[str]
    probe: str
    env: dict[str, str]
    cwd: Path

    def __enter__(self) -> subprocess.Popen:
        self.process = subprocess.Popen(
            self.cmd,
            env=self.env,
            cwd=self.cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_ready(self.probe, self.process)
        return self.process

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(60)


def machine() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    found = re.search(r"(?m)^model name\s*:\s*(.+)$", text)
    cpu = found[1] if found else platform.machine()
    return (
        f"{cpu}, {os.cpu_count()} CPUs, Linux {platform.release()}, "
        f"Python {platform.python_version()}, load before {os.getloadavg()[0]:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--write-results", action="store_true")
    parser.add_argument("--load", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("paths", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        result = asyncio.run(_load(args.load, args.paths, args.clients, args.seconds))
        print(json.dumps(result))
        return

    rows = []
    with tempfile.TemporaryDirectory(prefix="sleuth-bench-web-") as tmp:
        work = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLEUTH_")}
        env.update(
            SLEUTH_DATA_DIR=str(work / "data"),
            SLEUTH_NET_ALLOW_PRIVATE="1",
            SLEUTH_WORKER_PROCESSES="1",
        )
        crawl_images(args.images, env, work)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        serve = [
            *SLEUTH,
            "serve",
            "--no-workers",
            "--port",
            str(port),
            "--web-workers",
            str(args.web_workers),
            "--threads",
            str(args.threads),
        ]
        with Server("sleuth", serve, f"{base}/healthz", env, work):
            with urllib.request.urlopen(f"{base}/api/images?limit=100") as answer:
                md5s = [image["md5"] for image in json.load(answer)["images"]]
            if len(md5s) < args.images:
                raise RuntimeError(f"only {len(md5s)} of {args.images} images were stored")
            for name, paths in [
                ("`/api/images/<md5>`", [f"/api/images/{m}" for m in md5s]),
                ("`/image/<md5>`", [f"/image/{m}" for m in md5s]),
                ("`/monitoring?format=json`", ["/monitoring?format=json"]),
            ]:
                rows.append((name, load(base, paths, args.clients, args.seconds)))
        old = [sys.executable, "-c", WERKZEUG, str(port)]
        with Server("werkzeug", old, f"{base}/healthz", env, work):
            paths = [f"/api/images/{m}" for m in md5s]
            name = "`/api/images/<md5>`, Werkzeug's development server (before)"
            rows.append((name, load(base, paths, args.clients, args.seconds)))
        bare = [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            str(args.web_workers),
            "--threads",
            str(args.threads),
            "--worker-class",
            "gthread",
            "--bind",
            f"127.0.0.1:{port}",
            "--no-control-socket",
            "bench.web:bare_app()",
        ]
        with Server("bare", bare, f"{base}/json", env, _ROOT):
            rows.append(("bare Flask `/json`", load(base, ["/json"], args.clients, args.seconds)))

    command = "$ .venv/bin/python -m bench.web " + shlex.join(sys.argv[1:])
    lines = [
        START,
        "## web",
        "",
        f"Machine: {machine()}. Run {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC.",
        "",
        f"Command: `{command.removeprefix('$ ')}`: gunicorn, {args.web_workers} worker "
        f"processes × {args.threads} threads (gthread) for both servers, {args.clients} "
        f"keep-alive clients in a second process, {args.seconds:g} s per row after 1 s of "
        f"warm-up, {args.images} crawled images.",
        "",
        "| endpoint | requests/s | p50 ms | p99 ms | errors |",
        "|---|---|---|---|---|",
    ]
    for name, r in rows:
        lines.append(
            f"| {name} | {r['rps']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['errors']} |"
        )
    lines.append(END)
    block = "\n".join(lines)
    print(block)
    if args.write_results:
        text = RESULTS.read_text(encoding="utf-8")
        if START in text:
            head, rest = text.split(START, 1)
            text = head + block + rest.split(END, 1)[1]
        else:
            text = text.rstrip("\n") + "\n\n" + block + "\n"
        RESULTS.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
