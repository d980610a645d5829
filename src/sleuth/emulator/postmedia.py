"""The images of the ArtWorld's posts as the social networks' media servers serve them: the
bytes of each (rendered once, then kept in a bounded cache, since a scan and its re-runs ask
for the same files), with the content type and file extension of their format. Shared by the
X, Mastodon and Bluesky emulators."""

from __future__ import annotations

from collections.abc import Iterable

from flask import Response

from sleuth.emulator.artworld import ArtWorld, PostImage
from sleuth.emulator.world import ByteLRU

CACHE_BYTES = 128 * 1024 * 1024
MIME_TYPES = {"jpeg": "image/jpeg", "webp": "image/webp", "png": "image/png"}
EXTENSIONS = {"jpeg": "jpg", "webp": "webp", "png": "png"}


def image_format(image: PostImage) -> str:
    """How the image is encoded: an artwork's copy as its transform says, a photo as JPEG."""
    return image.transform.fmt if image.artwork is not None else "jpeg"


class PostMedia:
    """Serves post images of one world; thread-safe."""

    def __init__(self, world: ArtWorld, cache_bytes: int = CACHE_BYTES) -> None:
        self.world = world
        self._cache = ByteLRU(cache_bytes)

    def body(self, image: PostImage) -> bytes:
        data = self._cache.get(image.media_id)
        if data is None:
            data = self.world.post_image_bytes(image)
            self._cache.put(image.media_id, data)
        return data

    def keep(self, images: Iterable[PostImage]) -> int:
        """Render `images` now and keep every one, the cache growing to hold them, so that a
        timed run asking for them measures its client and not the rendering (which shares
        the machine's cores); returns their bytes."""
        bodies = {image.media_id: self.body(image) for image in images}
        total = sum(len(data) for data in bodies.values())
        self._cache.max_bytes = max(self._cache.max_bytes, self._cache.size_bytes + total)
        for key, data in bodies.items():
            self._cache.put(key, data)
        return total

    def response(self, image: PostImage) -> Response:
        """The image's bytes with its content type."""
        return Response(self.body(image), 200, content_type=MIME_TYPES[image_format(image)])
