"""Process-wide malloc setting for the `sleuth` command.

glibc gives every thread that contends for malloc an arena of its own (up to 8 per core) and
hands little of an arena's freed memory back. A worker's threads only carry bytes between the
event loop, the database and the blob folder, so two arenas cost no speed and save memory:
the main process of a 20,000-URL crawl peaked at 151 MB with glibc's default, 133 MB with two
arenas, in the same time (`bench/RESULTS.md`, images section)."""

from __future__ import annotations

import ctypes
import os
import sys

ARENAS = 2
_M_ARENA_MAX = -8  # mallopt's parameter number in glibc's malloc.h


def limit_malloc_arenas() -> bool:
    """Cap glibc's malloc arenas here and, through the environment, in child processes;
    True when this call set the cap. A MALLOC_ARENA_MAX the user set is left as it is; on
    other C libraries there is nothing to cap and nothing changes."""
    if not sys.platform.startswith("linux") or "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # no mallopt: not glibc (musl has no arenas to cap)
        return False
    if mallopt(_M_ARENA_MAX, ARENAS) != 1:
        return False
    os.environ["MALLOC_ARENA_MAX"] = str(ARENAS)  # read by glibc at the start of children
    return True
