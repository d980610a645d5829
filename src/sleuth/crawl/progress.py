"""Following a run: a one-line progress display with rate and ETA, redrawn in place on a
terminal and printed as plain lines (at most every few seconds) when the output is a file or a
pipe, and the checks behind it, which outlive a database or queue restart."""

from __future__ import annotations

import logging
import math
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any, TextIO, TypeVar

from sleuth.crawl.runs import Progress

log = logging.getLogger(__name__)

T = TypeVar("T")


def format_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def outcome_counts(progress: Progress, labels: Mapping[str, str]) -> str:
    """The run's counts by outcome, "ok 3 dup 1 err 0": every labelled outcome (in the
    labels' order, shown even at zero), then any other outcome under its own name."""
    shown = [f"{label} {progress.count(outcome)}" for outcome, label in labels.items()]
    shown += [f"{o} {n}" for o, n in sorted(progress.outcomes.items()) if o not in labels]
    return " ".join(shown)


class ProgressLine:
    """A run's progress, redrawn as it changes: done/total, the rate since this display began
    (items resolved before a resume are not rate), the time left at that rate, and the
    counts by outcome under the app's `labels`."""

    def __init__(
        self,
        labels: Mapping[str, str],
        stream: TextIO | None = None,
        plain_every: float = 5.0,
        listing: str = "listing",
    ) -> None:
        self.labels = labels
        self.stream = stream or sys.stderr
        self.listing = listing  # said while the total is unknown
        self.tty = self.stream.isatty()
        self.plain_every = plain_every
        self.started = time.monotonic()
        self.first_done: int | None = None
        self.last_plain = -math.inf  # the first update is always shown
        self.width = 0

    def render(self, progress: Progress) -> str:
        done, total = progress.done, progress.total
        elapsed = time.monotonic() - self.started
        if self.first_done is None:
            self.first_done = done
        rate = (done - self.first_done) / elapsed if elapsed > 0 else 0.0
        if total:
            frac = min(1.0, done / total)
            bar_len = 24
            filled = int(frac * bar_len)
            bar = "#" * filled + "-" * (bar_len - filled)
            eta = format_duration((total - done) / rate) if rate > 0 else "?"
            head = f"[{bar}] {done}/{total} {frac:5.1%}"
            tail = f"{rate:7.1f}/s ETA {eta}"
        else:
            head = f"{done} done ({self.listing}...)"
            tail = f"{rate:7.1f}/s"
        return f"{head} {tail} {outcome_counts(progress, self.labels)}".rstrip()

    def update(self, progress: Progress) -> None:
        line = self.render(progress)
        if self.tty:
            cols = shutil.get_terminal_size((100, 20)).columns
            line = line[: cols - 1]
            self.stream.write("\r" + line.ljust(self.width))
            self.width = len(line)
            self.stream.flush()
        elif time.monotonic() - self.last_plain >= self.plain_every:
            self.last_plain = time.monotonic()
            self.stream.write(line + "\n")
            self.stream.flush()

    def close(self, progress: Progress) -> None:
        line = self.render(progress)
        self.stream.write(("\r" + line.ljust(self.width) if self.tty else line) + "\n")
        self.stream.flush()


class PatientCheck:
    """Runs a periodic check (how far is the crawl?) that may fail while the database or the
    queue restarts: a failure returns a default and the caller simply checks again later, as
    the workers do. Said once per outage, not at every check, and again when it is over."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.failing = False

    def __call__(self, fn: Callable[..., T], *args: Any, default: T) -> T:
        try:
            value = fn(*args)
        except Exception as exc:
            if not self.failing:
                reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                log.warning("%s failed (%s); trying again until it works", self.what, reason)
            self.failing = True
            return default
        if self.failing:
            log.warning("%s works again", self.what)
            self.failing = False
        return value
