"""Exit with the parent: no process sleuth starts may outlive the one that started it.

The watched process is the direct parent, or an ancestor further up: a CPU pool process's
parent is multiprocessing's fork server, which outlives the worker that asked for the pool.
On Linux the kernel signals a child the moment its direct parent dies (`PR_SET_PDEATHSIG`,
through libc's `prctl`), and a pidfd becomes readable the moment any watched process ends;
elsewhere a daemon thread polls."""

from __future__ import annotations

import ctypes
import logging
import os
import select
import signal
import sys
import threading
import time

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
POLL_SECONDS = 0.5


def _ask_the_kernel(signum: int) -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        failed = libc.prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0) != 0
    except (OSError, AttributeError) as exc:
        log.warning("prctl(PR_SET_PDEATHSIG) unavailable (%s); watching the parent only", exc)
        return
    if failed:
        log.warning("prctl(PR_SET_PDEATHSIG) failed: %s", os.strerror(ctypes.get_errno()))


def _gone(pid: int, direct: bool) -> bool:
    if direct:
        return os.getppid() != pid
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's: not ours to signal, still there
        return False
    return False


def _watch(pid: int, direct: bool, signum: int) -> None:
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is not None:
        try:
            fd = pidfd_open(pid)
        except ProcessLookupError:
            fd = None
        if fd is not None:
            select.select([fd], [], [])  # readable once the process has ended
            os.close(fd)
    else:
        while not _gone(pid, direct):
            time.sleep(POLL_SECONDS)
    log.warning("process %d, which started this one, is gone; stopping", pid)
    os.kill(os.getpid(), signum)


def exit_with_parent(parent: int | None = None, signum: int = signal.SIGTERM) -> None:
    """Send `signum` to this process when `parent` (default: the direct parent; may be an
    ancestor) ends. SIGTERM lets a worker hand its jobs back; a process without a handler
    simply ends."""
    direct = parent is None or parent == os.getppid()
    pid = os.getppid() if parent is None else parent
    if direct and sys.platform.startswith("linux"):
        _ask_the_kernel(signum)
    # Started after prctl: a parent that died before it is seen here at once.
    threading.Thread(
        target=_watch, args=(pid, direct, signum), name="sleuth-parent-watch", daemon=True
    ).start()
