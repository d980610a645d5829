"""The generated world of the offline web: every object is a pure function of (seed, parameters).

Tests and benchmarks are reproducible because nothing here reads a clock or global random state.
The world holds photos: `photo(seed, image_id, width, height)` is a photo-like picture
(a 1/f-like cloudy background, a few hard-edged shapes, sensor-like noise) whose JPEG size and
decode cost resemble a real photo's. The same (seed, image_id) gives the same scene at any size,
as an image host serves one photo resized; only the fine noise depends on the size too.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from functools import lru_cache

import numpy as np
from PIL import Image, ImageChops, ImageDraw

JPEG_QUALITY = 90
"""Default JPEG quality; at 1024x768 the photos weigh about 150-250 kB, like camera photos."""

NOISE_SIGMA = 5.0
"""Standard deviation of the luma noise; it sets the JPEG size (more noise, more bytes)."""

_BANK_SIZE = 1 << 22
_TAG_SCENE, _TAG_NOISE_OFFSET, _TAG_BANK = 1, 2, 3
_LUMA_OCTAVES = (3, 5, 9, 17, 33)
_CHROMA_OCTAVES = (3, 5, 9)


def _check(seed: int, image_id: int, width: int, height: int) -> None:
    for name, value in (("seed", seed), ("image_id", image_id)):
        if not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    for name, value in (("width", width), ("height", height)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


@lru_cache(maxsize=64)
def _interp(n_out: int, n_grid: int) -> np.ndarray:
    """Weights (n_out x n_grid) that sample a grid smoothly at n_out evenly spaced points."""
    pos = (np.arange(n_out, dtype=np.float32) + 0.5) / n_out * (n_grid - 1)
    left = np.minimum(pos.astype(np.int64), n_grid - 2)
    frac = pos - left
    frac = frac * frac * (3.0 - 2.0 * frac)
    weights = np.zeros((n_out, n_grid), dtype=np.float32)
    rows = np.arange(n_out)
    weights[rows, left] = 1.0 - frac
    weights[rows, left + 1] = frac
    weights.flags.writeable = False
    return weights


def _smooth_plane(
    rng: np.random.Generator,
    width: int,
    height: int,
    divisor: int,
    octaves: tuple[int, ...],
    amplitude: float,
    mean: float,
    tilt: float = 0.0,
) -> Image.Image:
    """A cloudy 8-bit plane: random grids of rising frequency and falling amplitude, summed.

    The field is computed at 1/divisor resolution with small matrix products, interpolated to
    half resolution and doubled: a smooth field loses nothing visible to the last step, which
    halves the cost (the noise added later is at full resolution).
    """
    small_w, small_h = -(-width // divisor), -(-height // divisor)
    field = np.full((small_h, small_w), mean, dtype=np.float32)
    for level, n in enumerate(octaves):
        grid = rng.standard_normal((n, n)).astype(np.float32) * (amplitude / 1.7**level)
        field += _interp(small_h, n) @ grid @ _interp(small_w, n).T
    if tilt:
        field += (tilt * (0.5 - (np.arange(small_h, dtype=np.float32) + 0.5) / small_h))[:, None]
    small = Image.fromarray(np.clip(field, 0, 255).astype(np.uint8), "L")
    half = small.resize((-(-width // 2), -(-height // 2)), Image.Resampling.BILINEAR)
    return half.resize((width, height), Image.Resampling.NEAREST)


def _draw_shapes(rng: np.random.Generator, planes: tuple[Image.Image, ...]) -> None:
    """A few flat objects with hard edges, drawn in the same place on the Y, Cb and Cr planes."""
    width, height = planes[0].size
    draws = [ImageDraw.Draw(plane) for plane in planes]
    for _ in range(int(rng.integers(3, 9))):
        kind = int(rng.integers(3))
        cx, cy = rng.uniform(0.0, 1.0, 2)
        rx, ry = rng.uniform(0.04, 0.3, 2)
        box = ((cx - rx) * width, (cy - ry) * height, (cx + rx) * width, (cy + ry) * height)
        fills = (int(rng.integers(16, 236)), int(rng.integers(96, 161)), int(rng.integers(96, 161)))
        points = [
            ((cx + rx * px) * width, (cy + ry * py) * height)
            for px, py in rng.uniform(-1.0, 1.0, (int(rng.integers(3, 7)), 2))
        ]
        for draw, fill in zip(draws, fills, strict=True):
            if kind == 0:
                draw.ellipse(box, fill=fill)
            elif kind == 1:
                draw.rectangle(box, fill=fill)
            else:
                draw.polygon(points, fill=fill)


@lru_cache(maxsize=8)
def _noise_bank(seed: int) -> np.ndarray:
    """4 MiB of Gaussian luma noise around 128; each photo takes a slice at its own offset."""
    rng = np.random.default_rng([seed, _TAG_BANK])
    bank = rng.standard_normal(_BANK_SIZE, dtype=np.float32) * NOISE_SIGMA + 128.0
    bank = np.clip(np.rint(bank), 0, 255).astype(np.uint8)
    bank.flags.writeable = False
    return bank


def _noise(seed: int, image_id: int, width: int, height: int) -> Image.Image:
    count = width * height
    bank = _noise_bank(seed)
    rng = np.random.default_rng([seed, _TAG_NOISE_OFFSET, image_id, width, height])
    offset = int(rng.integers(0, _BANK_SIZE))
    if offset + count <= _BANK_SIZE:
        values = bank[offset : offset + count]
    else:
        values = np.tile(bank, -(-(offset + count) // _BANK_SIZE))[offset : offset + count]
    return Image.frombuffer("L", (width, height), values, "raw", "L", 0, 1)


def photo_ycbcr(seed: int, image_id: int, width: int, height: int) -> Image.Image:
    """The photo in its native YCbCr form, which a JPEG encoder takes without a conversion."""
    _check(seed, image_id, width, height)
    rng = np.random.default_rng([seed, _TAG_SCENE, image_id])
    luma = _smooth_plane(
        rng, width, height, 8, _LUMA_OCTAVES, 55.0, rng.uniform(70, 180), rng.uniform(-80, 80)
    )
    cb = _smooth_plane(rng, width, height, 16, _CHROMA_OCTAVES, 16.0, rng.uniform(100, 156))
    cr = _smooth_plane(rng, width, height, 16, _CHROMA_OCTAVES, 16.0, rng.uniform(100, 156))
    _draw_shapes(rng, (luma, cb, cr))
    luma = ImageChops.add(luma, _noise(seed, image_id, width, height), 1.0, -128)
    return Image.merge("YCbCr", (luma, cb, cr))


def photo(seed: int, image_id: int, width: int, height: int) -> Image.Image:
    """A deterministic photo-like RGB picture of the world `seed`."""
    return photo_ycbcr(seed, image_id, width, height).convert("RGB")


def photo_jpeg(
    seed: int, image_id: int, width: int, height: int, quality: int = JPEG_QUALITY
) -> bytes:
    """The photo as a baseline JPEG (4:2:0), byte for byte the same on every call."""
    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be in 1..100, got {quality}")
    out = io.BytesIO()
    photo_ycbcr(seed, image_id, width, height).save(out, "JPEG", quality=quality)
    return out.getvalue()


class ByteLRU:
    """A thread-safe LRU of encoded bodies, bounded by their total size in bytes.

    The emulator serves the same images again and again (repeated URLs, re-crawls); keeping their
    bytes means only the first request pays for generating and encoding.
    """

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.max_bytes = max_bytes
        self.size_bytes = 0
        self._items: OrderedDict[Hashable, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Hashable) -> bytes | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: Hashable, value: bytes) -> None:
        """Keep `value`, evicting the least recently used; a value above the bound is not kept."""
        if len(value) > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self.size_bytes -= len(old)
            self._items[key] = value
            self.size_bytes += len(value)
            while self.size_bytes > self.max_bytes:
                _, evicted = self._items.popitem(last=False)
                self.size_bytes -= len(evicted)

    def get_or_make(self, key: Hashable, make: Callable[[], bytes]) -> bytes:
        """The cached value, or `make()` cached; two threads may both make a missing value."""
        value = self.get(key)
        if value is None:
            value = make()
            self.put(key, value)
        return value
