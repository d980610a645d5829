"""HTTP fetching for every app: SSRF guard, per-host politeness, limits, retries (see fetcher)."""

from sleuth.net.errors import REASONS, FetchError
from sleuth.net.fetcher import Fetcher, FetchResult, parse_retry_after, parse_url
from sleuth.net.guard import Guard, classify_address
from sleuth.net.politeness import HostClock, MemoryHostClock, Politeness

__all__ = [
    "REASONS",
    "FetchError",
    "FetchResult",
    "Fetcher",
    "Guard",
    "HostClock",
    "MemoryHostClock",
    "Politeness",
    "classify_address",
    "parse_retry_after",
    "parse_url",
]
