"""The forum connectors' parsers on recorded Discourse responses and on refusals."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from sleuth.sources.bbxml import parse_board, parse_thread, xml_base
from sleuth.sources.discourse import (
    forum_base,
    parse_post,
    parse_topic,
    parse_topic_list,
    profile,
)
from sleuth.sources.forumtypes import ForumFormatError

_ROOT = Path(__file__).resolve().parents[2]
RECORDED = _ROOT / "tests" / "fixtures" / "real" / "discourse"  # recorded real responses
pytestmark = pytest.mark.skipif(not RECORDED.exists(), reason="the recorded responses are absent")


def _recorded(name: str) -> Any:
    return json.loads((RECORDED / name).read_text())


def test_recorded_latest_topics() -> None:
    listing = parse_topic_list(_recorded("topics/latest_topics_response.json"))
    assert [t.topic_id for t in listing.topics] == [13, 12, 8]
    first = listing.topics[0]
    assert (first.board_id, first.posts_count, first.user_id) == (1, 1, 1)
    assert first.last_posted_at == pytest.approx(1477750460.516)
    assert not listing.more
    assert {u.name for u in listing.users} == {"discourse1", "system"}


def test_recorded_topic_and_post() -> None:
    page = parse_topic(_recorded("topics/topic_response.json"))
    assert (page.topic.topic_id, page.topic.board_id, page.stream) == (13, 5, [16])
    assert page.topic.last_posted_at is None  # the recording has none
    post = page.posts[0]
    assert (post.post_id, post.number, post.user.name, post.edit_count) == (16, 1, "discourse1", 0)
    assert post.raw == "" and post.cooked.startswith("<p>")
    single = parse_post(_recorded("posts/get_post_response.json"))
    assert single.raw.startswith("b15bd65a") and single.topic_id == 8 and single.number == 4


def test_malformed_documents_are_refused_with_a_reason() -> None:
    with pytest.raises(ForumFormatError, match="'topic_list'"):
        parse_topic_list({"users": []})
    broken = _recorded("posts/get_post_response.json") | {"created_at": "yesterday"}
    with pytest.raises(ForumFormatError, match="not an ISO 8601 time"):
        parse_post(broken)
    with pytest.raises(ForumFormatError, match="<invalid-board>"):
        parse_board(ET.fromstring('<invalid-board id="9"/>'), 9)
    with pytest.raises(ForumFormatError, match="<invalid-thread>"):
        parse_thread(ET.fromstring('<invalid-thread id="9"/>'), 9)


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("https://meta.example/t/some-topic/123", "https://meta.example"),
        ("https://meta.example/", "https://meta.example"),
        ("https://meta.example/c/support/7", "https://meta.example"),
        ("http://127.0.0.1:8000/discourse/main/latest", "http://127.0.0.1:8000/discourse/main"),
    ],
)
def test_forum_base(url: str, base: str) -> None:
    assert forum_base(url) == base


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("https://forum.mods.de/bb/", "https://forum.mods.de/bb/xml"),
        ("https://forum.mods.de/bb/xml/board.php?BID=14", "https://forum.mods.de/bb/xml"),
        ("http://127.0.0.1:8000/bb/main", "http://127.0.0.1:8000/bb/main/xml"),
    ],
)
def test_xml_base(url: str, base: str) -> None:
    assert xml_base(url) == base
    with pytest.raises(ValueError, match="not a forum URL"):
        xml_base("ftp://x")


def test_the_discourse_pace_stays_under_its_default_limits() -> None:
    gap = profile().min_interval
    assert 60 / gap < 200 and 10 / gap < 50  # requests a minute, and in 10 seconds
    assert 60 / gap > 0.98 * 200  # and close to the ceiling
    assert profile(0).min_interval == 0.0
