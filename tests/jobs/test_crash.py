"""Real worker processes killed with SIGKILL or stopped with SIGTERM lose no job."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sleuth.jobs.base import QueueBackend
from tests.jobs.helpers import read_lines
from tests.patience import wait_for

ROOT = Path(__file__).resolve().parents[2]


def start_worker(url: str, lease: float, grace: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.jobs.worker_child", url, str(lease), str(grace)],
        cwd=ROOT,
    )


def lines_of(log: Path, what: str) -> list[list[str]]:
    return [line for line in read_lines(log) if line[0] == what]


def test_kill_9_mid_job_then_another_worker_finishes_it(
    queue_url: str, backend: QueueBackend, tmp_path: Path
) -> None:
    log = tmp_path / "log.txt"
    job_id = backend.enqueue("slow", {"log": str(log), "seconds": 1.5})
    first = start_worker(queue_url, lease=1.0, grace=5)
    try:
        wait_for(lambda: lines_of(log, "start"), timeout=30)
        time.sleep(0.3)
        os.kill(first.pid, signal.SIGKILL)
        assert first.wait(10) == -signal.SIGKILL
    finally:
        if first.poll() is None:
            first.kill()
    assert lines_of(log, "done") == []
    assert backend.pending(["slow"]) == 1

    second = start_worker(queue_url, lease=1.0, grace=5)
    try:
        wait_for(lambda: lines_of(log, "done"), timeout=30)
        wait_for(lambda: backend.pending(["slow"]) == 0, timeout=10)
        second.send_signal(signal.SIGTERM)
        assert second.wait(15) == 0
    finally:
        if second.poll() is None:
            second.kill()
    starts = lines_of(log, "start")
    assert [(s[1], s[2], s[3]) for s in starts] == [
        (job_id, "1", str(first.pid)),
        (job_id, "2", str(second.pid)),
    ]
    assert lines_of(log, "done") == [["done", str(job_id), "2", str(second.pid)]]
    assert backend.dead_letters() == []


def test_sigterm_finishes_quick_jobs_and_hands_back_slow_ones(
    queue_url: str, backend: QueueBackend, tmp_path: Path
) -> None:
    log = tmp_path / "log.txt"
    quick = backend.enqueue("slow", {"log": str(log), "seconds": 0.5})
    slow = backend.enqueue("slow", {"log": str(log), "seconds": 60})
    worker = start_worker(queue_url, lease=30, grace=2.0)
    try:
        wait_for(lambda: len(lines_of(log, "start")) == 2, timeout=30)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(20) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
    assert [line[1] for line in lines_of(log, "done")] == [quick]
    [job] = backend.reserve(["slow"], 5, 30, "after")  # ready at once, not after the lease
    assert (job.id, job.attempts) == (slow, 1)
