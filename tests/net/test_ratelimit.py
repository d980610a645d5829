"""Rate-limit headers in each source's dialect, read from real recorded responses, and the pure
budget rules (`claim`, `observe`) they feed."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path

import httpx
import pytest
import yaml

from sleuth.net.budgets import (
    DEFAULT_429_WAIT,
    UNKNOWN_RESET_POLL,
    UNKNOWN_RESET_WAIT,
    Budget,
    claim,
    observe,
)
from sleuth.net.ratelimit import RateLimit, parse_rate_limit, parse_reset, parse_retry_after

REAL = Path(__file__).resolve().parents[1] / "fixtures" / "real"
NOW = 1_800_000_000.0


def recorded(path: str) -> list[tuple[httpx.Headers, int]]:
    """The response headers and statuses of a recorded file (VCR cassette or httptest JSON)."""
    file = REAL / path
    if not file.exists():
        pytest.skip(f"the shared recordings are not beside this checkout ({file})")
    if file.suffix == ".yaml":
        out = []
        for interaction in yaml.safe_load(file.read_text())["interactions"]:
            response = interaction["response"]
            headers = [(k, v) for k, values in response["headers"].items() for v in values]
            out.append((httpx.Headers(headers), response["status"]["code"]))
        return out
    response = json.loads(file.read_text())["response"]
    return [(httpx.Headers([tuple(h) for h in response["headers"]]), response["status"])]


def test_mastodon_iso_reset_from_the_recordings() -> None:
    (headers, status), *_ = recorded("mastodon/test_account_followers.yaml")
    news = parse_rate_limit(headers, NOW)
    reset = datetime(2026, 8, 1, 13, 50, 0, 621469, tzinfo=UTC).timestamp()
    assert status == 200
    assert news == RateLimit(limit=300, remaining=299, reset_at=reset)


def test_every_mastodon_recording_with_headers_parses() -> None:
    found = 0
    recorded("mastodon/test_account.yaml")  # skips when the recordings are not there
    for cassette in sorted((REAL / "mastodon").glob("*.yaml")):
        for headers, _status in recorded(f"mastodon/{cassette.name}"):
            if "x-ratelimit-limit" in headers:
                news = parse_rate_limit(headers, NOW)
                assert news.limit == int(headers["x-ratelimit-limit"])
                assert news.remaining == int(headers["x-ratelimit-remaining"])
                assert news.reset_at is not None and news.reset_at > NOW - 86400 * 365
                found += 1
    assert found > 10


def test_x_epoch_reset_from_the_recordings() -> None:
    (headers, _status), *_ = recorded("x/tweepy/test_client_get_users_followers.yaml")
    news = parse_rate_limit(headers, NOW)
    assert (news.limit, news.remaining) == (15, 14)
    # The window is 15 minutes from the recorded Date; a whole-second reset gets its second.
    date = parsedate_to_datetime(headers["date"]).timestamp()
    assert news.reset_at == 1618286773 + 1 == date + 900 + 1
    (headers, _status), *_ = recorded("x/academictwitter/users_lookup_ids_full_fields.json")
    assert parse_rate_limit(headers, NOW) == RateLimit(900, 899, 1623874064 + 1)


def test_x_401_has_no_budget() -> None:
    (headers, status), *_ = recorded("x/academictwitter/search_all_401_unauthorized.json")
    assert status == 401 and not parse_rate_limit(headers, NOW).known


def test_bluesky_ratelimit_headers_with_policy() -> None:
    """No Bluesky recording has headers; these are atproto xrpc-server's (rate-limiter-http.ts):
    the reset in epoch seconds, the policy `<limit>;w=<window>`, Retry-After on a 429."""
    headers = httpx.Headers(
        {
            "RateLimit-Limit": "3000",
            "RateLimit-Remaining": "0",
            "RateLimit-Reset": str(int(NOW) + 120),
            "RateLimit-Policy": "3000;w=300",
            "Retry-After": "120",
        }
    )
    news = parse_rate_limit(headers, NOW)
    assert news == RateLimit(3000, 0, NOW + 121, window=300.0, retry_at=NOW + 120)


def test_ietf_draft_delta_seconds_reset() -> None:
    news = parse_rate_limit(httpx.Headers({"RateLimit-Reset": "30", "RateLimit-Limit": "10"}), NOW)
    assert (news.limit, news.reset_at) == (10, NOW + 31)
    assert parse_reset("2.5", NOW) == NOW + 2.5  # a fraction is exact: no second added


@pytest.mark.parametrize("bad", ["", "soon", "-3", "nan", "2026-13-45T00:00:00Z"])
def test_bad_reset_values_are_unknown(bad: str) -> None:
    assert parse_reset(bad, NOW) is None


def test_retry_after_seconds_and_date() -> None:
    assert parse_retry_after("1") == 1.0
    assert parse_retry_after(" 2.5 ") == 2.5
    date = format_datetime(datetime.fromtimestamp(NOW + 90, UTC), usegmt=True)
    assert parse_retry_after(date, NOW) == 90.0
    assert parse_retry_after(date, NOW + 100) == 0.0  # a date in the past: now
    for bad in ("", "soon", "-5", "inf"):
        assert parse_retry_after(bad) is None
    news = parse_rate_limit(httpx.Headers({"Retry-After": date}), NOW)
    assert news.retry_at == NOW + 90 and news.known


def test_no_headers_no_news() -> None:
    assert not parse_rate_limit(httpx.Headers({"Content-Type": "text/html"}), NOW).known


def budget(**values: object) -> Budget:
    return Budget("api.example", "", **values)  # type: ignore[arg-type]


def test_claims_take_from_the_remaining_count_then_wait_for_the_reset() -> None:
    b = observe(budget(), RateLimit(3, 2, NOW + 10), 200, NOW)
    assert b is not None and (b.limit, b.remaining, b.reset_at) == (3, 2, NOW + 10)
    b, wait = claim(b, NOW)
    assert (b.remaining, wait) == (1, 0.0)
    b, _ = claim(b, NOW)
    spent, wait = claim(b, NOW + 4)
    assert (spent.remaining, wait) == (0, 6.0)
    fresh, wait = claim(spent, NOW + 10)  # a new window: whole again, its end not known yet
    assert (fresh.remaining, fresh.reset_at, wait) == (2, None, 0.0)


def test_answers_out_of_order_never_raise_the_count_within_a_window() -> None:
    b = observe(budget(), RateLimit(10, 5, NOW + 10.1), 200, NOW)
    assert b is not None
    later_report_of_an_earlier_request = RateLimit(10, 7, NOW + 10.2)
    assert observe(b, later_report_of_an_earlier_request, 200, NOW + 1) is None  # nothing new
    lower = observe(b, RateLimit(10, 4, NOW + 10.2), 200, NOW + 1)
    assert lower is not None and (lower.remaining, lower.reset_at) == (4, NOW + 10.1)
    next_window = observe(lower, RateLimit(10, 9, NOW + 20), 200, NOW + 11)
    assert next_window is not None and next_window.remaining == 9
    stale = RateLimit(10, 0, NOW + 10)  # a late report of a window that is over
    assert observe(next_window, stale, 200, NOW + 12) is None


def test_a_rolled_over_window_keeps_the_local_count() -> None:
    b = budget(limit=10, remaining=0, reset_at=NOW)
    for _ in range(4):
        b, _wait = claim(b, NOW + 1)
    assert (b.remaining, b.reset_at) == (6, None)
    told = observe(b, RateLimit(10, 9, NOW + 11), 200, NOW + 1.1)
    assert told is not None and (told.remaining, told.reset_at) == (6, NOW + 11)


def test_429_blocks_until_retry_after_else_reset_else_a_default() -> None:
    blocked = observe(budget(), RateLimit(retry_at=NOW + 30), 429, NOW)
    assert blocked is not None and blocked.blocked_until == NOW + 30
    assert claim(blocked, NOW + 10) == (blocked, 20.0)
    assert claim(blocked, NOW + 30)[1] == 0.0
    by_reset = observe(budget(), RateLimit(100, 0, NOW + 40), 429, NOW)
    assert by_reset is not None and by_reset.blocked_until == NOW + 40
    silent = observe(budget(), RateLimit(), 429, NOW)
    assert silent is not None and silent.blocked_until == NOW + DEFAULT_429_WAIT


def test_a_spent_budget_without_a_reset_is_trusted_again_later() -> None:
    b = budget(limit=5, remaining=0, updated_at=NOW)
    assert claim(b, NOW + 1)[1] == UNKNOWN_RESET_POLL  # asks again soon: news may come
    again, wait = claim(b, NOW + UNKNOWN_RESET_WAIT)
    assert (again.remaining, wait) == (4, 0.0)


def test_unknown_budgets_never_wait() -> None:
    assert claim(budget(), NOW) == (budget(), 0.0)
    assert observe(budget(), RateLimit(), 200, NOW) is None
