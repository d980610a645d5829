"""Argument rules of the queue interface (`base.py`), shared by every backend so that all of
them refuse the same calls with the same words before touching their storage."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

from sleuth.jobs.base import JSON

_encode = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
# A stored payload that is not a JSON object (written by hand, or damaged) is read as
# {UNREADABLE: its text}, so that reading a queue never fails on one job.
UNREADABLE = "unreadable_payload"


def dump_payload(payload: JSON, what: str = "payload") -> str:
    """JSON text of a payload; refuses what could not round-trip through JSON."""
    if not isinstance(payload, dict):
        raise ValueError(f"{what} must be a JSON object (dict), not {type(payload).__name__}")
    try:
        return _encode(payload)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} is not JSON-serialisable: {exc}") from None


def load_payload(text: str) -> JSON:
    """The JSON object stored as `text`, or {UNREADABLE: text} when it is not one."""
    try:
        payload = json.loads(text)
    except ValueError:
        return {UNREADABLE: text}
    return payload if isinstance(payload, dict) else {UNREADABLE: text}


def check_queue(queue: str) -> None:
    if not isinstance(queue, str) or not queue:
        raise ValueError(f"queue name must be a non-empty string, not {queue!r}")


def check_dedup(dedup_key: str | None) -> None:
    if dedup_key is not None and (not isinstance(dedup_key, str) or not dedup_key):
        raise ValueError(f"dedup_key must be None or a non-empty string, not {dedup_key!r}")


def check_queues(queues: Sequence[str]) -> list[str]:
    """The queue names, each checked, duplicates dropped, in their order."""
    if isinstance(queues, str):
        raise ValueError("queues must be a sequence of queue names, not one string")
    for queue in queues:
        check_queue(queue)
    return list(dict.fromkeys(queues))


def check_enqueue(queue: str, priority: int, delay: float, dedup_key: str | None) -> None:
    check_queue(queue)
    check_dedup(dedup_key)
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise ValueError(f"priority must be an integer, not {priority!r}")
    if not math.isfinite(delay) or delay < 0:
        raise ValueError(f"delay must be a finite number of seconds >= 0, not {delay!r}")


def check_lease(lease: float) -> None:
    if not math.isfinite(lease) or lease <= 0:
        raise ValueError(f"lease must be a positive number of seconds, not {lease!r}")


def check_reserve(queues: Sequence[str], n: int, lease: float, consumer: str) -> list[str]:
    """The queue names to reserve from (as `check_queues`), after checking every argument."""
    names = check_queues(queues)
    if not names:
        raise ValueError("reserve needs at least one queue name")
    if n < 1:
        raise ValueError(f"n must be >= 1, not {n!r}")
    check_lease(lease)
    if not consumer:
        raise ValueError("consumer must be a non-empty name")
    return names


def check_retry_at(at: float) -> None:
    if not math.isfinite(at):
        raise ValueError(f"retry time must be a finite epoch time, not {at!r}")


def check_join(key: str, part: str, parts: Sequence[str]) -> None:
    if not isinstance(key, str) or not key:
        raise ValueError("join key must be a non-empty string")
    if isinstance(parts, str) or not parts:
        raise ValueError("parts must be a non-empty sequence of part names")
    if part not in parts:
        raise ValueError(f"part {part!r} is not one of the group's parts {list(parts)!r}")
