"""The emulated Discourse over loopback: shapes as recorded, paging, streams, per-IP limits."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sleuth.emulator import EmulatorServer, create_imagehost_app
from sleuth.emulator.discourse import IpRateLimiter
from sleuth.emulator.forums import Forum, Forums
from tests.patience import PATIENCE

_ROOT = Path(__file__).resolve().parents[2]
RECORDED = _ROOT / "tests" / "fixtures" / "real" / "discourse"  # recorded real responses


class FrozenClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def forums() -> Forums:
    return Forums({"main": Forum(0, 1500)}, rate_limits=False)


@pytest.fixture(scope="module")
def http(forums: Forums) -> Iterator[httpx.Client]:
    with (
        EmulatorServer(create_imagehost_app(seed=0, forums=forums)) as url,
        httpx.Client(base_url=f"{url}/discourse/main", timeout=PATIENCE) as client,
    ):
        yield client


def _recorded(name: str) -> Any:
    return json.loads((RECORDED / name).read_text())


def _same_shape(ours: Any, recorded: Any, where: str = "") -> None:
    """Every key the recording has, ours has, with the same JSON type (null matches any)."""
    if isinstance(recorded, dict):
        assert isinstance(ours, dict), where
        missing = set(recorded) - set(ours) - {"details", "excerpt", "timeline_lookup"}
        assert not missing, f"{where}: missing {sorted(missing)}"
        for key, value in recorded.items():
            if key in ours and key not in ("details",):
                _same_shape(ours[key], value, f"{where}.{key}")
    elif isinstance(recorded, list):
        assert isinstance(ours, list), where
        if recorded and ours and not isinstance(recorded[0], list):
            _same_shape(ours[0], recorded[0], f"{where}[0]")
    elif recorded is not None and ours is not None:
        kind = float if isinstance(recorded, float) else type(recorded)
        assert isinstance(ours, kind), f"{where}: {ours!r} is not like {recorded!r}"


@pytest.mark.skipif(not RECORDED.exists(), reason="the recorded responses are not here")
def test_shapes_match_the_recorded_responses(http: httpx.Client) -> None:
    latest = http.get("/latest.json").json()
    _same_shape(latest, _recorded("topics/latest_topics_response.json"), "latest")
    topic_id = latest["topic_list"]["topics"][0]["id"]
    topic = http.get(f"/t/{topic_id}.json").json()
    _same_shape(topic, _recorded("topics/topic_response.json"), "topic")
    post_id = topic["post_stream"]["stream"][0]
    post = http.get(f"/posts/{post_id}.json").json()
    _same_shape(post, _recorded("posts/get_post_response.json"), "post")
    category = http.get("/categories.json").json()["category_list"]["categories"][0]
    recorded = _recorded("categories/update_category_response.json")["category"]
    listed = ("id", "name", "color", "text_color", "slug", "topic_count", "post_count")
    _same_shape(category, {k: recorded[k] for k in (*listed, "position", "description")})


def test_latest_pages_list_every_topic_once_by_bump(http: httpx.Client, forums: Forums) -> None:
    forum = forums.get("main")
    assert forum is not None
    seen: list[dict[str, Any]] = []
    page = 0
    while True:
        listing = http.get("/latest.json", params={"page": page}).json()["topic_list"]
        assert listing["per_page"] == 30
        seen.extend(listing["topics"])
        if "more_topics_url" not in listing:
            break
        assert listing["more_topics_url"] == f"/latest?page={page + 1}"
        assert len(listing["topics"]) == 30
        page += 1
    assert len({t["id"] for t in seen}) == len(seen) == forum.topic_count()
    bumps = [t["bumped_at"] for t in seen]
    assert bumps == sorted(bumps, reverse=True)
    assert sum(t["posts_count"] for t in seen) == forum.ground_truth().posts


def test_categories_and_their_topic_lists(http: httpx.Client, forums: Forums) -> None:
    truth = forums.get("main").ground_truth()  # type: ignore[union-attr]
    categories = http.get("/categories.json").json()["category_list"]["categories"]
    for category in categories:
        assert category["post_count"] == truth.posts_by_board[category["id"]]
        first = http.get(f"/c/{category['slug']}/{category['id']}.json").json()["topic_list"]
        assert {t["category_id"] for t in first["topics"]} == {category["id"]}
        if category["topic_count"] > 30:
            assert first["more_topics_url"] == f"/c/{category['slug']}/{category['id']}?page=1"
    assert http.get("/c/none/999.json").status_code == 404


def test_topic_stream_and_posts_by_id_with_raw(http: httpx.Client, forums: Forums) -> None:
    forum = forums.get("main")
    assert forum is not None
    big = next(t for t in forum.topics_by_activity() if t.count > 45)
    topic = http.get(f"/t/{big.id}.json").json()
    stream = topic["post_stream"]["stream"]
    assert len(stream) == big.count == topic["posts_count"] and topic["chunk_size"] == 20
    assert [p["id"] for p in topic["post_stream"]["posts"]] == stream[:20]
    assert "raw" not in topic["post_stream"]["posts"][0]
    rest = stream[20:40]
    answer = http.get(
        f"/t/{big.id}/posts.json",
        params=[("post_ids[]", str(i)) for i in rest] + [("include_raw", "true")],
    ).json()
    posts = answer["post_stream"]["posts"]
    assert [p["id"] for p in posts] == rest
    assert [p["post_number"] for p in posts] == list(range(21, 41))
    assert all(p["raw"] and p["cooked"].startswith(("<p>", "<aside")) for p in posts)
    quoting = next(p for p in forum.posts(big) if p.quotes)
    text = http.get(f"/raw/{big.id}/{quoting.number}").text
    q = quoting.quotes[0]
    assert text.startswith(f'[quote="{q.name}, post:{q.number}, topic:{big.id}"]')
    near = http.get(f"/t/{big.id}/30.json").json()
    assert [p["post_number"] for p in near["post_stream"]["posts"]] == list(range(25, 45))
    assert near["post_stream"]["stream"] == stream
    assert http.get(f"/t/{forum.topic_count() + 5}.json").status_code == 404
    assert (
        http.get("/t/1/posts.json", params={"post_ids[]": str(stream[0])}).json()["post_stream"][
            "posts"
        ]
        == []
    )  # another topic's post is not this topic's


def test_the_clock_bumps_topics(http: httpx.Client, forums: Forums) -> None:
    forum = forums.get("main")
    assert forum is not None
    before = http.get("/latest.json").json()["topic_list"]["topics"][0]
    forum.advance(86400 * 30)
    after = http.get("/latest.json").json()["topic_list"]["topics"][0]
    assert after["bumped_at"] > before["bumped_at"]


def test_per_ip_limits_answer_429_as_discourse_does() -> None:
    clock = FrozenClock()
    forums = Forums({"main": Forum(0, 100)}, clock=clock)
    with (
        EmulatorServer(create_imagehost_app(seed=0, forums=forums)) as url,
        httpx.Client(base_url=f"{url}/discourse/main", timeout=PATIENCE) as http,
    ):
        for _ in range(50):
            assert http.get("/latest.json").status_code == 200
        refused = http.get("/latest.json")
        assert refused.status_code == 429
        assert refused.headers["content-type"].startswith("text/plain")
        assert refused.headers["Retry-After"] == "10"
        assert refused.headers["Discourse-Rate-Limit-Error-Code"] == "ip_10_secs_limit"
        assert refused.text.startswith("Slow down, too many requests from this IP address")
        assert forums.requests[("discourse", "main")] == 50  # refused ones are not counted
        clock.now += 10.5
        assert http.get("/latest.json").status_code == 200


def test_the_minute_limit() -> None:
    clock = FrozenClock()
    limiter = IpRateLimiter(clock=clock)
    for _ in range(4):
        for _ in range(50):
            assert limiter.check("127.0.0.1") is None
        assert limiter.check("127.0.0.1") == (10, "ip_10_secs_limit")
        assert limiter.check("127.0.0.2") is None  # per IP
        clock.now += 10.0
    assert limiter.check("127.0.0.1") == (20, "ip_60_secs_limit")
    clock.now += 20.0
    assert limiter.check("127.0.0.1") is None
