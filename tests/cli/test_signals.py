"""Ctrl-C stops a command however it was started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.patience import wait_for

DEADLINE = 60.0


def _ignore_sigint() -> None:
    """What a non-interactive shell does to a background job: SIGINT ignored, inherited."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def test_sigint_stops_a_crawl_started_as_a_background_job(tmp_path: Path) -> None:
    urls = tmp_path / "urls.txt"
    urls.write_text("http://127.0.0.1:9/never.png\n")  # nothing runs it: workers are elsewhere
    env = {**os.environ, "SLEUTH_DATA_DIR": str(tmp_path / "data")}
    follower = subprocess.Popen(
        [sys.executable, "-m", "sleuth.cli", "images", "crawl", str(urls), "--workers", "0"],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=_ignore_sigint,
    )
    try:
        wait_for(lambda: (tmp_path / "data" / "queue.db").exists(), timeout=DEADLINE)
        follower.send_signal(signal.SIGINT)
        out, _ = follower.communicate(timeout=DEADLINE)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    # Stopped, wherever the signal found it: "Aborted!" while starting, "Not finished: run the
    # same command again to resume." while following.
    assert follower.returncode == 1, out
    assert "Traceback" not in out
