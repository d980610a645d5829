"""AOTF's HTTP API on sleuth (`/aotf/query`, `/search`, `/stats`, `/config`): AOTF's fields,
statuses, error codes and per-address limits, on real embedded services."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from sleuth.apps.finder.settings import NAME, FinderSettings
from sleuth.apps.finder.tasks import LINK_QUEUE, SEARCH_QUEUE
from sleuth.config import Settings
from sleuth.services import Services
from sleuth.web.app import create_app

ARTWORK = "https://danbooru.donmai.us/posts/10001"
AOTF_KEYS = {"status", "has_first_time_scan", "twitter_accounts", "results", "error"}


def make_client(tmp_path: Path, **finder: Any) -> Iterator[tuple[FlaskClient, Services]]:
    base = Settings(data_dir=tmp_path / "data")
    section = dataclasses.replace(FinderSettings(), **finder)
    services = Services(dataclasses.replace(base, apps={**base.apps, NAME: section}))
    try:
        yield create_app(services).test_client(), services
    finally:
        services.close()


@pytest.fixture
def free(tmp_path: Path) -> Iterator[tuple[FlaskClient, Services]]:
    """A client with no per-second limit (each test of the limit makes its own)."""
    yield from make_client(tmp_path, request_interval=0.0)


def from_ip(ip: str) -> dict[str, Any]:
    return {"environ_base": {"REMOTE_ADDR": ip}}


def test_a_query_starts_a_request_and_asking_again_returns_it(
    free: tuple[FlaskClient, Services],
) -> None:
    client, services = free
    first = client.get("/aotf/query", query_string={"url": ARTWORK})
    assert first.status_code == 200
    assert first.headers["Access-Control-Allow-Origin"] == "*"
    body = first.get_json()
    assert set(body) == AOTF_KEYS
    assert body["status"] == "WAIT_LINK_FINDER" and body["error"] is None
    assert body["twitter_accounts"] == [] and body["results"] == []
    again = client.post("/aotf/query", data=ARTWORK.encode(), content_type="text/plain")
    assert again.get_json() == body
    assert services.queue.pending([LINK_QUEUE]) == 1  # one link job, however often polled


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ({}, "NO_URL_FIELD"),
        ({"url": ""}, "NO_URL_FIELD"),
        ({"url": "https://example.org/" + "a" * 240}, "URL_TOO_LONG"),
        ({"url": "not a URL"}, "NOT_AN_URL"),
        ({"url": "ftp://example.org/x"}, "NOT_AN_URL"),
    ],
)
def test_a_bad_query_url_gets_aotf_s_error_code(
    free: tuple[FlaskClient, Services], args: dict[str, str], error: str
) -> None:
    client, services = free
    body = client.get("/aotf/query", query_string=args).get_json()
    assert body == {**body, "status": None, "error": error}
    assert services.queue.pending([LINK_QUEUE]) == 0


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", "NO_URL_FIELD"),
        (b"\xff\xfe not utf-8", "NOT_AN_URL"),
        (b"https://example.org/" + b"a" * 2000, "URL_TOO_LONG"),  # over 4 bytes a character
    ],
)
def test_a_bad_posted_url_gets_aotf_s_error_code(
    free: tuple[FlaskClient, Services], data: bytes, error: str
) -> None:
    client, _ = free
    answer = client.post("/aotf/query", data=data, content_type="text/plain")
    assert answer.status_code == 200 and answer.get_json()["error"] == error


def test_one_request_a_second_per_address_and_a_refusal_does_not_restart_it(
    tmp_path: Path,
) -> None:
    for client, _ in make_client(tmp_path):
        assert client.get("/aotf/query", query_string={"url": ARTWORK}).status_code == 200
        refused = client.get("/aotf/query", query_string={"url": ARTWORK})
        assert refused.status_code == 429
        assert refused.get_data(as_text=True) == "429 Too Many Requests"
        other = client.get("/aotf/query", query_string={"url": ARTWORK}, **from_ip("127.0.0.9"))
        assert other.status_code == 200  # the limit is per address
        assert client.get("/aotf/stats").status_code == 200  # /stats and /config are not limited
        assert client.get("/aotf/config").status_code == 200


def test_the_limiter_counts_from_the_last_request_let_through(services: Services) -> None:
    from sleuth.apps.finder.requests import accept

    engine = services.engine
    assert accept(engine, "192.0.2.1", 100.0)
    assert not accept(engine, "192.0.2.1", 100.6)  # refused: does not move the second
    assert accept(engine, "192.0.2.1", 101.0)
    assert accept(engine, "192.0.2.2", 101.0)


def test_an_address_may_have_ten_unfinished_requests(tmp_path: Path) -> None:
    for client, services in make_client(tmp_path, request_interval=0.0):
        for n in range(10):
            body = client.get("/aotf/query", query_string={"url": f"{ARTWORK}{n}"}).get_json()
            assert body["status"] == "WAIT_LINK_FINDER"
        eleventh = client.get("/aotf/query", query_string={"url": f"{ARTWORK}x"}).get_json()
        assert eleventh["error"] == "YOUR_IP_HAS_MAX_PROCESSING_REQUESTS"
        polled = client.get("/aotf/query", query_string={"url": f"{ARTWORK}3"}).get_json()
        assert polled["status"] == "WAIT_LINK_FINDER"  # polling an existing one still works
        other = client.get(
            "/aotf/query", query_string={"url": f"{ARTWORK}x"}, **from_ip("10.1.1.1")
        )
        assert other.get_json()["status"] == "WAIT_LINK_FINDER"
        assert services.queue.pending([LINK_QUEUE]) == 11


def test_unlimited_addresses_skip_both_limits(tmp_path: Path) -> None:
    for client, _ in make_client(tmp_path, unlimited_ips=("127.0.0.1",), max_processing_per_ip=1):
        for n in range(3):
            body = client.get("/aotf/query", query_string={"url": f"{ARTWORK}{n}"}).get_json()
            assert body["error"] is None
        config = client.get("/aotf/config").get_json()
        assert config["ip_can_bypass_limit"] is True


def test_search_is_for_advanced_addresses_and_is_polled_by_identifier(
    free: tuple[FlaskClient, Services],
) -> None:
    client, services = free
    image = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
    outsider = client.post("/aotf/search", data=image, **from_ip("198.51.100.7"))
    assert outsider.status_code == 403
    started = client.post("/aotf/search", data=image).get_json()
    assert started["status"] == "WAIT_IMAGE_REVERSE_SEARCH" and started["error"] is None
    identifier = started["identifier"]
    assert len(identifier) == 32
    polled = client.get("/aotf/search", query_string={"identifier": identifier}).get_json()
    assert polled == started
    assert services.queue.pending([SEARCH_QUEUE]) == 1
    assert services.blobs.path("s" + identifier, "fquery").read_bytes() == image
    missing = client.get("/aotf/search").get_json()
    assert missing["error"] == "IDENTIFIER_MISSING"
    unknown = client.get("/aotf/search", query_string={"identifier": "0" * 32}).get_json()
    assert unknown["error"] == "NO_SUCH_REQUEST"
    assert client.post("/aotf/search", data=b"").get_json()["error"] == "IMAGE_MISSING"


def test_an_image_over_the_upload_limit_is_refused_unread(tmp_path: Path) -> None:
    for client, services in make_client(tmp_path, request_interval=0.0, max_upload_bytes=1000):
        answer = client.post("/aotf/search", data=b"x" * 1001)
        assert answer.get_json()["error"] == "QUERY_IMAGE_TOO_BIG"
        assert services.queue.pending([SEARCH_QUEUE]) == 0


def test_config_states_the_limits_of_the_calling_address(
    free: tuple[FlaskClient, Services],
) -> None:
    client, _ = free
    assert client.get("/aotf/config").get_json() == {
        "limit_per_ip_address": 10,
        "ip_can_bypass_limit": False,
        "ip_can_use_advanced": True,
        "update_accounts_frequency": 30.0,
        "max_illust_url_size": 256,
    }
    outsider = client.get("/aotf/config", **from_ip("198.51.100.7")).get_json()
    assert outsider["ip_can_use_advanced"] is False


def test_stats_counts_the_open_requests(free: tuple[FlaskClient, Services]) -> None:
    client, _ = free
    client.get("/aotf/query", query_string={"url": ARTWORK})
    stats = client.get("/aotf/stats").get_json()
    assert stats == {
        "indexed_tweets_count": 0,
        "indexed_accounts_count": 0,
        "processing_user_requests_count": 1,
        "processing_scan_requests_count": 0,
        "pending_tweets_count": 0,
    }
