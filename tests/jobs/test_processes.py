"""Worker processes started by `spawn_workers`: they share the queue, and none outlives its
parent, whether the parent stops them or dies without a word."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from sleuth.jobs.base import QueueBackend
from sleuth.jobs.processes import queue_worker_main, spawn_workers
from tests.jobs.helpers import read_lines, record_kinds
from tests.patience import wait_for
from tests.proctree import alive, descendants

ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 60.0  # generous: the machine may be busy


def test_main_and_arguments_must_pickle() -> None:
    with pytest.raises(ValueError, match="module-level"):
        spawn_workers(1, lambda *, started: None)
    with pytest.raises(ValueError, match="n must be >= 1"):
        spawn_workers(0, queue_worker_main)


def test_spawned_worker_processes_share_the_queue(queue_url: str, backend, tmp_path: Path) -> None:
    log = str(tmp_path / "log.txt")
    backend.enqueue_many("record", [({"log": log, "i": i}, None) for i in range(300)])
    options = {"concurrency": 8, "poll_interval": 0.02}
    group = spawn_workers(2, queue_worker_main, (queue_url, record_kinds, options))
    try:
        wait_for(lambda: backend.pending(["record"]) == 0, timeout=DEADLINE)
    finally:
        codes = group.stop(timeout=30)
    assert codes == [0, 0]
    assert group.alive() == 0
    lines = read_lines(log)
    ids = [line[0] for line in lines]
    assert len(ids) == len(set(ids)) == 300
    assert {line[1] for line in lines} <= {str(pid) for pid in group.pids}


def _start_tree(queue_url: str, backend: QueueBackend, log: Path) -> tuple[subprocess.Popen, set]:
    """A spawner whose worker holds one job after a CPU step; returns it and its tree."""
    backend.enqueue("tree", {"log": str(log), "seconds": 600})
    parent = subprocess.Popen(
        [sys.executable, "-m", "tests.jobs.spawner_child", queue_url],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    [worker_pid] = map(int, parent.stdout.readline().split())
    [[_, _, pid, cpu_pid]] = wait_for(lambda: read_lines(log), timeout=DEADLINE)
    assert int(pid) == worker_pid
    tree = descendants(parent.pid)
    assert {worker_pid, int(cpu_pid)} <= tree
    return parent, tree


def _assert_handed_back(backend: QueueBackend) -> None:
    """The held job is ready again at once, leased to nobody."""
    [stats] = backend.stats()
    assert (stats.in_flight, dict(stats.in_flight_by_consumer)) == (0, {})
    [job] = backend.reserve(["tree"], 5, 30, "after")
    assert job.attempts == 1  # handed back, not counted as a failure


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_kill_9_of_the_parent_stops_every_child(
    queue_url: str, backend: QueueBackend, tmp_path: Path
) -> None:
    parent, tree = _start_tree(queue_url, backend, tmp_path / "log.txt")
    try:
        os.kill(parent.pid, signal.SIGKILL)
        assert parent.wait(DEADLINE) == -signal.SIGKILL
        wait_for(lambda: not any(alive(pid) for pid in tree), timeout=DEADLINE)
    finally:
        for pid in tree:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
    _assert_handed_back(backend)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_stop_signal_to_the_parent_stops_the_tree_and_hands_back(
    queue_url: str, backend: QueueBackend, tmp_path: Path, signum: int
) -> None:
    parent, tree = _start_tree(queue_url, backend, tmp_path / "log.txt")
    try:
        parent.send_signal(signum)
        assert parent.wait(DEADLINE) == 0
        wait_for(lambda: not any(alive(pid) for pid in tree), timeout=DEADLINE)
    finally:
        if parent.poll() is None:
            parent.kill()
    _assert_handed_back(backend)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_kill_9_of_a_worker_takes_its_cpu_pool_down(
    queue_url: str, backend: QueueBackend, tmp_path: Path
) -> None:
    parent, tree = _start_tree(queue_url, backend, tmp_path / "log.txt")
    try:
        [[_, _, worker_pid, cpu_pid]] = read_lines(tmp_path / "log.txt")
        below = descendants(int(worker_pid))  # its fork server and CPU pool
        assert int(cpu_pid) in below
        os.kill(int(worker_pid), signal.SIGKILL)
        wait_for(lambda: not any(alive(pid) for pid in below), timeout=DEADLINE)
    finally:
        parent.kill()
        parent.wait()
        for pid in tree:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
