"""The suite's one deadline for waiting, and the one way to wait on a condition.

A deadline in a test guards against a hang; it never measures speed. On a busy 2-core
machine a step that takes milliseconds alone can take seconds, so every wait for something
that normally finishes quickly uses `PATIENCE`, far longer than any healthy run needs."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

PATIENCE = 120.0
"""Seconds to wait for a condition, a thread, a process or an answer before calling it hung."""


def wait_for(
    probe: Callable[[], T], what: str = "", timeout: float = PATIENCE, interval: float = 0.02
) -> T:
    """Poll `probe` until it returns something truthy and return that; fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what or probe}: not within {timeout:g} s")
        time.sleep(interval)
