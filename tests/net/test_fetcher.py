"""The fetcher against a real local server that misbehaves in each way it must handle."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from sleuth.config import NetSettings, load_settings
from sleuth.net.errors import FetchError
from sleuth.net.fetcher import MAX_URL_LENGTH, Fetcher, parse_url
from sleuth.net.ratelimit import parse_retry_after
from tests.net.conftest import LocalServer, key, loopback_fetcher

pytestmark = pytest.mark.anyio

BASE = NetSettings(retries=0, connect_timeout=5.0, read_timeout=5.0, total_timeout=10.0)


def fetcher(settings: NetSettings = BASE, **changes: object) -> Fetcher:
    return loopback_fetcher(settings, **changes)


async def fetch_error(f: Fetcher, url: str, **kwargs: object) -> FetchError:
    with pytest.raises(FetchError) as info:
        await f.get(url, **kwargs)
    return info.value


async def test_png_and_jpeg_download_and_sniff(server: LocalServer) -> None:
    async with fetcher() as f:
        png = await f.get(server.url("/image.png"), expect="image")
        jpeg = await f.get(server.url("/image.jpg"), expect="image")
    assert (png.status, png.body, png.content_type, png.image_type) == (
        200,
        server.png,
        "image/png",
        "png",
    )
    assert png.final_url == png.url == server.url("/image.png")
    assert png.redirects == ()
    assert png.headers["content-length"] == str(len(server.png))
    assert (jpeg.body, jpeg.image_type) == (server.jpeg, "jpeg")


async def test_magic_bytes_win_over_content_type(server: LocalServer) -> None:
    async with fetcher() as f:
        mislabelled = await f.get(server.url("/png-as-text"), expect="image")
        html = await fetch_error(f, server.url("/html-as-jpeg"), expect="image")
        short = await fetch_error(f, server.url("/tiny-text"), expect="image")
        plain = await f.get(server.url("/html-as-jpeg"))
    assert (mislabelled.content_type, mislabelled.image_type) == ("text/plain", "png")
    assert html.reason == "not_image"
    assert "served as image/jpeg" in html.detail
    assert short.reason == "not_image"
    assert plain.image_type is None and plain.body.startswith(b"<!doctype html>")


async def test_request_headers(server: LocalServer) -> None:
    async with fetcher(user_agent="sleuth-test/1") as f:
        seen = (await f.get(server.url("/echo"), headers={"X-Probe": "1"}, expect="json")).data
        image = await f.get(server.url("/echo-image"), expect="image")
    assert (seen["user-agent"], seen["x-probe"]) == ("sleuth-test/1", "1")
    assert "gzip" in seen["accept-encoding"]
    # Images do not compress: an image request asks for them as they are, and for images.
    assert image.headers["x-seen-accept-encoding"] == "identity"
    assert image.headers["x-seen-accept"].startswith("image/")


async def test_404_is_a_final_http_status(server: LocalServer) -> None:
    path = f"/status/404?k={key()}"
    async with fetcher(retries=2) as f:
        error = await fetch_error(f, server.url(path))
    assert (error.reason, error.status, error.retryable) == ("http_status", 404, False)
    assert server.stats.hits[path] == 1


async def test_persistent_500_is_retried_then_raised(server: LocalServer) -> None:
    path = f"/status/500?k={key()}"
    async with fetcher(retries=2) as f:
        error = await fetch_error(f, server.url(path))
    assert (error.reason, error.status, error.retryable) == ("http_status", 500, True)
    assert server.stats.hits[path] == 3


async def test_500_then_200_is_retried(server: LocalServer) -> None:
    path = f"/flaky/{key()}"
    async with fetcher(retries=1) as f:
        result = await f.get(server.url(path), expect="image")
    assert result.body == server.png
    assert server.stats.hits[path] == 2


async def test_429_retry_after_is_honoured(server: LocalServer) -> None:
    path = f"/ratelimited/{key()}?after=1"
    async with fetcher(retries=1) as f:
        result = await f.get(server.url(path))
    assert result.body == server.png
    assert server.stats.hits[path] == 2
    assert result.elapsed >= 0.9  # slept what the server asked, not the 0.01 s backoff


async def test_retry_after_beyond_the_cap_goes_back_to_the_caller(server: LocalServer) -> None:
    path = f"/ratelimited/{key()}?after=3600"
    async with fetcher(retries=3) as f:
        error = await fetch_error(f, server.url(path))
    assert (error.reason, error.status, error.retry_after) == ("http_status", 429, 3600.0)
    assert server.stats.hits[path] == 1  # no sleeping, no retry: the job layer reschedules


async def test_retry_after_survives_exhausted_retries(server: LocalServer) -> None:
    async with fetcher(retries=0) as f:
        error = await fetch_error(f, server.url(f"/status/503?retry_after=5&k={key()}"))
    assert (error.status, error.retry_after, error.retryable) == (503, 5.0, True)


async def test_redirect_chain_of_three(server: LocalServer) -> None:
    async with fetcher() as f:
        result = await f.get(server.url("/redirect/3"), expect="image")
    assert result.body == server.png
    assert result.final_url == server.url("/redirect/0")
    assert result.redirects == tuple(server.url(f"/redirect/{n}") for n in (3, 2, 1))


async def test_exactly_the_redirect_limit_is_allowed(server: LocalServer) -> None:
    async with fetcher(max_redirects=5) as f:
        result = await f.get(server.url("/redirect/5"))
    assert len(result.redirects) == 5


async def test_seven_redirects_exceed_the_limit(fresh_server: LocalServer) -> None:
    async with fetcher(max_redirects=5) as f:
        error = await fetch_error(f, fresh_server.url("/redirect/7"))
    assert error.reason == "too_many_redirects"
    assert "more than 5 times" in error.detail
    assert fresh_server.stats.hits["/redirect/2"] == 1
    assert fresh_server.stats.hits["/redirect/1"] == 0  # stopped at the hop over the limit


async def test_redirect_loop_is_detected(server: LocalServer) -> None:
    async with fetcher(max_redirects=20) as f:
        error = await fetch_error(f, server.url("/loop/a"))
    assert error.reason == "too_many_redirects"
    assert "redirect loop" in error.detail


async def test_broken_redirects(server: LocalServer) -> None:
    async with fetcher() as f:
        missing = await fetch_error(f, server.url("/no-location"))
        to_file = await fetch_error(f, server.url("/redirect-to?url=file:///etc/passwd"))
    assert missing.reason == "protocol"
    assert "without a Location" in missing.detail
    assert to_file.reason == "bad_url"
    assert "file is not http or https" in to_file.detail


async def test_credentials_do_not_follow_a_redirect_to_another_origin(
    server: LocalServer,
) -> None:
    secret = {"Authorization": "Bearer secret"}
    other = server.url("/echo", host="localhost")
    async with fetcher() as f:
        same = await f.get(server.url("/redirect-to?url=/echo"), headers=secret, expect="json")
        cross = await f.get(server.url(f"/redirect-to?url={other}"), headers=secret, expect="json")
    assert same.data["authorization"] == "Bearer secret"
    assert "authorization" not in cross.data


async def test_cookies_are_not_kept(server: LocalServer) -> None:
    async with fetcher() as f:
        await f.get(server.url("/set-cookie"))
        seen = (await f.get(server.url("/echo"), expect="json")).data
    assert "cookie" not in seen


async def test_chunked_body_over_the_cap(server: LocalServer) -> None:
    async with fetcher() as f:
        error = await fetch_error(f, server.url("/chunked-huge?size=20000000"), max_bytes=1_000_000)
    assert error.reason == "too_large"
    assert "more than the cap of 1000000 bytes" in error.detail


async def test_chunked_body_exactly_at_the_cap(server: LocalServer) -> None:
    async with fetcher() as f:
        result = await f.get(server.url("/chunked-huge?size=200000"), max_bytes=200_000)
    assert len(result.body) == 200_000


async def test_content_length_over_the_cap(server: LocalServer) -> None:
    async with fetcher(max_bytes=len(server.png)) as f:
        exact = await f.get(server.url("/image.png"))
        huge = await fetch_error(f, server.url("/big-length"))
        over = await fetch_error(f, server.url("/image.png"), max_bytes=len(server.png) - 1)
    assert exact.body == server.png
    assert (huge.reason, over.reason) == ("too_large", "too_large")
    assert "declares 1000000000 bytes" in huge.detail


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw-deflate"])
async def test_compressed_bodies_are_decoded(server: LocalServer, encoding: str) -> None:
    async with fetcher() as f:
        result = await f.get(server.url(f"/encoded/{encoding}"), expect="json")
    assert result.data == {"packed": True}


async def test_decompression_bomb_stops_at_the_cap(server: LocalServer) -> None:
    """50 MB of zeros gzip to about 50 KB; decoding stops at the 1 MB cap."""
    async with fetcher() as f:
        error = await fetch_error(
            f, server.url("/encoded/gzip?zeros=50000000"), max_bytes=1_000_000
        )
        exact = await f.get(server.url("/encoded/gzip?zeros=1000000"), max_bytes=1_000_000)
    assert error.reason == "too_large"
    assert exact.body == b"\0" * 1_000_000


async def test_broken_encodings(server: LocalServer) -> None:
    async with fetcher() as f:
        truncated = await fetch_error(f, server.url("/encoded/gzip?zeros=5000&cut=4"))
        unknown = await fetch_error(f, server.url("/encoded/br"))
    assert (truncated.reason, unknown.reason) == ("protocol", "protocol")
    assert "truncated" in truncated.detail
    assert "unsupported Content-Encoding 'br'" in unknown.detail


async def test_connections_are_kept_alive_across_redirects_and_errors(
    fresh_server: LocalServer,
) -> None:
    async with fetcher() as f:
        await f.get(fresh_server.url("/redirect/3"))
        await fetch_error(f, fresh_server.url("/status/404"))
        await f.get(fresh_server.url("/image.png"))
    assert sum(fresh_server.stats.hits.values()) == 6
    assert fresh_server.stats.connections == 1


async def test_slow_drip_hits_the_total_timeout(server: LocalServer) -> None:
    async with fetcher(total_timeout=1.0, read_timeout=5.0) as f:
        error = await fetch_error(f, server.url("/drip"))
    assert error.reason == "timeout"
    assert error.detail.startswith("total timeout")
    assert error.retryable


async def test_silent_server_hits_the_read_timeout(server: LocalServer) -> None:
    async with fetcher(read_timeout=0.3) as f:
        error = await fetch_error(f, server.url("/slow?delay=1.5"))
    assert error.reason == "timeout"
    assert error.detail.startswith("read timeout")


async def test_refused_connection(server: LocalServer) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with fetcher() as f:
        error = await fetch_error(f, f"http://127.0.0.1:{port}/x")
    assert error.reason == "connect"
    assert error.retryable


async def test_connection_closed_mid_body(server: LocalServer) -> None:
    async with fetcher() as f:
        error = await fetch_error(f, server.url("/cut"))
    assert error.reason == "protocol"
    assert "received 100 bytes, expected 1000" in error.detail


async def test_json_is_asked_for_and_parsed(server: LocalServer) -> None:
    async with fetcher() as f:
        data = (await f.get(server.url("/json"), expect="json")).data
        accept = (await f.get(server.url("/echo"), expect="json")).data["accept"]
        with pytest.raises(FetchError) as info:
            await f.get(server.url("/bad-json"), expect="json")
    assert data == {"items": [1, 2, 3], "next": None}
    assert accept == "application/json"
    assert info.value.reason == "bad_json"
    assert "/bad-json is not valid JSON" in info.value.detail


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("htp://x", "htp is not http or https"),
        ("http://", "has no host"),
        ("http://[::1", "malformed"),
        ("file:///etc/passwd", "file is not http or https"),
        ("javascript:alert(1)", "javascript is not http or https"),
        ("http://exa mple.test/", "is not a valid host name"),
        ("http://host.test:99999/", "port 99999 is out of range"),
        ("http://host.test/a\nb", "malformed"),
        ("", "no scheme is not http or https"),
        ("http://host.test/" + "a" * MAX_URL_LENGTH, f"over {MAX_URL_LENGTH}"),
    ],
)
async def test_malformed_urls_are_refused_before_any_network(url: str, why: str) -> None:
    async with Fetcher(BASE) as f:
        error = await fetch_error(f, url)
    assert error.reason == "bad_url"
    assert why in error.detail
    assert f.wait_time(url) == 0.0


def test_parse_url_normalises_what_it_accepts() -> None:
    assert str(parse_url("  HTTP://Example.COM:8080/a b ")) == "http://example.com:8080/a%20b"
    assert parse_url("http://exämple.com/").host == "exämple.com"
    assert parse_url("http://[::1]:81/").host == "::1"


def test_parse_retry_after() -> None:
    soon = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    past = format_datetime(datetime.now(UTC) - timedelta(seconds=120), usegmt=True)
    assert parse_retry_after("1") == 1.0
    assert parse_retry_after(" 2.5 ") == 2.5
    assert 100 < (parse_retry_after(soon) or 0) <= 120
    assert parse_retry_after(past) == 0.0
    for bad in (None, "", "-1", "nan", "inf", "soon"):
        assert parse_retry_after(bad) is None


async def test_private_addresses_follow_the_configuration(
    server: LocalServer, tmp_path: Path
) -> None:
    """`SLEUTH_NET_ALLOW_PRIVATE=1` reaches the fetcher through `load_settings`."""
    config = tmp_path / "sleuth.toml"
    config.write_text("")
    allowed = load_settings(config, environ={"SLEUTH_NET_ALLOW_PRIVATE": "1"}).net
    default = load_settings(config, environ={}).net
    async with Fetcher(allowed) as f:
        assert (await f.get(server.url("/image.png"))).body == server.png
    async with Fetcher(default) as f:
        assert (await fetch_error(f, server.url("/image.png"))).reason == "blocked_address"


async def test_closed_fetcher_refuses_work(server: LocalServer) -> None:
    f = fetcher()
    await f.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await f.get(server.url("/image.png"))


def test_guard_and_allow_private_are_not_both_given() -> None:
    from sleuth.net.guard import Guard

    with pytest.raises(ValueError, match="not both"):
        Fetcher(guard=Guard(), allow_private=True)
