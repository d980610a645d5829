"""Pillow's LANCZOS downscale of a mode-L image to 32x32: the same bytes, faster on big images.

pHash (imagehash) resizes the whole luma image to 32x32 with Pillow's LANCZOS; on a large
photo that resize costs more than the JPEG decode. Pillow's resampler (libImaging/Resample.c)
is a fixed-point two-pass filter: for each output column a window of input pixels is weighted
by integer coefficients (the Lanczos-3 kernel sampled in doubles, normalised, scaled by 2**22
and rounded away from zero), the sum plus 2**21 is shifted right by 22 and clipped to 0..255;
one pass runs over the whole input, the other over its 32-wide output.

This module reproduces that arithmetic:
- the coefficients are computed with the same double-precision operations in the same order
  (Python floats are C doubles, `math.sin` is the C library's `sin`);
- Pillow 13 runs the vertical pass first on tall images (`vertical_first`). The first pass,
  ~99% of the work, is float32 matrix-vector products on BLAS over row blocks of pixel - 128.
  Their rounding error is bounded (n * 2**-24 * sum|value * coefficient|, doubled for margin);
  every sum within that bound of a rounding boundary (a few % of them) is recomputed exactly in
  float64, so each shifted result equals Pillow's;
- the second pass is a float64 product of integers whose every partial sum is an integer
  below 2**53, hence exact in any order.
The test suite compares the output with `Image.resize` on the image corpus and on random
sizes and contents, and each process checks a few seeded cases against the installed Pillow
before first use. Images too small for this to pay (or not downscaled on both axes) return
None and the caller uses Pillow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache, lru_cache

import numpy as np
from PIL import Image

OUT = 32
_PRECISION_BITS = 22
_ONE = 1 << _PRECISION_BITS
_HALF = 1 << (_PRECISION_BITS - 1)
_SUPPORT = 3.0
_U32 = 2.0**-24
_CENTER = 128
_BLOCK_ROWS = 128
# Below about this many input pixels Pillow's own resize is as fast or faster. Best of many
# runs on one core of the 2-core dev machine: 4000x3000 62 -> 36 ms, 2560x1600 22 -> 14 ms,
# 1280x960 13.6 -> 6.3 ms, 1024x768 7.1 -> 4.0 ms, 800x600 4.6 -> 4.0 ms; 640x427 slower.
MIN_PIXELS = 480_000


def _sinc(x: float) -> float:
    if x == 0.0:
        return 1.0
    x = x * math.pi
    return math.sin(x) / x


def _lanczos(x: float) -> float:
    if -3.0 <= x < 3.0:
        return _sinc(x) * _sinc(x / 3)
    return 0.0


@dataclass(frozen=True)
class _Axis:
    """Pillow's integer coefficients for resampling `in_size` samples to 32 on one axis."""

    starts: tuple[int, ...]
    coeffs: tuple[np.ndarray, ...]  # float64 holding integers, one window per output sample
    coeffs32: tuple[np.ndarray, ...]  # the same, float32 (integers < 2**23: exact)
    centre_offsets: np.ndarray  # per output: 128 * sum of its coefficients
    error_bounds: np.ndarray  # per output: worst float32 error of a window sum, doubled


@lru_cache(maxsize=256)
def _axis(in_size: int) -> _Axis:
    scale = in_size / OUT
    filterscale = max(scale, 1.0)
    support = _SUPPORT * filterscale
    inv = 1.0 / filterscale
    starts: list[int] = []
    coeffs: list[np.ndarray] = []
    bounds: list[float] = []
    offsets: list[int] = []
    for xx in range(OUT):
        center = (xx + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), in_size) - xmin
        weights = [_lanczos((x + xmin - center + 0.5) * inv) for x in range(xmax)]
        total = 0.0
        for w in weights:
            total += w
        if total != 0.0:
            weights = [w / total for w in weights]
        ints = [int(-0.5 + w * _ONE) if w < 0 else int(0.5 + w * _ONE) for w in weights]
        starts.append(xmin)
        coeffs.append(np.array(ints, dtype=np.float64))
        # n terms summed in any order: |error| <= gamma_n * sum|pixel * coefficient|
        n = len(ints) + 2
        gamma = n * _U32 / (1.0 - n * _U32)
        # summed values are pixel - 128, so |value| <= 128
        bounds.append(2.0 * gamma * _CENTER * sum(abs(i) for i in ints))
        offsets.append(_CENTER * sum(ints))
    return _Axis(
        tuple(starts),
        tuple(coeffs),
        tuple(k.astype(np.float32) for k in coeffs),
        np.array(offsets, dtype=np.float64),
        np.array(bounds),
    )


def _shift_clip(sums: np.ndarray) -> np.ndarray:
    """(sum + 2**21) >> 22, clipped to 0..255, of exact integer sums held in float64."""
    q = np.floor((sums + _HALF) / _ONE)
    return np.clip(q, 0, 255).astype(np.uint8)


def vertical_first(width: int, height: int) -> bool:
    """Pillow 13 runs the vertical pass first for tall images; for a 32x32 output that is
    exactly when height >= 2 * width - 31 (found by bisection against Pillow, checked by the
    tests and by `_agrees_with_pillow` at run time)."""
    return height >= 2 * width - 31


def _heavy_pass(pixels: np.ndarray, axis: _Axis) -> np.ndarray:
    """Filter each row of `pixels` (uint8, M x N) along N down to 32 values: (M, 32) uint8.

    float32 BLAS products on row blocks (kept in cache, one buffer reused) of pixel - 128,
    which halves the error bound; then exact float64 sums wherever float32 could have rounded
    a sum across a rounding boundary."""
    sums = np.empty((pixels.shape[0], OUT), np.float64)
    buffer = np.empty((min(_BLOCK_ROWS, pixels.shape[0]), pixels.shape[1]), np.float32)
    for top in range(0, pixels.shape[0], _BLOCK_ROWS):
        rows = pixels[top : top + _BLOCK_ROWS]
        block = np.subtract(rows, _CENTER, out=buffer[: rows.shape[0]], dtype=np.float32)
        out = sums[top : top + _BLOCK_ROWS]
        for j, (start, k) in enumerate(zip(axis.starts, axis.coeffs32, strict=True)):
            out[:, j] = block[:, start : start + len(k)] @ k
    sums += axis.centre_offsets
    frac = (sums + _HALF) / _ONE
    dist = np.abs(frac - np.round(frac)) * _ONE
    unsure_rows, unsure_cols = np.nonzero(dist <= axis.error_bounds)
    for j in np.unique(unsure_cols):
        rows = unsure_rows[unsure_cols == j]
        start, k = axis.starts[j], axis.coeffs[j]
        # integers below 2**31, summed in float64: exact in any order
        window = pixels[rows, start : start + len(k)].astype(np.float64)
        sums[rows, j] = window @ k
    return _shift_clip(sums)


def _light_pass(middle: np.ndarray, axis: _Axis, first: int) -> np.ndarray:
    """Filter the (M, 32) intermediate along M: exact float64 sums of integers < 2**53."""
    weights = np.zeros((OUT, middle.shape[0]), np.float64)
    for i, (start, k) in enumerate(zip(axis.starts, axis.coeffs, strict=True)):
        weights[i, start - first : start - first + len(k)] = k
    return _shift_clip(weights @ middle.astype(np.float64))


def _resize(pixels: np.ndarray) -> np.ndarray:
    height, width = pixels.shape
    horiz, vert = _axis(width), _axis(height)
    if vertical_first(width, height):
        first = horiz.starts[0]
        last = horiz.starts[-1] + len(horiz.coeffs[-1])
        middle = _heavy_pass(pixels.T[first:last], vert)
        return _light_pass(middle, horiz, first).T
    first = vert.starts[0]
    last = vert.starts[-1] + len(vert.coeffs[-1])
    middle = _heavy_pass(pixels[first:last], horiz)
    return _light_pass(middle, vert, first)


@cache
def _agrees_with_pillow() -> bool:
    """Once per process: both pass orders, both sides of the order threshold, and a square,
    on seeded noise, compared with the installed Pillow."""
    rng = np.random.default_rng(7)
    for width, height in ((200, 368), (200, 369), (333, 333), (517, 131), (64, 300)):
        pixels = rng.integers(0, 256, (height, width), dtype=np.uint8)
        img = Image.fromarray(pixels, "L")
        expected = np.asarray(img.resize((OUT, OUT), Image.Resampling.LANCZOS))
        if not np.array_equal(_resize(pixels), expected):
            return False
    return True


def resize_l_32(img: Image.Image, pixels: np.ndarray | None = None) -> np.ndarray | None:
    """`np.asarray(img.resize((32, 32), Image.Resampling.LANCZOS))` for a mode-L image that is
    larger than 32 on both axes and has at least `MIN_PIXELS`; None otherwise (and None if the
    installed Pillow resamples differently, so the caller falls back to Pillow).

    `pixels`, when given, must be `np.asarray(img)`: a caller that already holds that array
    saves copying the image out of Pillow again."""
    width, height = img.size
    if img.mode != "L" or width <= OUT or height <= OUT or width * height < MIN_PIXELS:
        return None
    if not _agrees_with_pillow():
        return None
    if pixels is None:
        pixels = np.asarray(img)
    elif pixels.shape != (height, width) or pixels.dtype != np.uint8:
        raise ValueError(
            f"pixels {pixels.shape} {pixels.dtype} are not those of a {img.size} L image"
        )
    return _resize(pixels)
