"""Fixed-window request budgets for the emulated APIs, per (bucket, client address).

Each emulator names its buckets (an endpoint, or a whole API) and writes the answer in its own
header dialect; this module only counts. Windows start at multiples of their length since the
epoch, as Mastodon's and X's do, so a client can predict the reset from the headers alone.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    """`requests` per `window` seconds."""

    requests: int
    window: float


@dataclass(frozen=True)
class Decision:
    """One request's place in its window: whether it may be served, what is left, the reset."""

    allowed: bool
    limit: int
    remaining: int
    reset_at: float


class Limiter:
    """Counts requests per (bucket, client) in the current window; thread-safe (the emulator
    serves each connection in its own thread)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._used: dict[tuple[str, str], tuple[float, int]] = {}

    def take(self, bucket: str, client: str, limit: Limit) -> Decision:
        """Count one request; refused (not counted) once the window's budget is spent."""
        now = self._clock()
        start = math.floor(now / limit.window) * limit.window
        with self._lock:
            window, used = self._used.get((bucket, client), (start, 0))
            if window != start:
                used = 0
            allowed = used < limit.requests
            if allowed:
                used += 1
            self._used[(bucket, client)] = (start, used)
        return Decision(
            allowed, limit.requests, max(0, limit.requests - used), start + limit.window
        )
