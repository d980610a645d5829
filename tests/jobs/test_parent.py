"""`exit_with_parent`: a child ends when the process it watches dies without a word, through
the kernel (prctl, pidfd) and through the portable polls alike."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.patience import wait_for
from tests.proctree import alive

ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 60.0

# argv: how, ready file, pid to watch ("parent": the direct parent)
WATCHER = """
import os, signal, sys
import sleuth.jobs.parent as parent
if sys.argv[1] == "poll":  # no prctl, no pidfd: only the portable watch is left
    parent._ask_the_kernel = lambda signum: None
    del os.pidfd_open
parent.exit_with_parent(None if sys.argv[3] == "parent" else int(sys.argv[3]))
open(sys.argv[2], "w").write("ready")
while True:
    signal.pause()
"""
PARENT = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", *sys.argv[1:]])
print(child.pid, flush=True)
time.sleep(3600)
"""
SLEEPER = [sys.executable, "-c", "import time; time.sleep(3600)"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize(
    ("how", "watched"),
    [("kernel", "parent"), ("poll", "parent"), ("kernel", "other"), ("poll", "other")],
)
def test_the_child_ends_when_the_process_it_watches_is_killed(
    tmp_path: Path, how: str, watched: str
) -> None:
    """ "parent": the watcher's own parent; "other": a process further away (as a CPU pool
    process watches its worker, not its fork-server parent)."""
    ready = tmp_path / "ready"
    other = subprocess.Popen(SLEEPER)
    target = "parent" if watched == "parent" else str(other.pid)
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(PARENT),
            textwrap.dedent(WATCHER),
            how,
            str(ready),
            target,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    child = int(parent.stdout.readline())
    victim = parent if watched == "parent" else other
    try:
        wait_for(ready.exists, timeout=DEADLINE)
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(DEADLINE)
        wait_for(lambda: not alive(child), timeout=DEADLINE)
        assert alive(parent.pid) == (watched == "other")
    finally:
        for process in (parent, other):
            process.kill()
            process.wait()
        if alive(child):
            os.kill(child, signal.SIGKILL)
