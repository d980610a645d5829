"""Rate-limit budgets as servers announce them in response headers, in each dialect sources use.

- Mastodon: `X-RateLimit-Limit/Remaining/Reset`, the reset an ISO-8601 time.
- Bluesky (atproto) and the IETF draft: `RateLimit-Limit/Remaining/Reset/Policy`; the reset is
  epoch seconds in atproto's server and delta seconds in the draft, told apart by size.
- X: `x-rate-limit-limit/remaining/reset`, the reset epoch seconds.
- `Retry-After` (any server, usually with a 429 or 503): delay-seconds or an HTTP date.

Header names are case-insensitive, so `X-RateLimit-*` and `x-ratelimit-*` are one dialect. Every
time is turned into epoch seconds on this machine's clock, which the budgets compare with. A reset
written in whole seconds may be rounded down by the server (atproto's is), so a second is added
to it: a budget is never used again before its window has really reset.
"""

from __future__ import annotations

import email.utils
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

# A `RateLimit-Reset` above this is an epoch time (2001 onwards), below it a delay in seconds.
EPOCH_THRESHOLD = 1e9

# (limit, remaining, reset) header names of each dialect, tried in this order.
DIALECTS = (
    ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"),
    ("x-rate-limit-limit", "x-rate-limit-remaining", "x-rate-limit-reset"),
    ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"),
)
_WINDOW = re.compile(r";\s*w\s*=\s*(\d+)")


@dataclass(frozen=True)
class RateLimit:
    """What one response says about its budget; any part may be unknown (None).

    `reset_at` is when the window's budget is whole again, `window` its length in seconds
    (only `RateLimit-Policy` says), `retry_at` when a `Retry-After` allows the next request."""

    limit: int | None = None
    remaining: int | None = None
    reset_at: float | None = None
    window: float | None = None
    retry_at: float | None = None

    @property
    def known(self) -> bool:
        """Whether the response said anything about its budget at all."""
        return any(
            v is not None for v in (self.limit, self.remaining, self.reset_at, self.retry_at)
        )


def _count(value: str | None) -> int | None:
    """A non-negative integer header (the first of a list such as `300, 300;w=300`)."""
    if value is None:
        return None
    head = value.split(",")[0].split(";")[0].strip()
    return int(head) if head.isdigit() else None


def parse_reset(value: str | None, now: float) -> float | None:
    """The epoch time a reset header names: ISO-8601, epoch seconds, or delta seconds (a whole
    number of seconds plus one)."""
    if not value:
        return None
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(number) or number < 0:
            return None
        if number.is_integer():
            number += 1.0  # whole seconds, perhaps rounded down
        return number if number >= EPOCH_THRESHOLD else now + number
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delay-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def parse_rate_limit(headers: Mapping[str, str], now: float | None = None) -> RateLimit:
    """The budget a response's headers announce, in whichever dialect they use.

    `headers` must look names up case-insensitively (`httpx.Headers` does)."""
    now = time.time() if now is None else now
    limit = remaining = None
    reset_at = None
    for limit_name, remaining_name, reset_name in DIALECTS:
        limit = _count(headers.get(limit_name))
        remaining = _count(headers.get(remaining_name))
        reset_at = parse_reset(headers.get(reset_name), now)
        if limit is not None or remaining is not None or reset_at is not None:
            break
    window = None
    match = _WINDOW.search(headers.get("ratelimit-policy") or headers.get("ratelimit-limit") or "")
    if match:
        window = float(match.group(1))
    wait = parse_retry_after(headers.get("retry-after"), now)
    return RateLimit(
        limit=limit,
        remaining=remaining,
        reset_at=reset_at,
        window=window,
        retry_at=None if wait is None else now + wait,
    )
