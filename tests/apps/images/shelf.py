"""Real images stored the way the pipeline stores them, for the search tests.

Each image is a photo-like picture of the emulator's world, encoded, decoded and hashed by the
same kernel as a crawl (`process_image`), its gray copy put in the blob store, then recorded by
`store_image` for a line of a crawl (so sources, crawl lines and counters are real too).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import sqlalchemy as sa
from PIL import Image

from sleuth.apps.images.crawl import open_crawl
from sleuth.apps.images.models import ImageContent, images
from sleuth.apps.images.pipeline import GRAY_EXT
from sleuth.apps.images.records import Item, store_image
from sleuth.crawl.models import QUEUED, crawl_run_items
from sleuth.emulator.world import photo
from sleuth.imaging.hashes import md5_hex
from sleuth.imaging.process import process_image
from sleuth.services import Services

MAX_PIXELS = 64_000_000


def jpeg(img: Image.Image, quality: int = 90) -> bytes:
    out = io.BytesIO()
    img.save(out, "JPEG", quality=quality)
    return out.getvalue()


def picture(n: int, size: tuple[int, int] = (240, 180)) -> Image.Image:
    """Photo number `n` of world 0: different numbers are different scenes."""
    return photo(0, n, *size)


def copy_of(img: Image.Image, scale: float = 0.6, quality: int = 60) -> bytes:
    """A repost: resized and re-encoded as JPEG."""
    w, h = img.size
    return jpeg(img.resize((round(w * scale), round(h * scale)), Image.Resampling.LANCZOS), quality)


@dataclass
class Stored:
    md5: str
    phash: int
    url: str
    crawl: str


@dataclass
class Shelf:
    """Puts images into a database; `put` is one crawl line that stored (or re-found) one."""

    services: Services
    lines: dict[str, int] = field(default_factory=dict)

    def crawl(self, crawl: str) -> None:
        if crawl not in self.lines:
            open_crawl(self.services.engine, crawl, f"{crawl}.txt")
            self.lines[crawl] = 0

    def put(
        self, data: bytes, url: str, crawl: str = "crawl-a", *, md5: str | None = None
    ) -> Stored:
        """Store encoded image bytes found at `url` by `crawl` (`md5` forces the key)."""
        self.crawl(crawl)
        self.lines[crawl] += 1
        line = self.lines[crawl]
        processed = process_image(data, MAX_PIXELS)
        self.services.blobs.put(processed.gray_digest, GRAY_EXT, processed.gray)
        with self.services.engine.begin() as conn:
            conn.execute(
                sa.insert(crawl_run_items).values(
                    run_id=crawl, item_key=str(line), target=url, state=QUEUED
                )
            )
        image = ImageContent(
            md5=md5 or md5_hex(data),
            bytes=len(data),
            width=processed.width,
            height=processed.height,
            phash=processed.phash,
            gray_key=processed.gray_digest,
            format=processed.format,
            mode=processed.mode,
        )
        store_image(self.services.engine, Item(crawl=crawl, line=line, url=url), image)
        return Stored(image.md5, processed.phash, url, crawl)

    def put_picture(self, n: int, host: str = "a.example", crawl: str = "crawl-a") -> Stored:
        return self.put(jpeg(picture(n)), f"http://{host}/photos/{n}.jpg", crawl)

    def first_seen(self, md5: str) -> float:
        with self.services.engine.connect() as conn:
            return float(
                conn.execute(sa.select(images.c.first_seen).where(images.c.md5 == md5)).scalar_one()
            )

    def backdate(self, md5: str, first_seen: float) -> None:
        """Give an image an earlier `first_seen`: a transaction that took its time, then
        committed after newer ones."""
        with self.services.engine.begin() as conn:
            conn.execute(sa.update(images).where(images.c.md5 == md5).values(first_seen=first_seen))
