"""The one way sleuth writes a moment."""

from __future__ import annotations

from datetime import datetime

from sleuth.timefmt import iso_utc


def test_whole_seconds_have_no_fraction_and_others_have_milliseconds() -> None:
    assert iso_utc(1_700_000_000) == "2023-11-14T22:13:20Z"
    assert iso_utc(1_700_000_000.25) == "2023-11-14T22:13:20.250Z"
    assert iso_utc(0) == "1970-01-01T00:00:00Z"


def test_the_text_reads_back_as_the_same_moment_to_the_millisecond() -> None:
    for ts in (1_700_000_000.123, 1_234_567_890.5, 86_400.001):
        back = datetime.fromisoformat(iso_utc(ts).replace("Z", "+00:00")).timestamp()
        assert abs(back - ts) < 0.001
