"""The images pipeline: `fetch` → (`md5` ∥ `grayscale`) → `store`, one queue per stage.

`fetch` downloads a line's URL into an in-flight blob and fans out to `md5` and `grayscale`;
each of those records its part of a fan-in group in the queue backend; whichever completes
the group enqueues `store` (deduplicated), which writes the image once per MD5 and resolves
the line. Every stage can run twice without changing the result: a resolved line is skipped,
blobs are content-addressed or overwritten atomically, and the store is an idempotent upsert.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from pathlib import Path

from sleuth.apps.images.app import FETCH, GRAYSCALE, INFLIGHT_EXT, MD5, STORE
from sleuth.apps.images.models import ImageContent, Pixels
from sleuth.apps.images.records import Item, is_resolved, record_error, store_image
from sleuth.imaging.decode import ImageError
from sleuth.imaging.process import md5_hex, process_image
from sleuth.jobs.base import Job
from sleuth.jobs.worker import JobContext, JobKind, Retry
from sleuth.net.errors import FetchError
from sleuth.net.fetcher import Fetcher
from sleuth.services import Services
from sleuth.store.blobs import BlobStore

# Later stages go first, so an image in flight is finished before new ones are fetched:
# in-flight originals stay few and results appear from the first seconds of a crawl.
STAGE_PRIORITY = {FETCH: 0, MD5: 1, GRAYSCALE: 1, STORE: 2}

GRAY_EXT = "gray"
# A host cooling down for longer than this is rescheduled rather than waited for.
MAX_POLITE_WAIT = 0.5


def grayscale_task(blob_root: str, key: str, max_pixels: int) -> dict:
    """Runs in the CPU pool: decode the in-flight original, store its lossless gray copy.

    Paths go in and a small dict comes out, so megabytes never cross the process pipe."""
    blobs = BlobStore(blob_root)
    data = blobs.get(key, INFLIGHT_EXT)
    try:
        result = process_image(data, max_pixels=max_pixels)
    except ImageError as exc:
        return {"error": exc.reason, "detail": exc.detail}
    blobs.put(result.gray_digest, GRAY_EXT, result.gray)
    return asdict(
        Pixels(
            width=result.width,
            height=result.height,
            phash=result.phash,
            gray_key=result.gray_digest,
            format=result.format,
            mode=result.mode,
        )
    )


class ImagesPipeline:
    """The job handlers of the images app, bound to one set of services."""

    def __init__(self, services: Services, fetcher: Fetcher) -> None:
        self.services = services
        self.fetcher = fetcher
        self.engine = services.engine
        self.blobs = services.blobs
        self.max_pixels = services.settings.imaging.max_pixels

    def kinds(self) -> list[JobKind]:
        w = self.services.settings.worker
        handlers = {FETCH: self.fetch, MD5: self.md5, GRAYSCALE: self.grayscale, STORE: self.store}
        return [
            JobKind(queue, handler, max_attempts=w.max_attempts, lease=w.lease_seconds)
            for queue, handler in handlers.items()
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

    async def fetch(self, job: Job, ctx: JobContext) -> None:
        item = Item.from_payload(job.payload)
        if await self._resolved(item):
            return
        # The host clock may be shared (Redis or the database): ask off the event loop.
        wait = await asyncio.to_thread(self.fetcher.wait_time, item.url)
        if wait > MAX_POLITE_WAIT:
            raise Retry(after=wait, reason="host cooling down")
        try:
            result = await self.fetcher.get(item.url, expect="image")
        except FetchError as exc:  # the fetcher has retried what was worth retrying
            await self._fail(item, ctx, exc.reason, exc.detail, exc.status)
            return
        await asyncio.to_thread(self.blobs.put, item.key, INFLIGHT_EXT, result.body, overwrite=True)
        payload = item.payload()
        for queue, name in ((MD5, "md5"), (GRAYSCALE, "gray")):
            await ctx.enqueue(
                queue, payload, priority=STAGE_PRIORITY[queue], dedup_key=f"{name}:{item.key}"
            )

    async def _join(self, item: Item, part: str, value: dict, ctx: JobContext) -> None:
        parts = await ctx.join(item.key, part, value, ("md5", "gray"))
        if parts is not None:
            payload = {**item.payload(), "md5": parts["md5"], "gray": parts["gray"]}
            await ctx.enqueue(
                STORE, payload, priority=STAGE_PRIORITY[STORE], dedup_key=f"store:{item.key}"
            )

    def _original(self, item: Item) -> Path | None:
        path = self.blobs.path(item.key, INFLIGHT_EXT)
        return path if path.exists() else None

    async def md5(self, job: Job, ctx: JobContext) -> None:
        item = Item.from_payload(job.payload)
        if await self._resolved(item):
            # A fetch delivered twice may have left a new original after `store` ran.
            await self._cleanup(item, ctx)
            return
        path = self._original(item)
        if path is None:
            raise RuntimeError(f"in-flight original of {item.key} is missing")
        data = await asyncio.to_thread(path.read_bytes)
        digest = await asyncio.to_thread(md5_hex, data)
        await self._join(item, "md5", {"md5": digest, "size": len(data)}, ctx)

    async def grayscale(self, job: Job, ctx: JobContext) -> None:
        item = Item.from_payload(job.payload)
        if await self._resolved(item):
            # A fetch delivered twice may have left a new original after `store` ran.
            await self._cleanup(item, ctx)
            return
        if self._original(item) is None:
            raise RuntimeError(f"in-flight original of {item.key} is missing")
        out = await ctx.run_cpu(grayscale_task, str(self.blobs.root), item.key, self.max_pixels)
        if "error" in out:
            await self._fail(item, ctx, out["error"], out["detail"])
            return
        await self._join(item, "gray", out, ctx)

    async def store(self, job: Job, ctx: JobContext) -> None:
        item = Item.from_payload(job.payload)
        md5, gray = job.payload["md5"], job.payload["gray"]
        image = ImageContent(md5=md5["md5"], bytes=md5["size"], **gray)
        await asyncio.to_thread(store_image, self.engine, item, image)
        await self._cleanup(item, ctx)
