"""`sleuth serve` as a real process tree: gunicorn's web workers and the job worker beside it.

Stopped with SIGTERM or SIGINT, every process of the tree ends and the job it held goes back to
the queue; killed with -9, its children notice and do the same; SIGHUP restarts the workers.
The job held is a fetch from a local server that never answers."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sleuth.jobs import open_queue
from tests.patience import wait_for
from tests.proctree import alive, command_line, descendants

ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 90.0  # generous: a busy 2-core machine starts interpreters slowly
FETCH = "images.fetch"

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


class SilentServer:
    """Accepts HTTP connections, reads the request, and never answers: a fetch hangs on it."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.requests: list[bytes] = []
        self.conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            self.requests.append(conn.recv(65536))

    def close(self) -> None:
        self.sock.close()
        for conn in self.conns:
            conn.close()


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


def sleuth_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLEUTH_")}
    env.update(
        SLEUTH_DATA_DIR=str(tmp_path / "data"),
        SLEUTH_NET_ALLOW_PRIVATE="1",
        SLEUTH_NET_READ_TIMEOUT="3600",
        SLEUTH_NET_TOTAL_TIMEOUT="3600",
        SLEUTH_WORKER_PROCESSES="1",
        SLEUTH_WEB_WORKERS="2",
        SLEUTH_WEB_THREADS="2",
    )
    env.update(extra)
    return env


class Serve:
    """`sleuth serve --port 0 ARGS` with its output in a file; `url` once it listens."""

    def __init__(self, tmp_path: Path, *args: str, **env: str) -> None:
        self.log = tmp_path / "serve.log"
        self.env = sleuth_env(tmp_path, **env)
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "sleuth.cli", "serve", "--port", "0", *args],
                cwd=tmp_path,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.seen: set[int] = set()
        found = wait_for(self._announced, timeout=DEADLINE)
        self.url = found.group(1)

    def _announced(self) -> re.Match[str] | None:
        assert self.process.poll() is None, self.output()
        return re.search(r"sleuth serving on (http://\S+)/", self.output())

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        """End the serve and whatever it started, so that a failed test leaves nothing."""
        pids = self.seen | descendants(self.process.pid)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for pid in pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def hold_a_job(tmp_path: Path, serve: Serve, silent: SilentServer, fetches: int = 1) -> None:
    """Queue one URL of the silent server and wait until the serve's worker is fetching it."""
    urls = tmp_path / "urls.txt"
    urls.write_text(f"http://127.0.0.1:{silent.port}/held.png\n")
    follower = subprocess.Popen(
        [sys.executable, "-m", "sleuth.cli", "images", "crawl", str(urls), "--workers", "0"],
        cwd=tmp_path,
        env=serve.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: len(silent.requests) >= fetches, timeout=DEADLINE)
    finally:
        follower.send_signal(signal.SIGINT)  # stops following only; the job stays queued
        follower.wait(DEADLINE)


def queue_state(tmp_path: Path) -> tuple[int, int, dict[str, int]]:
    """(ready, in flight, in flight per consumer) of the fetch queue."""
    backend = open_queue(f"sqlite:///{tmp_path / 'data' / 'queue.db'}")
    try:
        [stats] = [s for s in backend.stats() if s.queue == FETCH]
        return stats.ready, stats.in_flight, dict(stats.in_flight_by_consumer)
    finally:
        backend.close()


def tree_of(serve: Serve) -> set[int]:
    """The serve's children: 2 web workers and the job worker, at least."""
    tree = descendants(serve.process.pid)
    assert len(tree) >= 3, tree
    serve.seen |= tree
    return tree


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_stops_every_process_and_hands_the_job_back(
    tmp_path: Path, silent: SilentServer, signum: int
) -> None:
    serve = Serve(tmp_path)
    try:
        assert httpx.get(f"{serve.url}/healthz", timeout=DEADLINE).status_code == 200
        hold_a_job(tmp_path, serve, silent)
        tree = tree_of(serve)
        assert queue_state(tmp_path)[1] == 1
        serve.process.send_signal(signum)
        assert serve.process.wait(DEADLINE) == 0, serve.output()
        wait_for(lambda: not any(alive(pid) for pid in tree), timeout=DEADLINE)
    finally:
        serve.kill()
    assert queue_state(tmp_path) == (1, 0, {})
    assert "Traceback" not in serve.output()


@pytest.mark.slow
def test_kill_9_of_serve_takes_every_child_down_and_the_job_goes_back(
    tmp_path: Path, silent: SilentServer
) -> None:
    serve = Serve(tmp_path)
    try:
        hold_a_job(tmp_path, serve, silent)
        tree = tree_of(serve)
        serve.process.kill()
        serve.process.wait(DEADLINE)
        wait_for(lambda: not any(alive(pid) for pid in tree), timeout=DEADLINE)
    finally:
        serve.kill()
    assert queue_state(tmp_path) == (1, 0, {})


@pytest.mark.slow
def test_sighup_restarts_the_workers_and_keeps_serving(
    tmp_path: Path, silent: SilentServer
) -> None:
    serve = Serve(tmp_path)
    try:
        hold_a_job(tmp_path, serve, silent)
        # multiprocessing's resource tracker serves every spawn of the serve and stays.
        before = {p for p in tree_of(serve) if "resource_tracker" not in command_line(p)}
        serve.process.send_signal(signal.SIGHUP)
        # The old worker hands the job back and the new one takes it: a second fetch.
        wait_for(lambda: len(silent.requests) >= 2, timeout=DEADLINE)
        wait_for(lambda: not any(alive(pid) for pid in before), timeout=DEADLINE)
        assert httpx.get(f"{serve.url}/healthz", timeout=DEADLINE).status_code == 200
        assert serve.process.poll() is None
        [(_, in_flight, consumers)] = [queue_state(tmp_path)]
        assert in_flight == 1 and len(consumers) == 1
        assert str(serve.process.pid) not in next(iter(consumers))
    finally:
        serve.process.terminate()
        code = serve.process.wait(DEADLINE)
        serve.kill()
    assert code == 0, serve.output()


def test_bad_web_settings_are_refused_with_the_reason(tmp_path: Path) -> None:
    for name, value, reason in [
        ("SLEUTH_WEB_TRUSTED_PROXIES", "10.0.0.1, not-an-address", "not-an-address"),
        ("SLEUTH_WEB_WORKERS", "0", "web.workers must be >= 1"),
        ("SLEUTH_WEB_SERVER", "nginx", "web.server must be one of auto, gunicorn, waitress"),
    ]:
        done = subprocess.run(
            [sys.executable, "-m", "sleuth.cli", "serve", "--no-workers"],
            cwd=tmp_path,
            env=sleuth_env(tmp_path, **{name: value}),
            capture_output=True,
            text=True,
            timeout=DEADLINE,
        )
        assert done.returncode == 2, done.stderr
        assert reason in done.stderr
        assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_forwarded_for_is_believed_only_from_a_trusted_proxy(tmp_path: Path) -> None:
    access = tmp_path / "access.log"
    serve = Serve(
        tmp_path,
        "--no-workers",
        "--access-log",
        str(access),
        SLEUTH_WEB_TRUSTED_PROXIES="127.0.0.2",
    )
    try:
        headers = {"X-Forwarded-For": "198.51.100.9, 203.0.113.7"}
        for source, path in [("127.0.0.2", "/healthz?via=proxy"), ("127.0.0.1", "/healthz?direct")]:
            transport = httpx.HTTPTransport(local_address=source)
            with httpx.Client(transport=transport, timeout=DEADLINE) as client:
                assert client.get(f"{serve.url}{path}", headers=headers).status_code == 200
        wait_for(lambda: access.exists() and access.read_text().count("\n") >= 2, DEADLINE)
        text = access.read_text().splitlines()
        by_path = {("proxy" if "via=proxy" in line else "direct"): line for line in text}
        # Through the proxy: its last hop is the client (198.51.100.9 is the client's claim,
        # added before the trusted proxy, and 203.0.113.7 is not a trusted proxy).
        assert by_path["proxy"].startswith("203.0.113.7 ")
        assert by_path["direct"].startswith("127.0.0.1 ")
    finally:
        serve.process.terminate()
        serve.process.wait(DEADLINE)
        serve.kill()


def test_the_web_starts_with_the_database_down_and_says_so(tmp_path: Path) -> None:
    down = "postgresql+psycopg://nobody@127.0.0.1:1/none"  # nothing listens on port 1
    serve = Serve(tmp_path, "--no-workers", SLEUTH_DATABASE_URL=down)
    try:
        answer = httpx.get(f"{serve.url}/healthz", timeout=DEADLINE)
        assert answer.status_code == 503
        assert answer.json()["error"]["code"] == "database_unavailable"
    finally:
        serve.process.terminate()
        code = serve.process.wait(DEADLINE)
        serve.kill()
    assert code == 0, serve.output()


def job_workers(serve: Serve) -> set[int]:
    """The serve's job worker processes (spawned interpreters), not its web workers."""
    found = {p for p in descendants(serve.process.pid) if "spawn_main" in command_line(p)}
    serve.seen |= found
    return found


@pytest.mark.slow
def test_a_job_worker_that_dies_is_started_again(tmp_path: Path) -> None:
    serve = Serve(tmp_path)
    try:
        [first] = wait_for(lambda: job_workers(serve), timeout=DEADLINE)
        os.kill(first, signal.SIGKILL)
        [second] = wait_for(lambda: job_workers(serve) - {first}, timeout=DEADLINE)
        assert alive(second) and not alive(first)
        assert httpx.get(f"{serve.url}/healthz", timeout=DEADLINE).status_code == 200
        serve.process.terminate()
        assert serve.process.wait(DEADLINE) == 0, serve.output()
        wait_for(lambda: not alive(second), timeout=DEADLINE)
    finally:
        serve.kill()
    assert "ended on its own; starting another" in serve.output()
