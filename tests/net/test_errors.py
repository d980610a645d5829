from __future__ import annotations

import pickle

import pytest

from sleuth.net.errors import REASONS, FetchError


@pytest.mark.parametrize(
    ("reason", "status", "retryable"),
    [
        ("timeout", None, True),
        ("connect", None, True),
        ("http_status", 500, True),
        ("http_status", 503, True),
        ("http_status", 429, True),
        ("http_status", 404, False),
        ("http_status", 403, False),
        ("http_status", 400, False),
        ("dns", None, False),
        ("blocked_address", None, False),
        ("bad_url", None, False),
        ("too_large", None, False),
        ("too_many_redirects", None, False),
        ("not_image", None, False),
        ("bad_json", None, False),
        ("bad_xml", None, False),
        ("rate_limited", None, True),
        ("protocol", None, False),
        ("tls", None, False),
    ],
)
def test_retryable(reason: str, status: int | None, retryable: bool) -> None:
    assert FetchError(reason, "x", status=status).retryable is retryable


def test_every_reason_is_covered_above() -> None:
    assert {
        "bad_url", "blocked_address", "dns", "connect", "tls", "timeout", "too_large",
        "too_many_redirects", "http_status", "not_image", "bad_json", "bad_xml", "protocol",
        "rate_limited",
    } == REASONS  # fmt: skip


def test_unknown_reason_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown fetch error reason 'oops'"):
        FetchError("oops", "x")


def test_survives_pickling_for_the_process_pool() -> None:
    error = FetchError("http_status", "http://h/ answered 429", 429, 7.0, b'{"error":"x"}')
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.reason, copy.detail, copy.status, copy.retry_after, copy.body) == (
        "http_status",
        "http://h/ answered 429",
        429,
        7.0,
        b'{"error":"x"}',
    )


def test_message_names_reason_detail_and_retry_after() -> None:
    assert str(FetchError("timeout", "read timeout")) == "timeout: read timeout"
    assert str(FetchError("http_status", "429", 429, 2.5)) == "http_status: 429 (retry after 2.5 s)"
