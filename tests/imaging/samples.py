"""Encoded test images of every mode and hostile shape, made here so each test states its input."""

from __future__ import annotations

import io
import struct
import zlib
from functools import cache

import numpy as np
from PIL import Image

from bench.corpus import load_corpus


def encode(img: Image.Image, fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


def photo(size: tuple[int, int] = (160, 120), seed: int = 0) -> Image.Image:
    """A smooth RGB picture with texture: gradients plus seeded noise."""
    w, h = size
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x + y) % 256], -1)
    noise = rng.integers(-30, 31, (h, w, 3))
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8), "RGB")


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def raw_png(width: int, height: int, bit_depth: int, color_type: int, rows: bytes) -> bytes:
    """A PNG written by hand (for what Pillow cannot save: 16-bit RGB, lying headers)."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(rows))
        + png_chunk(b"IEND", b"")
    )


def bomb_png() -> bytes:
    """A ~100-byte PNG that declares a 100000 x 100000 RGB canvas (10 gigapixels)."""
    return raw_png(100_000, 100_000, 8, 2, b"\x00" * 64)


def png16_rgb(values: np.ndarray) -> bytes:
    """A 16-bit RGB PNG of an (H, W, 3) uint16 array."""
    h, w, _ = values.shape
    rows = b"".join(b"\x00" + values[y].astype(">u2").tobytes() for y in range(h))
    return raw_png(w, h, 16, 2, rows)


def palette_image(transparent_index: int | None = None) -> Image.Image:
    img = photo((64, 48)).quantize(colors=16)
    if transparent_index is not None:
        img.info["transparency"] = transparent_index
    return img


def animated_gif() -> bytes:
    frames = [photo((48, 40), seed=s).quantize(colors=32) for s in range(3)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)


def rgba_with_transparency() -> Image.Image:
    rgba = photo((64, 48)).convert("RGBA")
    alpha = np.zeros((48, 64), np.uint8)
    alpha[:, 32:] = 255
    rgba.putalpha(Image.fromarray(alpha, "L"))
    return rgba


def cmyk_jpeg() -> bytes:
    return encode(photo((96, 64)).convert("CMYK"), "JPEG", quality=92)


def i16_png() -> tuple[np.ndarray, bytes]:
    rng = np.random.default_rng(3)
    values = rng.integers(0, 65536, (40, 56), dtype=np.uint16)
    values[0, :4] = [0, 255, 256, 65535]
    return values, encode(Image.fromarray(values), "PNG")


def bilevel_png() -> bytes:
    return encode(photo((64, 48)).convert("1"), "PNG")


def webp_lossless() -> bytes:
    return encode(photo((80, 60)), "WEBP", lossless=True)


def html_page() -> bytes:
    return b"<!doctype html><html><head><title>404</title></head><body>Not found</body></html>"


def flat(color: tuple[int, int, int], size: tuple[int, int] = (300, 200)) -> bytes:
    return encode(Image.new("RGB", size, color), "PNG")


@cache
def corpus() -> tuple[tuple[str, bytes], ...]:
    return tuple(load_corpus())


@cache
def hostile() -> tuple[tuple[str, bytes], ...]:
    """Inputs where a faster pHash could drift from imagehash: flat and symmetric images (the
    DCT median ties), tiny, tall and wide ones (Pillow's pass order), every pixel mode."""
    mirror = np.asarray(photo((128, 128), seed=5))
    mirror = np.concatenate([mirror, mirror[:, ::-1]], axis=1)
    sym = np.asarray(photo((200, 200), seed=6).convert("L"))
    sym = np.minimum(sym, sym.T)
    tall = np.asarray(photo((600, 1250), seed=7))
    cases: list[tuple[str, bytes]] = [
        ("flat-black", flat((0, 0, 0))),
        ("flat-white", flat((255, 255, 255))),
        ("flat-grey", flat((128, 128, 128), (1100, 1000))),
        ("mirror", encode(Image.fromarray(mirror), "PNG")),
        ("transpose-symmetric", encode(Image.fromarray(sym, "L"), "PNG")),
        ("tiny-1x1", encode(Image.new("RGB", (1, 1), (10, 200, 30)), "PNG")),
        ("tiny-8x8", encode(photo((8, 8)), "PNG")),
        ("33x33", encode(photo((33, 33)), "PNG")),
        ("tall-1250x600", encode(Image.fromarray(tall), "JPEG", quality=90)),
        ("tall-4000x900", encode(photo((900, 4000), seed=8), "JPEG", quality=85)),
        ("wide-3000x400", encode(photo((3000, 400), seed=9), "JPEG", quality=85)),
        ("palette-gif", encode(palette_image(), "GIF")),
        ("palette-png-trns", encode(palette_image(3), "PNG", transparency=3)),
        ("animated-gif", animated_gif()),
        ("rgba-png", encode(rgba_with_transparency(), "PNG")),
        ("la-png", encode(photo((64, 48)).convert("LA"), "PNG")),
        ("cmyk-jpeg", cmyk_jpeg()),
        ("i16-png", i16_png()[1]),
        ("rgb16-png", png16_rgb(np.random.default_rng(4).integers(0, 65536, (20, 30, 3)))),
        ("bilevel-png", bilevel_png()),
        ("webp-lossless", webp_lossless()),
        ("webp-lossy", encode(photo((200, 150)), "WEBP", quality=80)),
        ("bmp", encode(photo((50, 40)), "BMP")),
        ("tiff", encode(photo((50, 40)), "TIFF")),
        ("ico", encode(photo((64, 64)), "ICO")),
        ("progressive-jpeg", encode(photo((640, 480)), "JPEG", progressive=True)),
        ("gray-jpeg", encode(photo((640, 480)).convert("L"), "JPEG")),
    ]
    return tuple(cases)
