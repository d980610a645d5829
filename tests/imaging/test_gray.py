"""Grayscale is exactly floor((R+G+B)/3): checked pixel by pixel in plain Python, on every one of
the 2**24 colours, on the corpus, and on random arrays (hypothesis)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from sleuth.imaging.gray import (
    _matrix_gray,
    gray_from_rgb_array,
    gray_image,
    matrix_gray_is_exact,
)
from tests.imaging import samples


def test_small_image_pixel_by_pixel() -> None:
    img = samples.photo((23, 17), seed=2)
    gray = gray_image(img)
    for y in range(img.height):
        for x in range(img.width):
            r, g, b = img.getpixel((x, y))
            assert gray.getpixel((x, y)) == (r + g + b) // 3


def test_not_pillow_luma() -> None:
    img = Image.new("RGB", (1, 1), (255, 0, 0))
    assert gray_image(img).getpixel((0, 0)) == 85  # BT.601 luma would give 76


def test_every_colour() -> None:
    """All 2**24 colours through both implementations, a quarter at a time (~1 s)."""
    assert matrix_gray_is_exact()
    g, b = np.meshgrid(np.arange(256, dtype=np.uint16), np.arange(256, dtype=np.uint16))
    for quarter in range(4):
        reds = np.arange(quarter * 64, quarter * 64 + 64, dtype=np.uint16)
        rgb = np.empty((64, 256, 256, 3), np.uint8)
        rgb[..., 0] = reds[:, None, None]
        rgb[..., 1] = g
        rgb[..., 2] = b
        expected = ((reds[:, None, None] + g + b) // 3).astype(np.uint8).reshape(-1, 256)
        rgb = rgb.reshape(-1, 256, 3)
        assert np.array_equal(gray_from_rgb_array(rgb), expected)
        assert np.array_equal(np.asarray(_matrix_gray(Image.fromarray(rgb, "RGB"))), expected)


@pytest.mark.parametrize(
    "name,data", samples.corpus()[:12], ids=[n for n, _ in samples.corpus()[:12]]
)
def test_corpus_images(name: str, data: bytes) -> None:
    rgb = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    expected = (rgb.astype(np.int32).sum(axis=2) // 3).astype(np.uint8)
    img = Image.open(io.BytesIO(data))
    assert np.array_equal(np.asarray(gray_image(img)), expected)
    assert np.array_equal(gray_from_rgb_array(rgb), expected)


@settings(max_examples=200, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 300), st.integers(1, 40), st.just(3))))
def test_random_arrays(rgb: np.ndarray) -> None:
    expected = (rgb.astype(np.int64).sum(axis=2) // 3).astype(np.uint8)
    assert np.array_equal(gray_from_rgb_array(rgb), expected)
    assert np.array_equal(np.asarray(gray_image(Image.fromarray(rgb, "RGB"))), expected)


def test_rejects_wrong_shapes() -> None:
    with pytest.raises(ValueError):
        gray_from_rgb_array(np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError):
        gray_from_rgb_array(np.zeros((4, 4, 3), np.uint16))
