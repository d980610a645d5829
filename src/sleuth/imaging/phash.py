"""64-bit perceptual hash, bit-identical to `imagehash.phash` (ImageHash 4.3.2, hash_size 8).

The algorithm, as imagehash does it: `img.convert('L')` (Pillow's BT.601 luma, whatever the
mode; not our (R+G+B)/3 gray), `resize((32, 32), LANCZOS)` of the whole image, 2-D DCT-II
(`scipy.fftpack.dct` along axis 0, then axis 1, unnormalised), the top-left 8x8 block, each
coefficient compared (strictly greater) with the block's median (DC term included). The 64
booleans, row-major, are the bits of the integer from the most significant one down, so
`phash_hex` (16 hex digits) equals `str(imagehash.phash(img))`.

What is faster than imagehash, and why the bits cannot change:
- The 8x8 DCT block is two small matrix products with a precomputed cosine matrix instead of
  two full scipy FFT-based transforms. The two methods differ by float rounding (< 1e-6 here,
  coefficients are up to ~1e6), which matters only when a coefficient is within rounding of the
  median (flat or symmetric images). `_GUARD` detects that case and recomputes with scipy
  exactly as imagehash does.
- The 32x32 LANCZOS resize, which dominates imagehash's time, is done by
  `sleuth.imaging.lanczos.resize_l_32` when it can prove that its result equals Pillow's; else
  by Pillow itself.
- No JPEG draft (DCT-scaled) decoding: measured on 150 varied JPEGs, a 1/8..1/2 draft decode
  changed 2 bits or more in 5-15% of them (the median falls between coefficients a few units
  apart while the draft moves them by tens to hundreds), so it cannot give imagehash's bits.
  `bench/phash.py --draft` reproduces that measurement.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from sleuth.imaging.decode import decode_image, to_rgb
from sleuth.imaging.lanczos import resize_l_32

HASH_SIZE = 8
IMG_SIZE = 32

_k = np.arange(HASH_SIZE, dtype=np.float64)[:, None]
_n = np.arange(IMG_SIZE, dtype=np.float64)[None, :]
# scipy.fftpack.dct type II, norm=None: y[k] = 2 * sum_n x[n] cos(pi k (2n + 1) / (2N))
_DCT8 = 2.0 * np.cos(np.pi * _k * (2.0 * _n + 1.0) / (2.0 * IMG_SIZE))
_DCT8_T = np.ascontiguousarray(_DCT8.T)
# A coefficient this close to the median may compare differently under other rounding; the
# worst-case float error of either method on uint8 32x32 input is below 2e-7.
_GUARD = 1e-4


def _bits_to_int(bits: np.ndarray) -> int:
    """Row-major booleans, most significant first, as imagehash's hex string reads them."""
    return int.from_bytes(np.packbits(bits.ravel()).tobytes(), "big")


def hash_from_pixels(pixels: np.ndarray) -> int:
    """The pHash of a 32x32 uint8 luma array (already resized)."""
    x = pixels.astype(np.float64)
    low = _DCT8 @ x @ _DCT8_T
    med = np.median(low)
    if np.min(np.abs(low - med)) > _GUARD:
        return _bits_to_int(low > med)
    import scipy.fftpack  # only here: 45 MB of imports, for a rare case

    dct = scipy.fftpack.dct(scipy.fftpack.dct(pixels, axis=0), axis=1)
    exact = dct[:HASH_SIZE, :HASH_SIZE]
    return _bits_to_int(exact > np.median(exact))


def luma(img: Image.Image) -> Image.Image:
    """imagehash's first step, `convert('L')`; for the few modes Pillow cannot convert to L
    (La, LAB), imagehash would fail, and we take the luma of our RGB rendering instead."""
    if img.mode == "L":
        return img
    try:
        return img.convert("L")
    except ValueError:
        return to_rgb(img).convert("L")


def phash_of_luma(gray: Image.Image, pixels: np.ndarray | None = None) -> int:
    """The pHash of a mode-L image that is already imagehash's luma (`luma`'s result).

    `pixels`, when given, must be `np.asarray(gray)`, which a caller holding it passes so
    the pixels are not copied out of Pillow a second time."""
    small = resize_l_32(gray, pixels)
    if small is None:
        small = np.asarray(gray.resize((IMG_SIZE, IMG_SIZE), Image.Resampling.LANCZOS))
    return hash_from_pixels(small)


def phash_from_image(img: Image.Image) -> int:
    """The pHash of an already decoded (or lazily opened) Pillow image, as an unsigned int."""
    return phash_of_luma(luma(img))


def phash_bytes(data: bytes, max_pixels: int) -> int:
    """The pHash of encoded image bytes (first frame), decoded safely at full resolution."""
    return phash_from_image(decode_image(data, max_pixels).image)


def phash_and_mirror(data: bytes, max_pixels: int) -> tuple[int, int]:
    """The pHash of encoded image bytes and the pHash of their left-right mirror, from one
    decode (a repost is often mirrored, and a mirror's pHash is far from the original's)."""
    gray = luma(decode_image(data, max_pixels).image)
    small = resize_l_32(gray)
    if small is None:
        small = np.asarray(gray.resize((IMG_SIZE, IMG_SIZE), Image.Resampling.LANCZOS))
    return hash_from_pixels(small), hash_from_pixels(np.ascontiguousarray(small[:, ::-1]))
