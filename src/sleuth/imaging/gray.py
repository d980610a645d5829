"""The spec's grayscale, exactly: gray = floor((R + G + B) / 3) per pixel, in 8 bits.

(The seed used Pillow's `convert('L')`, i.e. BT.601 luma 299/587/114: not what it promised.)

Two implementations that give the same bytes:
- `gray_from_rgb_array`: numpy, integer arithmetic, the reference. It works in row blocks so
  the uint16 temporaries stay in cache (a plain `arr.sum(axis=2)` is ~10x slower).
- `gray_image`: Pillow's C matrix conversion with weights 1/3 and offset -1/3. Pillow computes
  v = R/3 + G/3 + B/3 - 1/3 + 0.5 in float and truncates, so v = (R+G+B)/3 + 1/6: its fraction
  is 1/6, 1/2 or 5/6, a margin of 1/6 from every integer, far above float32 rounding (~1e-5).
  The test suite checks all 2**24 colours; at run time a 65,536-pixel sample covering every sum
  is checked once per process and any mismatch switches to the numpy path. It needs no RGB
  numpy copy, so it is 2-3x faster than the numpy path end to end.
Single-channel modes (L, 1, 16-bit, ...) skip RGB: with R = G = B = v, floor(3v/3) = v.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from PIL import Image

from sleuth.imaging.decode import single_channel, to_rgb

_MATRIX = (1 / 3, 1 / 3, 1 / 3, -1 / 3)
_ROWS_PER_BLOCK = 128


def gray_from_rgb_array(rgb: np.ndarray) -> np.ndarray:
    """floor((R+G+B)/3) of an (H, W, 3) uint8 array, as an (H, W) uint8 array."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 array, got {rgb.shape} {rgb.dtype}")
    height, width = rgb.shape[:2]
    out = np.empty((height, width), np.uint8)
    acc = np.empty((min(_ROWS_PER_BLOCK, height), width), np.uint16)
    for top in range(0, height, _ROWS_PER_BLOCK):
        block = rgb[top : top + _ROWS_PER_BLOCK]
        s = acc[: block.shape[0]]
        np.add(block[..., 0], block[..., 1], out=s, dtype=np.uint16)
        np.add(s, block[..., 2], out=s)
        np.floor_divide(s, 3, out=s)
        out[top : top + block.shape[0]] = s
    return out


def _matrix_gray(rgb: Image.Image) -> Image.Image:
    return rgb.convert("L", matrix=_MATRIX)


@cache
def matrix_gray_is_exact() -> bool:
    """Whether this Pillow build's matrix conversion gives floor((R+G+B)/3) on a sample that
    contains every sum 0..765 at its extreme splits plus 64k seeded random colours."""
    rng = np.random.default_rng(20240531)
    sample = rng.integers(0, 256, size=(256, 256, 3), dtype=np.uint8)
    s = np.arange(766)
    lo = np.stack([np.minimum(s, 255), np.clip(s - 255, 0, 255), np.clip(s - 510, 0, 255)], -1)
    sample[0, :, :] = lo[:256]
    sample[1, :, :] = lo[256:512]
    sample[2, :254, :] = lo[512:]
    sample[3, :, :] = lo[255::-1][:, ::-1]
    got = np.asarray(_matrix_gray(Image.fromarray(sample, "RGB")))
    return bool(np.array_equal(got, gray_from_rgb_array(sample)))


def gray_image(img: Image.Image) -> Image.Image:
    """The exact (R+G+B)/3 gray of a decoded image of any supported mode, as a mode-L image."""
    single = single_channel(img)
    if single is not None:
        return single
    rgb = to_rgb(img)
    if matrix_gray_is_exact():
        return _matrix_gray(rgb)
    return Image.fromarray(gray_from_rgb_array(np.asarray(rgb)), "L")
