"""pHash: bit-identical to imagehash.phash on the whole corpus and on hostile inputs; the fast
32x32 resize equals Pillow's; the DCT shortcut falls back where rounding could decide a bit."""

from __future__ import annotations

import io

import imagehash
import numpy as np
import pytest
import scipy.fftpack
from PIL import Image

from sleuth.imaging import lanczos
from sleuth.imaging.errors import ImageError
from sleuth.imaging.hashes import phash_from_hex, phash_hex
from sleuth.imaging.phash import hash_from_pixels, phash_bytes, phash_from_image
from tests.imaging import samples

MAX = 64_000_000


def reference(data: bytes) -> str:
    return str(imagehash.phash(Image.open(io.BytesIO(data))))


@pytest.mark.parametrize("name,data", samples.corpus(), ids=[n for n, _ in samples.corpus()])
def test_corpus_matches_imagehash(name: str, data: bytes) -> None:
    assert phash_hex(phash_bytes(data, MAX)) == reference(data)


@pytest.mark.parametrize("name,data", samples.hostile(), ids=[n for n, _ in samples.hostile()])
def test_hostile_matches_imagehash(name: str, data: bytes) -> None:
    assert phash_hex(phash_bytes(data, MAX)) == reference(data)


def test_from_decoded_image_matches_imagehash() -> None:
    _, data = samples.corpus()[0]
    img = Image.open(io.BytesIO(data))
    img.load()
    assert phash_hex(phash_from_image(img)) == str(imagehash.phash(img))


def test_hex_round_trip_and_bit_order() -> None:
    bits = np.zeros((8, 8), bool)
    bits[0, 0] = True  # imagehash: first (top-left) coefficient is the most significant bit
    bits[7, 7] = True
    text = str(imagehash.ImageHash(bits))
    assert text == "8000000000000001"
    assert phash_from_hex(text) == (1 << 63) | 1
    assert phash_hex((1 << 63) | 1) == text
    with pytest.raises(ValueError):
        phash_hex(1 << 64)
    with pytest.raises(ValueError):
        phash_hex(-1)
    with pytest.raises(ValueError):
        phash_from_hex("abc")


def scipy_hash(pixels: np.ndarray) -> int:
    dct = scipy.fftpack.dct(scipy.fftpack.dct(pixels, axis=0), axis=1)[:8, :8]
    return int("".join("1" if b else "0" for b in (dct > np.median(dct)).ravel()), 2)


@pytest.mark.parametrize("value", [0, 1, 77, 128, 254, 255])
def test_flat_input_takes_the_exact_path(value: int) -> None:
    # every AC coefficient is float noise around 0: only scipy's own rounding gives its bits
    pixels = np.full((32, 32), value, np.uint8)
    assert hash_from_pixels(pixels) == scipy_hash(pixels)


def test_random_and_symmetric_32x32_inputs() -> None:
    rng = np.random.default_rng(11)
    for i in range(300):
        pixels = rng.integers(0, 256, (32, 32), dtype=np.uint8)
        if i % 3 == 1:
            pixels = np.minimum(pixels, pixels.T)
        elif i % 3 == 2:
            pixels[:, 16:] = pixels[:, 15::-1]
        assert hash_from_pixels(pixels) == scipy_hash(pixels)


def pillow_32(pixels: np.ndarray) -> np.ndarray:
    img = Image.fromarray(pixels, "L")
    return np.asarray(img.resize((32, 32), Image.Resampling.LANCZOS))


def test_fast_resize_equals_pillow_on_random_sizes() -> None:
    rng = np.random.default_rng(12)
    for i in range(60):
        w = int(rng.integers(33, 700))
        h = int(rng.integers(33, 700)) if i % 2 else max(33, 2 * w - 31 + int(rng.integers(-2, 2)))
        if i % 3 == 0:
            pixels = rng.integers(0, 256, (h, w), dtype=np.uint8)
        elif i % 3 == 1:
            pixels = (rng.integers(0, 2, (h, w)) * 255).astype(np.uint8)
        else:
            pixels = np.repeat(np.linspace(0, 255, w).astype(np.uint8)[None], h, 0)
        assert np.array_equal(lanczos._resize(pixels), pillow_32(pixels)), (w, h)


@pytest.mark.parametrize("width", [33, 100, 257, 640])
def test_pass_order_threshold(width: int) -> None:
    """Pillow switches to vertical-first exactly at height = 2 * width - 31."""
    rng = np.random.default_rng(width)
    for height in (2 * width - 32, 2 * width - 31):
        pixels = rng.integers(0, 256, (height, width), dtype=np.uint8)
        assert np.array_equal(lanczos._resize(pixels), pillow_32(pixels)), (width, height)


def test_fast_resize_on_large_corpus_images() -> None:
    used = 0
    for _, data in samples.corpus():
        img = Image.open(io.BytesIO(data)).convert("L")
        fast = lanczos.resize_l_32(img)
        if fast is not None:
            used += 1
            expected = np.asarray(img.resize((32, 32), Image.Resampling.LANCZOS))
            assert np.array_equal(fast, expected)
    assert used >= 5


def test_fast_resize_takes_the_callers_array() -> None:
    img = samples.photo((1000, 700), seed=5).convert("L")
    pixels = np.asarray(img)
    assert np.array_equal(lanczos.resize_l_32(img, pixels), lanczos.resize_l_32(img))
    with pytest.raises(ValueError, match="not those of"):
        lanczos.resize_l_32(img, pixels.T)
    with pytest.raises(ValueError, match="not those of"):
        lanczos.resize_l_32(img, pixels.astype(np.uint16))


def test_fast_resize_declines_small_or_non_l() -> None:
    assert lanczos.resize_l_32(Image.new("L", (500, 500))) is None  # below MIN_PIXELS
    assert lanczos.resize_l_32(Image.new("RGB", (1200, 1000))) is None
    assert lanczos.resize_l_32(Image.new("L", (32, 40000))) is None
    assert lanczos.resize_l_32(Image.new("L", (1200, 1000))) is not None


def test_bad_bytes_raise_image_error() -> None:
    with pytest.raises(ImageError) as info:
        phash_bytes(samples.html_page(), MAX)
    assert info.value.reason == "not_image"
