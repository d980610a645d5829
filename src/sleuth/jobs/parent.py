"""Exit with the parent: no process sleuth starts may outlive the one that started it.

On Linux the kernel signals the child the moment its parent dies (`PR_SET_PDEATHSIG`, through
libc's `prctl`); everywhere, a daemon thread also watches the parent pid, which covers other
systems and a parent that died before the child asked the kernel."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
import time

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
WATCH_SECONDS = 0.5


def _ask_the_kernel(signum: int) -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        failed = libc.prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0) != 0
    except (OSError, AttributeError) as exc:
        log.warning("prctl(PR_SET_PDEATHSIG) unavailable (%s); watching the parent pid only", exc)
        return
    if failed:
        error = ctypes.get_errno()
        log.warning("prctl(PR_SET_PDEATHSIG) failed: %s", os.strerror(error))


def _watch(parent: int, signum: int) -> None:
    while os.getppid() == parent:
        time.sleep(WATCH_SECONDS)
    log.warning("parent process %d is gone; stopping", parent)
    os.kill(os.getpid(), signum)


def exit_with_parent(parent: int | None = None, signum: int = signal.SIGTERM) -> None:
    """Send `signum` to this process when `parent` (default: the current parent) dies.
    SIGTERM lets a worker hand its jobs back; a process without a handler simply ends."""
    expected = os.getppid() if parent is None else parent
    if sys.platform.startswith("linux"):
        _ask_the_kernel(signum)
    # Started after prctl: a parent that died before it is seen here at once.
    threading.Thread(
        target=_watch, args=(expected, signum), name="sleuth-parent-watch", daemon=True
    ).start()
