"""The world generator: pure functions of (seed, parameters), photo-like JPEG sizes, the LRU."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from sleuth.emulator.world import ByteLRU, photo, photo_jpeg


def test_photo_is_rgb_of_the_requested_size() -> None:
    image = photo(0, 1, 123, 45)
    assert (image.mode, image.size) == ("RGB", (123, 45))


def test_same_parameters_give_the_same_bytes() -> None:
    assert photo_jpeg(3, 7, 200, 150) == photo_jpeg(3, 7, 200, 150)
    assert photo(3, 7, 64, 48).tobytes() == photo(3, 7, 64, 48).tobytes()


def test_seed_id_and_size_each_change_the_picture() -> None:
    base = photo_jpeg(0, 1, 200, 150)
    assert photo_jpeg(1, 1, 200, 150) != base
    assert photo_jpeg(0, 2, 200, 150) != base
    assert photo_jpeg(0, 1, 201, 150) != base


def test_one_scene_at_two_sizes_is_the_same_picture_resized() -> None:
    """Like an image host resizing one photo: the small one matches the big one scaled down."""
    big = np.asarray(photo(0, 5, 400, 300).resize((100, 75), Image.Resampling.BOX), np.float32)
    small = np.asarray(photo(0, 5, 100, 75), np.float32)
    other = np.asarray(photo(0, 6, 100, 75), np.float32)
    assert np.abs(big - small).mean() < 12
    assert np.abs(other - small).mean() > 2 * np.abs(big - small).mean()


def test_jpeg_weighs_like_a_camera_photo_at_1024x768() -> None:
    sizes = [len(photo_jpeg(0, image_id, 1024, 768)) for image_id in range(3)]
    assert all(150_000 <= size <= 250_000 for size in sizes), sizes
    decoded = Image.open(io.BytesIO(photo_jpeg(0, 0, 1024, 768)))
    assert (decoded.format, decoded.mode, decoded.size) == ("JPEG", "RGB", (1024, 768))


def test_tiny_and_thin_sizes_work() -> None:
    for width, height in ((1, 1), (1, 2), (500, 1), (3, 700)):
        assert Image.open(io.BytesIO(photo_jpeg(0, 0, width, height))).size == (width, height)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((-1, 0, 10, 10), "seed"),
        ((0, -5, 10, 10), "image_id"),
        ((0, 0, 0, 10), "width"),
        ((0, 0, 10, -1), "height"),
        ((0, 0, 10.5, 10), "width"),
    ],
)
def test_bad_parameters_are_refused_with_the_reason(
    args: tuple[int, int, int, int], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        photo(*args)


def test_jpeg_quality_is_checked() -> None:
    with pytest.raises(ValueError, match="quality"):
        photo_jpeg(0, 0, 10, 10, quality=0)


def test_lru_is_bounded_by_bytes_and_evicts_the_least_recently_used() -> None:
    cache = ByteLRU(max_bytes=10)
    cache.put("a", b"1234")
    cache.put("b", b"1234")
    assert cache.get("a") == b"1234"  # "a" is now the most recent
    cache.put("c", b"1234")
    assert cache.get("b") is None
    assert (cache.get("a"), cache.get("c")) == (b"1234", b"1234")
    assert cache.size_bytes == 8
    cache.put("huge", b"x" * 11)  # above the bound: not kept, nothing evicted
    assert cache.get("huge") is None
    assert len(cache) == 2


def test_lru_get_or_make_makes_once() -> None:
    cache = ByteLRU(max_bytes=100)
    calls: list[int] = []

    def make() -> bytes:
        calls.append(1)
        return b"value"

    assert cache.get_or_make("k", make) == cache.get_or_make("k", make) == b"value"
    assert len(calls) == 1
    with pytest.raises(ValueError, match="max_bytes"):
        ByteLRU(-1)
