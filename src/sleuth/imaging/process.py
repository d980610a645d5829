"""The per-image CPU kernel of the images app: one decode, then gray copy and pHash.

Pure functions of their arguments, importable by reference, so they run unchanged in a
`ProcessPoolExecutor`; what they return is small apart from the packed gray bytes.

Where one image's CPU goes (`bench/kernel.py`, corpus means, `bench/RESULTS.md`): decode
~36%, the gray container (up filter + zstd) ~21%, pHash's 32x32 LANCZOS resize and DCT ~16%,
the (R+G+B)/3 and BT.601 luma conversions ~12% and ~8%. Each is done once: both conversions
read the one decoded image, and for single-channel sources whose gray is Pillow's own
`convert("L")` (L, LA, 1) that image and its one numpy copy are also the pHash input.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from sleuth.imaging.decode import decode_image
from sleuth.imaging.encode import pack_gray
from sleuth.imaging.gray import gray_image
from sleuth.imaging.phash import luma, phash_of_luma

# Modes whose gray (`decode.single_channel`) is made by the very call imagehash's luma makes,
# Pillow's `convert("L")` (or is the image itself, for L).
GRAY_IS_LUMA = frozenset({"L", "LA", "1"})


@dataclass(frozen=True)
class ProcessedImage:
    """What one image yields. `mode`/`format` describe the original (Pillow names);
    `gray` is the `pack_gray` container and `gray_digest` the SHA-256 hex of those bytes,
    which names its content-addressed blob (SHA-256 rather than BLAKE2/MD5: with the CPU's
    SHA extensions it is the fastest of the three here, ~1 GB/s)."""

    width: int
    height: int
    mode: str
    format: str
    frames: int
    phash: int
    gray: bytes
    gray_digest: str


def process_image(data: bytes, max_pixels: int) -> ProcessedImage:
    """Decode `data` once at full resolution (first frame, pixels as stored) and derive the
    exact (R+G+B)/3 gray copy and the imagehash-identical pHash from that one decode.

    Raises `ImageError` with a stable reason for anything that is not a decodable image."""
    decoded = decode_image(data, max_pixels)
    gray = gray_image(decoded.image)
    gray_pixels = np.asarray(gray)
    packed = pack_gray(decoded.width, decoded.height, gray_pixels)
    if decoded.mode in GRAY_IS_LUMA:
        phash = phash_of_luma(gray, gray_pixels)
    else:
        phash = phash_of_luma(luma(decoded.image))
    return ProcessedImage(
        width=decoded.width,
        height=decoded.height,
        mode=decoded.mode,
        format=decoded.format,
        frames=decoded.frames,
        phash=phash,
        gray=packed,
        gray_digest=hashlib.sha256(packed).hexdigest(),
    )
