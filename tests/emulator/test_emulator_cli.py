"""The `emulator` click group: `urls` through CliRunner, `serve` as a real process stopped by ^C."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from sleuth.emulator.cli import emulator
from sleuth.emulator.urls import expected_outcomes, seed_shaped_urls
from tests.patience import PATIENCE


def test_urls_to_stdout_is_the_default_seed_list() -> None:
    result = CliRunner().invoke(emulator, ["urls"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines == list(seed_shaped_urls("http://127.0.0.1:8000"))
    assert expected_outcomes(lines) == {"success": 500, "duplicate": 50, "error": 100}


def test_urls_to_a_file_with_count_base_url_and_seed(tmp_path: Path) -> None:
    out = tmp_path / "urls.txt"
    args = ["urls", "--count", "1300", "--base-url", "http://127.0.0.1:9/", "--seed", "4"]
    result = CliRunner().invoke(emulator, [*args, "-o", str(out)])
    assert result.exit_code == 0, result.output
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines == list(seed_shaped_urls("http://127.0.0.1:9", count=1300, seed=4))
    assert expected_outcomes(lines) == {"success": 1000, "duplicate": 100, "error": 200}


def test_urls_refuses_bad_options() -> None:
    runner = CliRunner()
    bad_url = runner.invoke(emulator, ["urls", "--base-url", "localhost"])
    assert bad_url.exit_code == 2
    assert "base_url must be an http(s) URL" in bad_url.output
    assert runner.invoke(emulator, ["urls", "--count", "0"]).exit_code == 2
    assert runner.invoke(emulator, ["urls", "--shape", "other"]).exit_code == 2


def _ignore_sigint() -> None:
    """What a non-interactive shell does to a background job: SIGINT ignored, inherited."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize(
    ("stop_signal", "preexec"),
    [
        pytest.param(signal.SIGINT, None, id="ctrl-c"),
        pytest.param(signal.SIGINT, _ignore_sigint, id="ctrl-c-as-background-job"),
        pytest.param(signal.SIGTERM, None, id="sigterm"),
    ],
)
def test_serve_prints_its_url_serves_and_stops_on_ctrl_c(
    stop_signal: signal.Signals, preexec: Callable[[], None] | None
) -> None:
    code = "from sleuth.emulator.cli import emulator; emulator()"
    with subprocess.Popen(
        [sys.executable, "-c", code, "serve", "--port", "0", "--seed", "1"],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=preexec,
    ) as process:
        try:
            assert process.stdout is not None
            banner = process.stdout.readline()
            match = re.search(r"http://127\.0\.0\.1:\d+", banner)
            assert match, banner
            response = httpx.get(match.group(0) + "/40/30", timeout=PATIENCE)
            assert (response.status_code, response.headers["content-type"]) == (200, "image/jpeg")
            process.send_signal(stop_signal)
            # A deadline for a hung process, not a speed requirement: it stops in well under 1 s.
            assert process.wait(timeout=PATIENCE) == 0
            assert "Stopped." in process.stdout.read()
        finally:
            if process.poll() is None:
                process.kill()


def test_serve_reports_a_port_in_use() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(emulator, ["serve", "--port", str(port)])
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.output


def test_serve_with_scaled_windows_says_so_and_answers_with_them() -> None:
    code = "from sleuth.emulator.cli import emulator; emulator()"
    scale = ["--window-scale", "0.05", "--quota-scale", "0.05"]
    with subprocess.Popen(
        [sys.executable, "-c", code, "serve", "--port", "0", *scale],
        stdout=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            banner = process.stdout.readline()
            assert "rate-limit windows x0.05, counts x0.05" in banner
            match = re.search(r"http://127\.0\.0\.1:\d+", banner)
            assert match, banner
            answer = httpx.get(
                match.group(0) + "/bsky/xrpc/app.bsky.actor.getProfile",
                params={"actor": "nobody.bsky.social"},
                timeout=PATIENCE,
            )
            assert answer.headers["RateLimit-Policy"] == "150;w=15"
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=PATIENCE) == 0
        finally:
            if process.poll() is None:
                process.kill()


def test_serve_refuses_a_scale_that_is_not_positive() -> None:
    result = CliRunner().invoke(emulator, ["serve", "--window-scale", "0"])
    assert result.exit_code == 2 and "--window-scale" in result.output
