"""The client every source uses, against a real loopback server: POST and HEAD, JSON and XML
bodies and their errors, per-source headers and tokens, conditional requests, source addresses,
429s never retried early, backoff on 5xx (the SSRF guard on every method: test_guard.py)."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace

import pytest

from sleuth.net.errors import ERROR_BODY_BYTES, FetchError
from sleuth.net.fetcher import Fetcher, SourceProfile, Validators
from tests.net.conftest import LOOPBACK, LocalServer, key, loopback_fetcher

pytestmark = pytest.mark.anyio

BASE = LOOPBACK
fetcher = loopback_fetcher


async def error_of(call: object) -> FetchError:
    with pytest.raises(FetchError) as info:
        await call  # type: ignore[misc]
    return info.value


async def test_post_sends_json_and_head_reads_no_body(server: LocalServer) -> None:
    async with fetcher() as f:
        posted = await f.post(server.url("/peer"), json={"q": "cats"}, expect="json")
        raw = await f.post(server.url("/peer"), content=b"a=1", headers={"Content-Type": "x/y"})
        head = await f.head(server.url("/image.png"))
    assert posted.method == "POST"
    assert posted.data["method"] == "POST" and posted.data["body"] == '{"q":"cats"}'
    assert posted.data["content-type"] == "application/json"
    assert b'"body": "a=1"' in raw.body
    assert (head.method, head.status, head.body, head.data) == ("HEAD", 200, b"", None)
    assert head.headers["content-length"] == str(len(server.png))


async def test_params_are_merged_into_the_query(server: LocalServer) -> None:
    async with fetcher() as f:
        result = await f.get(server.url("/peer?a=1"), params={"b": 2, "c": "x y"}, expect="json")
    assert result.data["query"] == {"a": "1", "b": "2", "c": "x y"}


async def test_programming_errors_are_refused_before_any_request(server: LocalServer) -> None:
    k = key()
    url = server.url(f"/peer?k={k}")
    async with fetcher() as f:
        with pytest.raises(ValueError, match="not both"):
            await f.post(url, json={}, content=b"")
        with pytest.raises(ValueError, match=r"expect must be one of .* not 'yaml'"):
            await f.get(url, expect="yaml")  # type: ignore[typeddict-item]
        with pytest.raises(ValueError, match=r"HTTP method must be one of .* not 'BREW'"):
            await f.request("brew", url)
        with pytest.raises(ValueError, match="max_bytes must not be negative"):
            await f.get(url, max_bytes=-1)
    assert f"peer:{k}" not in server.stats.arrivals


async def test_xml_is_parsed(server: LocalServer) -> None:
    async with fetcher() as f:
        result = await f.get(server.url("/xml/good"), expect="xml")
    forum = result.data
    assert (forum.tag, forum.get("id")) == ("forum", "7")
    assert [t.get("id") for t in forum] == ["1", "2"]
    assert forum[0].text == "Hello & welcome"


@pytest.mark.parametrize(
    "doc,why", [("broken", "mismatched tag"), ("bomb", "refused"), ("external", "refused")]
)
async def test_bad_and_hostile_xml_is_bad_xml(server: LocalServer, doc: str, why: str) -> None:
    async with fetcher() as f:
        error = await error_of(f.get(server.url(f"/xml/{doc}"), expect="xml"))
    assert error.reason == "bad_xml" and why in error.detail
    assert f"/xml/{doc} is not acceptable XML" in error.detail


async def test_bad_json_and_too_large_documents(server: LocalServer) -> None:
    async with fetcher() as f:
        bad = await error_of(f.get(server.url("/bad-json"), expect="json"))
        big = await error_of(f.get(server.url("/json"), expect="json", max_bytes=10))
    assert bad.reason == "bad_json" and "/bad-json is not valid JSON" in bad.detail
    assert big.reason == "too_large"


@pytest.mark.parametrize("encoding", ["identity", "gzip"])
async def test_an_error_answer_keeps_the_start_of_its_document(
    server: LocalServer, encoding: str
) -> None:
    async with fetcher() as f:
        small = await error_of(f.get(server.url(f"/error-doc/{encoding}"), expect="json"))
        big = await error_of(f.get(server.url(f"/error-doc/{encoding}?pad=100000")))
    assert (small.reason, small.status) == ("http_status", 400)
    assert json.loads(small.body)["error"] == "InvalidRequest"
    assert len(big.body) == ERROR_BODY_BYTES and big.body.startswith(b'{"error": "Invalid')


async def test_a_source_profile_sets_agent_headers_and_token(server: LocalServer) -> None:
    profile = SourceProfile(
        "x", user_agent="sleuth-x/1", headers={"X-Api": "2"}, bearer_token="sekrit"
    )
    assert "sekrit" not in repr(profile) and "X-Api" not in repr(profile)
    async with fetcher() as f:
        seen = (await f.get(server.url("/echo"), profile=profile, expect="json")).data
        other = server.url("/echo", host="localhost")
        moved = await f.get(server.url(f"/redirect-to?url={other}"), profile=profile, expect="json")
        error = await error_of(f.get(server.url("/status/403"), profile=profile))
    assert (seen["user-agent"], seen["x-api"]) == ("sleuth-x/1", "2")
    assert seen["authorization"] == "Bearer sekrit"
    assert "authorization" not in moved.data  # never to another origin
    assert "sekrit" not in str(error) and "sekrit" not in repr(error.args)


async def test_conditional_requests_report_not_modified(server: LocalServer) -> None:
    async with fetcher() as f:
        first = await f.get(server.url("/conditional"), expect="json")
        by_etag = await f.get(server.url("/conditional"), validators=first.validators)
        by_date = await f.get(
            server.url("/conditional?by=date"),
            validators=Validators(last_modified=first.validators.last_modified),
        )
        changed = await f.get(
            server.url("/conditional"), validators=Validators(etag='"v0"'), expect="json"
        )
    assert (first.not_modified, first.data) == (False, {"version": 1})
    assert first.validators == Validators('"v1"', "Tue, 01 Dec 2026 10:00:00 GMT")
    assert (by_etag.status, by_etag.not_modified, by_etag.body, by_etag.data) == (
        304,
        True,
        b"",
        None,
    )
    assert by_date.not_modified
    assert (changed.status, changed.data) == (200, {"version": 1})


async def test_requests_are_spread_over_the_source_addresses(server: LocalServer) -> None:
    """The whole of 127/8 is loopback on Linux: bound to 127.0.0.2 and 127.0.0.3, requests to
    127.0.0.1 arrive from those, in turn."""
    k = key()
    async with fetcher(source_addresses=("127.0.0.2", "127.0.0.3")) as f:
        results = [await f.get(server.url(f"/peer?k={k}"), expect="json") for _ in range(4)]
    peers = [r.data["peer"] for r in results]
    assert sorted(peers) == ["127.0.0.2", "127.0.0.2", "127.0.0.3", "127.0.0.3"]
    assert [r.source_address for r in results] == peers
    assert [p for p, _t in server.stats.arrivals[f"peer:{k}"]] == peers


async def test_each_source_address_has_its_own_budget(server: LocalServer) -> None:
    """A budget of 2 per address and hour: two addresses give four requests, then the client
    says when to come back instead of sending a fifth."""
    k = key()
    url = server.url(f"/budget/x/{k}?limit=2&window=3600")
    async with Fetcher(
        replace(BASE, source_addresses=("127.0.0.2", "127.0.0.3")),
        allow_private=True,
        max_retry_wait=5.0,
    ) as f:
        await f.get(url)
        await f.get(url)  # both budgets are known now
        await f.get(url)
        await f.get(url)
        error = await error_of(f.get(url))
        listing = {b.source: b for b in f.budgets.listing()}
    assert error.reason == "rate_limited" and (error.retry_after or 0) > 3000
    assert server.stats.refused[k] == 0 and len(server.stats.arrivals[k]) == 4
    assert sorted(p for p, _t in server.stats.arrivals[k]) == ["127.0.0.2"] * 2 + ["127.0.0.3"] * 2
    assert {s: (b.limit, b.remaining) for s, b in listing.items()} == {
        "127.0.0.2": (2, 0),
        "127.0.0.3": (2, 0),
    }


async def test_429_with_a_retry_after_date_is_not_retried_before_it(server: LocalServer) -> None:
    k = key()
    async with fetcher(retries=1) as f:
        result = await f.get(server.url(f"/retry-at/{k}/2"), expect="json")
    (_, first), (_, second) = server.stats.arrivals[k]
    allowed_at = server.stats.refused[k]
    assert result.status == 200
    assert first < allowed_at <= second  # the retry waited for the date the server named


async def test_429_with_retry_after_seconds_blocks_the_budget(server: LocalServer) -> None:
    k = key()
    url = server.url(f"/ratelimited/{k}?after=3600")
    async with fetcher(retries=3) as f:
        error = await error_of(f.get(url))
        again = await error_of(f.get(url))
        assert f.wait_time(url) > 3500
    assert (error.status, error.retry_after) == (429, 3600.0)
    assert again.reason == "rate_limited"  # the blocked budget sends nothing more
    assert server.stats.hits[f"/ratelimited/{k}?after=3600"] == 1


async def test_5xx_is_retried_with_growing_backoff(server: LocalServer) -> None:
    k = key()
    async with Fetcher(replace(BASE, retries=3), allow_private=True, backoff=0.2) as f:
        error = await error_of(f.get(server.url(f"/arrivals/{k}/502")))
    times = [t for _p, t in server.stats.arrivals[k]]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert (error.status, len(times)) == (502, 4)
    # Jittered between half and all of 0.2, 0.4, 0.8 s: each at least half its step.
    assert all(gap >= 0.2 * 2**i * 0.5 for i, gap in enumerate(gaps))


async def test_post_is_not_retried_after_a_5xx(server: LocalServer) -> None:
    k = key()
    async with fetcher(retries=3) as f:
        error = await error_of(f.post(server.url(f"/arrivals/{k}/500"), json={}))
    assert error.status == 500 and len(server.stats.arrivals[k]) == 1


async def test_303_after_post_becomes_a_get_without_the_body(server: LocalServer) -> None:
    async with fetcher() as f:
        moved = await f.post(
            server.url("/redirect-to?status=303&url=/peer"), json={"a": 1}, expect="json"
        )
        kept = await f.post(
            server.url("/redirect-to?status=307&url=/peer"), json={"a": 1}, expect="json"
        )
    assert (moved.data["method"], moved.data["body"], moved.data["content-type"]) == ("GET", "", "")
    assert (kept.data["method"], kept.data["body"]) == ("POST", '{"a":1}')


async def test_a_netpbm_image_is_fetched_as_an_image(server: LocalServer) -> None:
    async with fetcher() as f:
        result = await f.get(server.url("/image.ppm"), expect="image")
    assert (result.image_type, result.body) == ("ppm", server.ppm)
