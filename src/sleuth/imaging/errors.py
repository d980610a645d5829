"""Why bytes could not become pixels: `ImageError` and its reason words.

Its own module so that a caller that only catches or reports the error (the pipeline's main
process, the API) does not import the decoder and its libraries."""

from __future__ import annotations

REASONS = frozenset(
    {"not_image", "unsupported", "truncated", "corrupt", "too_many_pixels", "bad_blob"}
)


class ImageError(Exception):
    """Bytes that cannot become pixels. `reason` is a stable machine word (one of `REASONS`):
    not_image, unsupported, truncated, corrupt, too_many_pixels, bad_blob (a stored gray blob
    that fails validation); `detail` is for humans."""

    def __init__(self, reason: str, detail: str) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown image error reason {reason!r}")
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}"
