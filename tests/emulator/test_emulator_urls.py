"""Seed-shaped URL lists and their expected outcomes, checked against a real crawl of the host."""

from __future__ import annotations

import hashlib
import io
import re
from collections import Counter

import httpx
import pytest
from PIL import Image

from sleuth.emulator.urls import PHOTO_SIZES, expected_outcomes, seed_shaped_urls
from tests.patience import PATIENCE

BASE = "http://127.0.0.1:8000"


def _paths(lines: list[str]) -> list[str]:
    return [line.removeprefix(BASE) for line in lines]


def test_default_shape_is_the_seed_list() -> None:
    lines = list(seed_shaped_urls(BASE))
    assert len(lines) == 650
    assert all(line.startswith(BASE + "/") for line in lines)
    counts = Counter(_paths(lines))
    assert counts.pop("/error/100") == 50
    oversized = {path for path in counts if re.fullmatch(r"/\d+000000/\d+00000", path)}
    assert oversized == {f"/{n}000000/{n}00000" for n in range(1, 100, 2)}
    for path in oversized:
        assert counts.pop(path) == 1
    assert set(counts) == {f"/{w}/{w + 1}" for w in range(1, 501)}
    assert Counter(counts.values()) == {1: 453, 2: 44, 3: 3}


def test_default_shape_expected_outcomes() -> None:
    lines = list(seed_shaped_urls(BASE))
    assert expected_outcomes(lines) == {"success": 500, "duplicate": 50, "error": 100}


def test_order_is_shuffled_and_seeded() -> None:
    first = list(seed_shaped_urls(BASE, seed=0))
    assert first == list(seed_shaped_urls(BASE, seed=0))
    assert first != list(seed_shaped_urls(BASE, seed=1))
    assert set(first) == set(seed_shaped_urls(BASE, seed=1))
    assert _paths(first[:500]) != [f"/{w}/{w + 1}" for w in range(1, 501)]


@pytest.mark.parametrize("count", [650, 1000, 6500])
def test_longer_lists_keep_the_proportions(count: int) -> None:
    lines = list(seed_shaped_urls(BASE, count=count, seed=3))
    assert len(lines) == count
    share = round(count / 13)
    assert expected_outcomes(lines) == {
        "success": count - 3 * share,
        "duplicate": share,
        "error": 2 * share,
    }
    paths = _paths(lines)
    assert paths.count("/error/100") == share
    valid = [path for path in paths if path.startswith("/id/")]
    sizes = Counter(tuple(int(part) for part in path.split("/")[3:]) for path in set(valid))
    assert set(sizes) <= {(w, h) for w, h, _ in PHOTO_SIZES}
    assert sizes.most_common(1)[0][0] == (1024, 768)


def test_tiny_counts_work() -> None:
    for count in range(1, 30):
        lines = list(seed_shaped_urls(BASE, count=count))
        assert len(lines) == count
        assert sum(expected_outcomes(lines).values()) == count


def test_expected_outcomes_rules() -> None:
    lines = [
        "/10/10",
        "/10/10.jpg",  # the same image as /10/10
        "/10",  # the square: the same image again
        "/id/1/10/10",
        "/id/1/10/10.webp",  # another format: other bytes
        "/9000/1",
        "/error/100",
        "/error/200",
        "",
        "http://other.example/10/11?x=1",
    ]
    assert expected_outcomes(lines) == {"success": 4, "duplicate": 2, "error": 3}
    with pytest.raises(ValueError, match="hostile"):
        expected_outcomes(["/hostile/bomb"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"base_url": "127.0.0.1:8000"}, "base_url"),
        ({"base_url": "ftp://x"}, "base_url"),
        ({"base_url": BASE, "count": 0}, "count"),
        ({"base_url": BASE, "seed": -1}, "seed"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        list(seed_shaped_urls(**kwargs))


def test_a_real_crawl_of_the_seed_list_matches_the_expected_outcomes(imagehost_url: str) -> None:
    """Fetch every line as image_crawler did: MD5 of the bytes, once per MD5."""
    lines = list(seed_shaped_urls(imagehost_url))
    seen: set[str] = set()
    outcomes = Counter[str]()
    with httpx.Client(timeout=PATIENCE) as http:
        for url in lines:
            response = http.get(url)
            if response.status_code != 200:
                outcomes["error"] += 1
                continue
            width, height = (int(part) for part in url.rsplit("/", 2)[1:])
            assert Image.open(io.BytesIO(response.content)).size == (width, height)
            md5 = hashlib.md5(response.content).hexdigest()
            outcomes["duplicate" if md5 in seen else "success"] += 1
            seen.add(md5)
    assert (
        dict(outcomes)
        == expected_outcomes(lines)
        == {
            "success": 500,
            "duplicate": 50,
            "error": 100,
        }
    )
