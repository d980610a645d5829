"""Download an artwork's image: the largest URL that gives a usable one.

The original may be over the download cap, a decompression bomb (a small file declaring a huge
canvas) or gone; then the next, smaller URL is tried, as AOTF did. Only the header of each
image is decoded here, so a bomb costs nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sleuth.imaging.decode import open_image
from sleuth.imaging.errors import ImageError
from sleuth.net.errors import FetchError
from sleuth.net.fetcher import Fetcher

MAX_IMAGE_BYTES = 20 * 1024 * 1024
"""AOTF's limit on an artwork's file (its `File_Too_Big`)."""
MAX_IMAGE_PIXELS = 64_000_000


class NoUsableImage(Exception):
    """Not one URL gave a usable image; `failures` says why each did not, in order."""

    def __init__(self, failures: Sequence[tuple[str, str]]) -> None:
        self.failures = tuple(failures)
        text = "; ".join(f"{url}: {why}" for url, why in self.failures) or "no image URL"
        super().__init__(f"no usable image: {text}")


@dataclass(frozen=True)
class FirstImage:
    """The image downloaded, from `url`, after the `skipped` URLs (with why)."""

    url: str
    body: bytes
    image_type: str
    width: int
    height: int
    skipped: tuple[tuple[str, str], ...]


async def fetch_first_image(
    fetcher: Fetcher,
    urls: Sequence[str],
    *,
    headers: Mapping[str, str] | None = None,
    max_bytes: int = MAX_IMAGE_BYTES,
    max_pixels: int = MAX_IMAGE_PIXELS,
) -> FirstImage:
    """The first of `urls` (largest first) that downloads within `max_bytes` as an image of at
    most `max_pixels`; `NoUsableImage` when none does."""
    failures: list[tuple[str, str]] = []
    for url in urls:
        try:
            result = await fetcher.get(
                url, expect="image", headers=dict(headers or {}), max_bytes=max_bytes
            )
            picture = open_image(result.body, max_pixels)
        except FetchError as exc:
            failures.append((url, str(exc)))
            continue
        except ImageError as exc:
            failures.append((url, str(exc)))
            continue
        return FirstImage(
            url,
            result.body,
            result.image_type or "",
            picture.width,
            picture.height,
            tuple(failures),
        )
    raise NoUsableImage(failures)
