"""Fixed-window request budgets for the emulated APIs, per (bucket, client address).

Each emulator names its buckets (an endpoint, or a whole API) and writes the answer in its own
header dialect; this module only counts. Windows start at multiples of their length since the
epoch, as Mastodon's and X's do, so a client can predict the reset from the headers alone.
`Limit.scaled` shrinks a real ceiling (a 5-minute window as 15 seconds) so that a benchmark of
ceilings runs in minutes; the limiter keeps what it served and refused per (bucket, client),
the emulator's own count a benchmark checks the crawler against.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    """`requests` per `window` seconds."""

    requests: int
    window: float

    def scaled(self, window: float, requests: float = 1.0) -> Limit:
        """This limit with its window times `window` and its count times `requests` (at
        least 1): both alike keep the real requests per hour in shorter windows."""
        if window <= 0 or requests <= 0:
            raise ValueError(f"scales must be positive, not {window!r} and {requests!r}")
        return Limit(max(1, round(self.requests * requests)), self.window * window)


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
        self._served: Counter[tuple[str, str, float]] = Counter()
        self._refused: Counter[tuple[str, str, float]] = Counter()

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
            (self._served if allowed else self._refused)[(bucket, client, start)] += 1
        return Decision(
            allowed, limit.requests, max(0, limit.requests - used), start + limit.window
        )

    def served(self) -> dict[tuple[str, str, float], int]:
        """Requests served per (bucket, client, window start) since this limiter began."""
        with self._lock:
            return dict(self._served)

    def refused(self) -> dict[tuple[str, str, float], int]:
        """Requests refused (429) per (bucket, client, window start)."""
        with self._lock:
            return dict(self._refused)
