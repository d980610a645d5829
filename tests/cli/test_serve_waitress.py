"""`sleuth serve` on waitress (`web.server = "waitress"`, the server where gunicorn cannot
run): one web process of threads and the job worker beside it, stopped, reloaded and logged
as on gunicorn."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cli.test_serve import (
    DEADLINE,
    Serve,
    SilentServer,
    hold_a_job,
    job_workers,
    queue_state,
)
from tests.patience import wait_for
from tests.proctree import alive

WAITRESS = {"SLEUTH_WEB_SERVER": "waitress"}


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


@pytest.mark.slow
def test_sigterm_stops_the_web_and_the_job_worker_and_hands_the_job_back(
    tmp_path: Path, silent: SilentServer
) -> None:
    serve = Serve(tmp_path, **WAITRESS)
    try:
        assert httpx.get(f"{serve.url}/healthz", timeout=DEADLINE).status_code == 200
        hold_a_job(tmp_path, serve, silent)
        [worker] = job_workers(serve)
        assert queue_state(tmp_path)[1] == 1
        serve.process.send_signal(signal.SIGTERM)
        assert serve.process.wait(DEADLINE) == 0, serve.output()
        wait_for(lambda: not alive(worker), timeout=DEADLINE)
    finally:
        serve.kill()
    assert queue_state(tmp_path) == (1, 0, {})
    assert "Traceback" not in serve.output()


@pytest.mark.slow
def test_sighup_restarts_the_job_worker_and_keeps_serving(
    tmp_path: Path, silent: SilentServer
) -> None:
    serve = Serve(tmp_path, **WAITRESS)
    try:
        hold_a_job(tmp_path, serve, silent)
        [before] = job_workers(serve)
        serve.process.send_signal(signal.SIGHUP)
        wait_for(lambda: len(silent.requests) >= 2, timeout=DEADLINE)  # handed back, taken again
        wait_for(lambda: not alive(before), timeout=DEADLINE)
        assert httpx.get(f"{serve.url}/healthz", timeout=DEADLINE).status_code == 200
        assert job_workers(serve) - {before}
    finally:
        serve.process.terminate()
        code = serve.process.wait(DEADLINE)
        serve.kill()
    assert code == 0, serve.output()


def test_the_access_log_names_the_client_a_trusted_proxy_forwarded(tmp_path: Path) -> None:
    access = tmp_path / "access.log"
    serve = Serve(
        tmp_path,
        "--no-workers",
        "--access-log",
        str(access),
        SLEUTH_WEB_TRUSTED_PROXIES="127.0.0.2",
        **WAITRESS,
    )
    try:
        headers = {"X-Forwarded-For": "203.0.113.7"}
        for source, path in [("127.0.0.2", "/healthz?via=proxy"), ("127.0.0.1", "/healthz?direct")]:
            transport = httpx.HTTPTransport(local_address=source)
            with httpx.Client(transport=transport, timeout=DEADLINE) as client:
                assert client.get(f"{serve.url}{path}", headers=headers).status_code == 200
        wait_for(lambda: access.exists() and access.read_text().count("\n") >= 2, DEADLINE)
        lines = access.read_text().splitlines()
        by_path = {("proxy" if "via=proxy" in line else "direct"): line for line in lines}
        assert by_path["proxy"].startswith("203.0.113.7 ")
        assert by_path["direct"].startswith("127.0.0.1 ")
        assert '"GET /healthz?direct HTTP/1.1" 200' in by_path["direct"]
    finally:
        serve.process.terminate()
        serve.process.wait(DEADLINE)
        serve.kill()
