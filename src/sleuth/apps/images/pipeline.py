"""The images pipeline: `fetch` → (`md5` ∥ `grayscale`) → `store`, one queue per stage.

`fetch` downloads a line's URL into an in-flight blob and fans out to `md5` and `grayscale`;
each of those records its part of a fan-in group in the queue backend; whichever completes
the group enqueues `store` (deduplicated), which writes the image once per MD5 and resolves
the line. Every stage can run twice without changing the result: a resolved line is skipped,
blobs are content-addressed or overwritten atomically, and the store is an idempotent upsert.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sleuth.apps.images.records import Item, StoredImage, is_resolved, record_error, store_image
from sleuth.imaging.decode import ImageError
from sleuth.imaging.process import md5_hex, process_image
from sleuth.jobs.tasks import Task
from sleuth.jobs.worker import JobContext, JobKind, Retry
from sleuth.net.errors import FetchError
from sleuth.net.fetcher import Fetcher
from sleuth.services import Services
from sleuth.store.blobs import BlobStore

INFLIGHT_EXT = "orig"
GRAY_EXT = "gray"
# A host cooling down for longer than this is rescheduled rather than waited for.
MAX_POLITE_WAIT = 0.5

P = TypeVar("P")


@dataclass(frozen=True)
class Md5Part:
    """What the md5 stage hands to `store`."""

    md5: str
    size: int


@dataclass(frozen=True)
class GrayResult:
    """What the grayscale stage hands to `store` (the gray pixels themselves are a blob)."""

    width: int
    height: int
    phash: int
    gray_key: str
    format: str
    mode: str


@dataclass(frozen=True)
class ImageRejected:
    """The grayscale stage's other outcome: the bytes are not an image it accepts."""

    reason: str
    detail: str


@dataclass(frozen=True)
class StorePayload:
    """A line whose md5 and grayscale parts are both in (the line's fields flat, as a fetch
    job's payload)."""

    crawl: str
    line: int
    url: str
    md5: Md5Part
    gray: GrayResult

    @property
    def item(self) -> Item:
        return Item(self.crawl, self.line, self.url)


# Later stages go first, so an image in flight is finished before new ones are fetched:
# in-flight originals stay few and results appear from the first seconds of a crawl.
FETCH = Task("images.fetch", Item, priority=0)
MD5 = Task("images.md5", Item, priority=1)
GRAYSCALE = Task("images.grayscale", Item, priority=1)
STORE = Task("images.store", StorePayload, priority=2)
TASKS = (FETCH, MD5, GRAYSCALE, STORE)
QUEUES = tuple(task.queue for task in TASKS)


def grayscale_task(blob_root: str, key: str, max_pixels: int) -> GrayResult | ImageRejected:
    """Runs in the CPU pool: decode the in-flight original, store its lossless gray copy.

    Paths go in and a small record comes out, so megabytes never cross the process pipe."""
    blobs = BlobStore(blob_root)
    data = blobs.get(key, INFLIGHT_EXT)
    try:
        result = process_image(data, max_pixels=max_pixels)
    except ImageError as exc:
        return ImageRejected(exc.reason, exc.detail)
    blobs.put(result.gray_digest, GRAY_EXT, result.gray)
    return GrayResult(
        width=result.width,
        height=result.height,
        phash=result.phash,
        gray_key=result.gray_digest,
        format=result.format,
        mode=result.mode,
    )


class ImagesPipeline:
    """The job handlers of the images app, bound to one set of services."""

    def __init__(self, services: Services, fetcher: Fetcher) -> None:
        self.services = services
        self.fetcher = fetcher
        self.engine = services.engine
        self.blobs = services.blobs
        self.max_pixels = services.settings.imaging.max_pixels

    def kinds(self) -> list[JobKind[Any]]:
        """The pipeline's tasks with their handlers, leases and attempts as configured."""
        w = self.services.settings.worker

        def configured(task: Task[P]) -> Task[P]:
            return dataclasses.replace(task, max_attempts=w.max_attempts, lease=w.lease_seconds)

        return [
            JobKind(configured(FETCH), self.fetch),
            JobKind(configured(MD5), self.md5),
            JobKind(configured(GRAYSCALE), self.grayscale),
            JobKind(configured(STORE), self.store),
        ]

    async def _resolved(self, item: Item) -> bool:
        return await asyncio.to_thread(is_resolved, self.engine, item)

    async def _fail(
        self, item: Item, ctx: JobContext, reason: str, detail: str, status: int | None = None
    ) -> None:
        await asyncio.to_thread(record_error, self.engine, item, reason, detail, status)
        await self._cleanup(item, ctx)

    async def _cleanup(self, item: Item, ctx: JobContext) -> None:
        await asyncio.to_thread(self.blobs.delete, item.key, INFLIGHT_EXT)
        await ctx.forget_join(item.key)

    async def fetch(self, item: Item, ctx: JobContext) -> None:
        if await self._resolved(item):
            return
        # The host clock may be shared (Redis or the database): ask off the event loop.
        wait = await asyncio.to_thread(self.fetcher.wait_time, item.url)
        if wait > MAX_POLITE_WAIT:
            raise Retry(after=wait, reason="host cooling down")
        try:
            result = await self.fetcher.fetch(item.url, expect_image=True)
        except FetchError as exc:  # the fetcher has retried what was worth retrying
            await self._fail(item, ctx, exc.reason, exc.detail, exc.status)
            return
        await asyncio.to_thread(self.blobs.put, item.key, INFLIGHT_EXT, result.body, overwrite=True)
        await ctx.send(MD5, item, dedup_key=f"md5:{item.key}")
        await ctx.send(GRAYSCALE, item, dedup_key=f"gray:{item.key}")

    async def _join(
        self, item: Item, part: str, value: Md5Part | GrayResult, ctx: JobContext
    ) -> None:
        parts = await ctx.join(item.key, part, dataclasses.asdict(value), ("md5", "gray"))
        if parts is not None:
            payload = STORE.decode({**dataclasses.asdict(item), **parts})
            await ctx.send(STORE, payload, dedup_key=f"store:{item.key}")

    def _original(self, item: Item) -> Path | None:
        path = self.blobs.path(item.key, INFLIGHT_EXT)
        return path if path.exists() else None

    async def md5(self, item: Item, ctx: JobContext) -> None:
        if await self._resolved(item):
            # A fetch delivered twice may have left a new original after `store` ran.
            await self._cleanup(item, ctx)
            return
        path = self._original(item)
        if path is None:
            raise RuntimeError(f"in-flight original of {item.key} is missing")
        data = await asyncio.to_thread(path.read_bytes)
        digest = await asyncio.to_thread(md5_hex, data)
        await self._join(item, "md5", Md5Part(digest, len(data)), ctx)

    async def grayscale(self, item: Item, ctx: JobContext) -> None:
        if await self._resolved(item):
            # A fetch delivered twice may have left a new original after `store` ran.
            await self._cleanup(item, ctx)
            return
        if self._original(item) is None:
            raise RuntimeError(f"in-flight original of {item.key} is missing")
        out = await ctx.run_cpu(grayscale_task, str(self.blobs.root), item.key, self.max_pixels)
        if isinstance(out, ImageRejected):
            await self._fail(item, ctx, out.reason, out.detail)
            return
        await self._join(item, "gray", out, ctx)

    async def store(self, payload: StorePayload, ctx: JobContext) -> None:
        item = payload.item
        gray = dataclasses.asdict(payload.gray)
        image = StoredImage(md5=payload.md5.md5, size=payload.md5.size, **gray)
        await asyncio.to_thread(store_image, self.engine, item, image)
        await self._cleanup(item, ctx)
