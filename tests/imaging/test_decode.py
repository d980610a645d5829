"""Safe decoding: every mode's RGB rule, first frames, stored orientation, and each refusal with
its stable reason (not_image, unsupported, truncated, corrupt, too_many_pixels)."""

from __future__ import annotations

import io
import pickle
import tracemalloc

import numpy as np
import pytest
from PIL import Image

from sleuth.imaging.decode import decode_image, single_channel, to_rgb
from sleuth.imaging.errors import ImageError
from sleuth.imaging.gray import gray_image
from tests.imaging import samples

MAX = 64_000_000


def spec_gray(rgb: np.ndarray) -> np.ndarray:
    return (rgb.astype(np.int64).sum(axis=2) // 3).astype(np.uint8)


def decoded_gray(data: bytes) -> np.ndarray:
    return np.asarray(gray_image(decode_image(data, MAX).image))


def reason(data: bytes, max_pixels: int = MAX) -> str:
    with pytest.raises(ImageError) as info:
        decode_image(data, max_pixels)
    return info.value.reason


@pytest.mark.parametrize(
    "name,mode,fmt,frames",
    [
        ("palette-gif", "P", "GIF", 1),
        ("animated-gif", "P", "GIF", 3),
        ("rgba-png", "RGBA", "PNG", 1),
        ("la-png", "LA", "PNG", 1),
        ("cmyk-jpeg", "CMYK", "JPEG", 1),
        ("i16-png", "I;16", "PNG", 1),
        ("rgb16-png", "RGB", "PNG", 1),
        ("bilevel-png", "1", "PNG", 1),
        ("webp-lossless", "RGB", "WEBP", 1),
        ("bmp", "RGB", "BMP", 1),
        ("tiff", "RGB", "TIFF", 1),
        ("ico", "RGB", "ICO", 1),
    ],
)
def test_modes_formats_frames(name: str, mode: str, fmt: str, frames: int) -> None:
    data = dict(samples.hostile())[name]
    decoded = decode_image(data, MAX)
    assert (decoded.mode, decoded.format, decoded.frames) == (mode, fmt, frames)
    assert decoded.image.size == (decoded.width, decoded.height)


def test_palette_uses_palette_colours_and_ignores_transparency() -> None:
    img = samples.palette_image(transparent_index=3)
    data = samples.encode(img, "PNG", transparency=3)
    palette = np.array(img.getpalette(), np.int64).reshape(-1, 3)
    expected = (palette[np.asarray(img)].sum(axis=2) // 3).astype(np.uint8)
    assert (np.asarray(img) == 3).any()
    assert np.array_equal(decoded_gray(data), expected)


def test_animated_gif_uses_first_frame() -> None:
    data = samples.animated_gif()
    first = Image.open(io.BytesIO(data)).convert("RGB")
    assert np.array_equal(decoded_gray(data), spec_gray(np.asarray(first)))
    second = Image.open(io.BytesIO(data))
    second.seek(1)
    assert not np.array_equal(decoded_gray(data), spec_gray(np.asarray(second.convert("RGB"))))


def test_alpha_is_ignored_not_composited() -> None:
    rgba = samples.rgba_with_transparency()
    gray = decoded_gray(samples.encode(rgba, "PNG"))
    stored = np.asarray(rgba)[..., :3]
    assert (np.asarray(rgba)[:, :32, 3] == 0).all()
    assert np.array_equal(gray, spec_gray(stored))  # transparent half keeps its colour


def test_la_is_its_l_channel() -> None:
    la = samples.photo((64, 48)).convert("LA")
    assert np.array_equal(decoded_gray(samples.encode(la, "PNG")), np.asarray(la)[..., 0])


def test_cmyk_jpeg_is_not_inverted_twice() -> None:
    cmyk = Image.new("CMYK", (32, 32), (255, 0, 0, 0))  # pure cyan
    decoded = decode_image(samples.encode(cmyk, "JPEG", quality=95), MAX)
    r, g, b = np.asarray(to_rgb(decoded.image))[16, 16].tolist()
    assert r < 20 and g > 235 and b > 235


def test_cmyk_gray_follows_pillows_rgb() -> None:
    data = samples.cmyk_jpeg()
    rgb = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    assert np.array_equal(decoded_gray(data), spec_gray(rgb))


def test_16_bit_gray_keeps_the_high_byte() -> None:
    values, data = samples.i16_png()
    gray = decoded_gray(data)
    assert gray[0, :4].tolist() == [0, 0, 1, 255]
    assert np.array_equal(gray, (values >> 8).astype(np.uint8))


def test_16_bit_rgb_keeps_the_high_byte() -> None:
    values = np.random.default_rng(9).integers(0, 65536, (12, 20, 3))
    gray = decoded_gray(samples.png16_rgb(values))
    assert np.array_equal(gray, spec_gray(values >> 8))


def test_bilevel_is_0_or_255() -> None:
    img = samples.photo((64, 48)).convert("1")
    gray = decoded_gray(samples.encode(img, "PNG"))
    assert np.array_equal(gray, np.asarray(img).astype(np.uint8) * 255)


def test_lossless_webp_gray_is_exact() -> None:
    src = np.asarray(samples.photo((80, 60)))
    assert np.array_equal(decoded_gray(samples.webp_lossless()), spec_gray(src))


def test_float_and_int_rules() -> None:
    f = Image.fromarray(np.array([[-5.0, 0.5, 254.9, 300.0, np.nan]], np.float32), "F")
    assert np.asarray(single_channel(f)).tolist() == [[0, 0, 254, 255, 0]]
    i = Image.fromarray(np.array([[-1, 255, 256, 65535, 70000]], np.int32), "I")
    assert np.asarray(single_channel(i)).tolist() == [[0, 0, 1, 255, 255]]
    tiff = decode_image(samples.encode(f, "TIFF"), MAX)
    assert tiff.mode == "F"
    assert np.asarray(gray_image(tiff.image)).tolist() == [[0, 0, 254, 255, 0]]


def test_premultiplied_alpha_is_undone() -> None:
    rgba = Image.new("RGBA", (2, 2), (200, 100, 50, 128))
    premultiplied = rgba.convert("RGBa")
    r, g, b = np.asarray(to_rgb(premultiplied))[0, 0].tolist()
    assert abs(r - 200) <= 2 and abs(g - 100) <= 2 and abs(b - 50) <= 2
    la = Image.new("LA", (2, 2), (90, 128)).convert("La")
    assert abs(int(np.asarray(single_channel(la))[0, 0]) - 90) <= 2


def test_lab_goes_through_colour_management() -> None:
    neutral = Image.new("LAB", (4, 4), (128, 128, 128))  # L* = 50, a* = b* = 0
    r, g, b = np.asarray(to_rgb(neutral))[0, 0].tolist()
    assert abs(r - g) <= 2 and abs(g - b) <= 2 and 100 < r < 140
    data = samples.encode(neutral, "TIFF")
    assert decode_image(data, MAX).mode == "LAB"
    assert 100 < int(decoded_gray(data)[0, 0]) < 140


@pytest.mark.parametrize("name", [n for n, _ in samples.hostile()])
def test_gray_shortcuts_equal_the_rgb_rule(name: str) -> None:
    img = decode_image(dict(samples.hostile())[name], MAX).image
    assert np.array_equal(np.asarray(gray_image(img)), spec_gray(np.asarray(to_rgb(img))))


def test_orientation_is_not_applied() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    data = samples.encode(samples.photo((60, 40)), "JPEG", exif=exif.tobytes())
    decoded = decode_image(data, MAX)
    assert (decoded.width, decoded.height) == (60, 40)


@pytest.mark.parametrize(
    "fmt,options", [("JPEG", {}), ("JPEG", {"progressive": True}), ("PNG", {}), ("GIF", {})]
)
def test_truncated_files(fmt: str, options: dict) -> None:
    data = samples.encode(samples.photo((320, 240)), fmt, **options)
    assert reason(data[: len(data) * 2 // 3]) == "truncated"


def test_truncated_webp() -> None:
    data = samples.encode(samples.photo((320, 240)), "WEBP", quality=80)
    assert reason(data[: len(data) // 2]) == "truncated"


@pytest.mark.parametrize(
    "data",
    [samples.html_page(), b"", b'{"error": "not found"}', bytes(range(256)) * 4, b"BM hello"],
)
def test_not_images(data: bytes) -> None:
    assert reason(data) == "not_image"


def test_unsupported_types() -> None:
    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64
    assert reason(heic) == "unsupported"
    jxl = b"\xff\x0a" + b"\x00" * 64
    assert reason(jxl) == "unsupported"


def test_corrupt_payload() -> None:
    good = samples.raw_png(16, 16, 8, 0, b"\x00" * (17 * 16))
    start = good.index(b"IDAT") + 4
    garbage = good[:start] + b"\xde\xad\xbe\xef" * 4 + good[start + 16 :]
    assert reason(garbage) == "corrupt"
    header_only = good[: good.index(b"IDAT") - 4]
    bad_zlib = (
        header_only
        + samples.png_chunk(b"IDAT", b"\x78\x9c" + b"\xff" * 40)
        + samples.png_chunk(b"IEND", b"")
    )
    assert reason(bad_zlib) == "corrupt"
    jpeg_magic_then_zeros = samples.encode(samples.photo(), "JPEG")[:3] + b"\x00" * 500
    assert reason(jpeg_magic_then_zeros) == "corrupt"


def test_bomb_is_refused_before_allocation() -> None:
    data = samples.bomb_png()
    assert len(data) < 200
    tracemalloc.start()
    try:
        assert reason(data, max_pixels=MAX) == "too_many_pixels"
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000  # a decoded canvas would be 30 GB


def test_max_pixels_is_ours() -> None:
    data = samples.encode(samples.photo((64, 48)), "PNG")
    assert reason(data, max_pixels=64 * 48 - 1) == "too_many_pixels"
    assert decode_image(data, max_pixels=64 * 48).width == 64


def test_pillows_own_bomb_warning_becomes_our_error() -> None:
    # 100 Mpx: over Pillow's default MAX_IMAGE_PIXELS (~89 Mpx), under our generous limit
    data = samples.raw_png(10_000, 10_000, 8, 0, b"\x00" * 64)
    assert reason(data, max_pixels=10**9) == "too_many_pixels"


def test_image_error_is_picklable_and_readable() -> None:
    err = ImageError("truncated", "image file is truncated")
    again = pickle.loads(pickle.dumps(err))
    assert (again.reason, again.detail) == ("truncated", "image file is truncated")
    assert str(again) == "truncated: image file is truncated"
    with pytest.raises(ValueError):
        ImageError("mystery", "?")
