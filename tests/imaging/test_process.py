"""The per-image kernel: one call gives size, mode, format, frames, pHash, gray blob and digest;
it runs in a real process pool and its errors cross the process boundary intact."""

from __future__ import annotations

import hashlib
import io
import pickle
from concurrent.futures import ProcessPoolExecutor

import imagehash
import numpy as np
import pytest
from PIL import Image

from sleuth.imaging.encode import unpack_gray
from sleuth.imaging.errors import ImageError
from sleuth.imaging.hashes import md5_hex, phash_hex
from sleuth.imaging.process import ProcessedImage, process_image
from tests.imaging import samples
from tests.patience import PATIENCE

MAX = 64_000_000


def test_md5_is_of_the_bytes() -> None:
    data = samples.encode(samples.photo(), "PNG")
    assert md5_hex(data) == hashlib.md5(data).hexdigest()
    assert md5_hex(b"") == "d41d8cd98f00b204e9800998ecf8427e"


@pytest.mark.parametrize(
    "name,data", samples.corpus()[::4], ids=[n for n, _ in samples.corpus()[::4]]
)
def test_corpus_results(name: str, data: bytes) -> None:
    result = process_image(data, MAX)
    img = Image.open(io.BytesIO(data))
    assert (result.width, result.height) == img.size
    assert (result.mode, result.format, result.frames) == (img.mode, img.format, 1)
    assert phash_hex(result.phash) == str(imagehash.phash(img))
    width, height, gray = unpack_gray(result.gray)
    rgb = np.asarray(img.convert("RGB")).astype(np.int32)
    assert (width, height) == img.size
    assert np.array_equal(gray, (rgb.sum(axis=2) // 3).astype(np.uint8))
    assert result.gray_digest == hashlib.sha256(result.gray).hexdigest()


@pytest.mark.parametrize("mode", ["L", "LA", "1", "RGB", "RGBA", "I;16"])
@pytest.mark.parametrize("size", [(900, 600), (120, 90)], ids=["fast-resize", "pillow-resize"])
def test_shared_pixels_give_imagehash_and_exact_gray(mode: str, size: tuple[int, int]) -> None:
    """Single-channel sources reuse their gray pixels as the pHash input; every mode, on both
    resize paths, still gives imagehash's bits and the exact gray."""
    rgb = samples.photo(size, seed=3)
    if mode == "I;16":
        values = (np.asarray(rgb.convert("L")).astype(np.uint16) * 257) ^ 0x5A
        img = Image.fromarray(values)  # uint16: mode I;16
        expected = (values >> 8).astype(np.uint8)
    else:
        img = rgb.convert(mode)
        colour = np.asarray(img.convert("RGB")).astype(np.int32)
        expected = (colour.sum(axis=2) // 3).astype(np.uint8)
    data = samples.encode(img, "PNG")
    result = process_image(data, MAX)
    decoded = Image.open(io.BytesIO(data))
    assert result.mode == decoded.mode
    assert phash_hex(result.phash) == str(imagehash.phash(decoded))
    assert np.array_equal(unpack_gray(result.gray)[2], expected)


def test_animated_and_deterministic() -> None:
    data = samples.animated_gif()
    first, second = process_image(data, MAX), process_image(data, MAX)
    assert first.frames == 3
    assert first == second
    assert pickle.loads(pickle.dumps(first)) == first


def test_errors_keep_their_reason() -> None:
    with pytest.raises(ImageError) as info:
        process_image(samples.bomb_png(), MAX)
    assert info.value.reason == "too_many_pixels"


def test_in_a_process_pool() -> None:
    good = samples.encode(samples.photo((320, 200)), "JPEG")
    bad = samples.html_page()
    with ProcessPoolExecutor(max_workers=2) as pool:
        result = pool.submit(process_image, good, MAX).result(timeout=PATIENCE)
        failure = pool.submit(process_image, bad, MAX).exception(timeout=PATIENCE)
    assert isinstance(result, ProcessedImage)
    assert result == process_image(good, MAX)
    assert isinstance(failure, ImageError) and failure.reason == "not_image"
