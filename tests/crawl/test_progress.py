"""The progress line of a run: done/total with a bar, rate and ETA, counts by outcome under
the app's labels; redrawn in place on a terminal, plain lines in a file."""

from __future__ import annotations

import io
import re

from sleuth.crawl.progress import ProgressLine, format_duration, outcome_counts
from sleuth.crawl.runs import Progress

LABELS = {"success": "ok", "duplicate": "dup", "error": "err"}


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_counts_show_every_label_then_other_outcomes() -> None:
    p = Progress(total=9, listed=9, outcomes={"success": 3, "error": 1, "gone": 2})
    assert outcome_counts(p, LABELS) == "ok 3 dup 0 err 1 gone 2"
    assert outcome_counts(Progress(None, 0), {}) == ""


def test_a_known_total_gets_a_bar_and_an_eta() -> None:
    line = ProgressLine(LABELS, stream=io.StringIO())
    text = line.render(Progress(total=8, listed=8, outcomes={"success": 2}))
    assert re.fullmatch(
        r"\[######------------------\] 2/8 25\.0% +\d+\.\d/s ETA (\?|\d+:\d\d) ok 2 dup 0 err 0",
        text,
    ), text


def test_an_unknown_total_says_it_is_still_listing() -> None:
    line = ProgressLine(LABELS, stream=io.StringIO(), listing="reading list")
    text = line.render(Progress(total=None, listed=5, outcomes={"error": 1}))
    assert re.fullmatch(r"1 done \(reading list\.\.\.\) +\d+\.\d/s ok 0 dup 0 err 1", text), text


def test_a_terminal_is_redrawn_in_place_and_a_file_gets_lines() -> None:
    term = Terminal()
    line = ProgressLine(LABELS, stream=term)
    line.update(Progress(total=2, listed=2, outcomes={"success": 1}))
    line.close(Progress(total=2, listed=2, outcomes={"success": 2}))
    assert term.getvalue().startswith("\r[") and term.getvalue().endswith("ok 2 dup 0 err 0\n")
    assert term.getvalue().count("\n") == 1
    plain = io.StringIO()
    line = ProgressLine(LABELS, stream=plain, plain_every=3600.0)
    for done in range(3):  # at most one plain line per `plain_every` seconds, then the last
        line.update(Progress(total=2, listed=2, outcomes={"success": done}))
    line.close(Progress(total=2, listed=2, outcomes={"success": 2}))
    assert [text.split()[1] for text in plain.getvalue().splitlines()] == ["0/2", "2/2"]


def test_durations() -> None:
    assert (format_duration(5), format_duration(65), format_duration(3725)) == (
        "0:05",
        "1:05",
        "1:02:05",
    )
    assert format_duration(-1) == "0:00"
