"""The stored gray container round-trips exactly and refuses anything malformed; PNG and
previews carry the same pixels."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from sleuth.imaging.encode import (
    HEADER,
    gray_png,
    pack_gray,
    thumbnail_jpeg,
    thumbnail_png,
    unpack_gray,
)
from sleuth.imaging.errors import ImageError
from tests.imaging import samples


@settings(max_examples=150, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 60), st.integers(1, 60))))
def test_round_trip(gray: np.ndarray) -> None:
    h, w = gray.shape
    width, height, back = unpack_gray(pack_gray(w, h, gray))
    assert (width, height) == (w, h)
    assert np.array_equal(back, gray)
    assert np.array_equal(unpack_gray(pack_gray(w, h, gray.tobytes()))[2], gray)


def test_photo_round_trip_and_size() -> None:
    gray = np.asarray(samples.photo((640, 480)).convert("L"))
    packed = pack_gray(640, 480, gray)
    assert packed[:4] == b"SLGR"
    assert len(packed) < gray.size
    assert np.array_equal(unpack_gray(packed)[2], gray)


def test_pack_validates_its_input() -> None:
    with pytest.raises(ValueError):
        pack_gray(4, 4, np.zeros((4, 5), np.uint8))
    with pytest.raises(ValueError):
        pack_gray(4, 4, b"\x00" * 15)
    with pytest.raises(ValueError):
        pack_gray(0, 4, b"")
    with pytest.raises(ValueError):
        pack_gray(2, 2, np.zeros((2, 2), np.uint16))


def bad(data: bytes, max_pixels: int | None = None) -> str:
    with pytest.raises(ImageError) as info:
        unpack_gray(data, max_pixels)
    assert info.value.reason == "bad_blob"
    return info.value.detail


def test_unpack_refuses_malformed_blobs() -> None:
    gray = np.arange(12 * 10, dtype=np.uint8).reshape(10, 12)
    good = pack_gray(12, 10, gray)
    payload = good[HEADER.size :]
    assert "shorter" in bad(good[:10])
    assert "magic" in bad(b"PNG!" + good[4:])
    assert "version" in bad(good[:4] + b"\x09" + good[5:])
    assert "filter" in bad(good[:5] + b"\x07" + good[6:])
    assert "empty" in bad(HEADER.pack(b"SLGR", 1, 1, 0, 0, 10) + payload)
    # a header that lies about the size, in both directions
    assert "declares" in bad(HEADER.pack(b"SLGR", 1, 1, 0, 12, 11) + payload)
    assert "declares" in bad(HEADER.pack(b"SLGR", 1, 1, 0, 6, 10) + payload)
    assert "zstd" in bad(good[: HEADER.size] + b"not zstd at all")
    assert "corrupt" in bad(good[:-3])
    assert "over" in bad(good, max_pixels=100)


def test_decompression_bomb_blob_is_refused_before_inflating() -> None:
    huge = zstandard.ZstdCompressor(level=1).compress(b"\x00" * 50_000_000)
    blob = struct.pack(">4sBBHII", b"SLGR", 1, 0, 0, 10, 10) + huge
    assert "declares" in bad(blob)


def test_gray_png_is_lossless() -> None:
    gray = np.asarray(samples.photo((90, 70)).convert("L"))
    for source in (gray, pack_gray(90, 70, gray), Image.fromarray(gray, "L")):
        png = Image.open(io.BytesIO(gray_png(source)))
        assert png.format == "PNG" and png.mode == "L"
        assert np.array_equal(np.asarray(png), gray)


def test_previews() -> None:
    gray = np.asarray(samples.photo((400, 100)).convert("L"))
    packed = pack_gray(400, 100, gray)
    png = Image.open(io.BytesIO(thumbnail_png(packed, max_side=128)))
    jpeg = Image.open(io.BytesIO(thumbnail_jpeg(gray, max_side=128)))
    assert png.size == (128, 32) and jpeg.size == (128, 32)
    assert png.mode == "L" and jpeg.format == "JPEG"
    small = Image.open(io.BytesIO(thumbnail_png(packed, max_side=1000)))
    assert small.size == (400, 100)  # never enlarged
    with pytest.raises(ValueError):
        thumbnail_png(packed, max_side=0)
    with pytest.raises(ValueError):
        gray_png(Image.new("RGB", (2, 2)))
