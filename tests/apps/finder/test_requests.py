"""The request store: statuses only move forward, a request ends once, finished requests
are kept as long as AOTF kept them, and results come in AOTF's order."""

from __future__ import annotations

from sleuth.apps.finder import requests as reqs
from sleuth.services import Services

URL = "https://www.pixiv.net/artworks/82699500"


def open_query(services: Services, now: float, url: str = URL) -> reqs.FinderRequest:
    found, _ = reqs.open_request(
        services.engine, reqs.query_id(url), "query", "192.0.2.1", now, url=url
    )
    assert found is not None
    return found


def test_a_status_moves_forward_only_and_a_request_ends_once(services: Services) -> None:
    engine = services.engine
    request = open_query(services, 10.0)
    account = reqs.Account("mastodon", "1", "artist@mastodon.example", "https://m.example/@a")
    assert reqs.advance(engine, request.id, reqs.INDEX, 11.0, accounts=[account])
    assert not reqs.advance(engine, request.id, reqs.LINK_FINDER, 12.0)  # never back
    result = reqs.Result("mastodon", "99", "1", "https://m.example/@a/99", 2, 3, 4)
    assert reqs.finish(engine, request.id, 13.0, results=[result])
    assert not reqs.finish(engine, request.id, 14.0, error="PROCESSING_ERROR")
    with engine.connect() as conn:
        done = reqs.get(conn, request.id, 15.0)
    assert done is not None
    assert done.aotf() == {
        "status": "END",
        "has_first_time_scan": False,
        "twitter_accounts": [account.aotf()],
        "results": [result.aotf()],
        "error": None,
    }
    assert done.results[0]["image_position"] == "2/3" and done.results[0]["tweet_id"] == "99"


def test_finished_requests_are_kept_for_aotf_s_times_then_start_afresh(
    services: Services,
) -> None:
    engine = services.engine
    cases = [(None, 3 * 3600.0), ("PROCESSING_ERROR", 3600.0), ("NOT_AN_ARTWORK_PAGE", 600.0)]
    for n, (error, keep) in enumerate(cases):
        request = open_query(services, 0.0, f"{URL}?{n}")
        reqs.finish(engine, request.id, 100.0, error=error)
        with engine.connect() as conn:
            assert reqs.get(conn, request.id, 100.0 + keep - 1) is not None
            assert reqs.get(conn, request.id, 100.0 + keep) is None
    again, created = reqs.open_request(
        engine, reqs.query_id(f"{URL}?2"), "query", "192.0.2.1", 100.0 + 600.0, url=f"{URL}?2"
    )
    assert created and again is not None and again.status == reqs.WAIT_LINK_FINDER
    assert reqs.purge(engine, 100.0 + 3 * 3600.0) == 2  # the other two; the new one stays


def test_results_sort_by_distance_then_images_in_the_post_then_post_id() -> None:
    def r(post: str, images: int, distance: int) -> reqs.Result:
        return reqs.Result("x", post, "1", f"https://x.com/a/status/{post}", 1, images, distance)

    found = reqs.sort_results([r("100", 2, 3), r("99", 1, 3), r("7", 1, 0), r("1000", 1, 3)])
    assert [x.post_id for x in found] == ["7", "99", "1000", "100"]


def test_an_unknown_error_code_is_refused(services: Services) -> None:
    import pytest

    request = open_query(services, 0.0)
    with pytest.raises(ValueError, match="unknown error code"):
        reqs.finish(services.engine, request.id, 1.0, error="OOPS")
