"""The images pipeline: `fetch` → (`md5` ∥ `grayscale`) → `store`, one queue per stage.

`fetch` downloads a line's URL into an in-flight blob, hashing the bytes while it has them,
and fans out to `md5` and `grayscale`; those record their part of a fan-in group in the queue
backend; whichever completes the group sends `store` (deduplicated), which writes the image
once per MD5 and resolves the line. `md5`, `grayscale` and `store` take their jobs in batches
(one fan-in round trip, one CPU-pool call per few images reading the blob by path, one
database transaction per batch), and settle each job on its own. Every stage can run twice
without changing the result: a resolved line is skipped, blobs are content-addressed or
overwritten atomically, and the store is an idempotent upsert.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from sleuth.apps.images import app
from sleuth.apps.images.app import INFLIGHT_EXT
from sleuth.apps.images.models import ImageContent, Pixels
from sleuth.apps.images.records import (
    Item,
    is_resolved,
    record_error,
    resolved_items,
    store_images,
)
from sleuth.imaging.errors import ImageError
from sleuth.imaging.hashes import md5_hex
from sleuth.jobs.tasks import Task
from sleuth.jobs.worker import BatchKind, JobContext, JobKind, Kind, Outcome, Retry
from sleuth.net.errors import FetchError
from sleuth.net.fetcher import Fetcher
from sleuth.services import Services
from sleuth.store.blobs import BlobStore

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
class _LineJob:
    """A job about one line: the line's fields flat, as in a fetch job's payload."""

    crawl: str
    line: int
    url: str

    @property
    def item(self) -> Item:
        return Item(self.crawl, self.line, self.url)


@dataclass(frozen=True)
class Md5Job(_LineJob):
    """A fetched line and the MD5 of its bytes, taken by `fetch` while it held them (absent
    in jobs sent before fetch hashed: then the md5 stage reads the in-flight original)."""

    md5: str | None = None
    size: int | None = None


@dataclass(frozen=True)
class ImageRejected:
    """The grayscale stage's other outcome: the bytes are not an image it accepts."""

    reason: str
    detail: str


@dataclass(frozen=True)
class StorePayload(_LineJob):
    """A line whose md5 and grayscale parts are both in."""

    md5: Md5Part
    gray: Pixels


# Later stages go first, so an image in flight is finished before new ones are fetched:
# in-flight originals stay few and results appear from the first seconds of a crawl.
# Batches wait at most 50 ms to fill. md5 and store: up to 64 jobs, two batches in flight.
# grayscale: smaller batches, more in flight, so that the CPU pool always has work queued
# while the jobs a worker holds stay as few (a worker killed with kill -9 delays them all).
FETCH = Task(app.FETCH, Item, priority=0)
MD5 = Task(app.MD5, Md5Job, priority=1, batch=64, batch_wait=0.05)
GRAYSCALE = Task(app.GRAYSCALE, Item, priority=1, batch=16, batch_wait=0.05, concurrency=8)
STORE = Task(app.STORE, StorePayload, priority=2, batch=64, batch_wait=0.05)
PARTS = ("md5", "gray")
# Images per CPU-pool call: few enough that a batch spreads over every process of the pool,
# enough that the call's own cost (a pickle round trip of paths and results) is shared.
CPU_CHUNK = 4
KERNEL = "sleuth.imaging.process"


def grayscale_task(
    blob_root: str, keys: list[str], max_pixels: int
) -> list[Pixels | ImageRejected]:
    """Runs in the CPU pool: decode each in-flight original, store its lossless gray copy.

    Paths go in and small records come out, so megabytes never cross the process pipe. The
    kernel is imported here, not by the module, which the worker's own process imports too:
    numpy and Pillow stay in the pool (whose fork server preloads `KERNEL`)."""
    from sleuth.imaging.process import process_image

    blobs = BlobStore(blob_root)
    out: list[Pixels | ImageRejected] = []
    for key in keys:
        data = blobs.get(key, INFLIGHT_EXT)
        try:
            result = process_image(data, max_pixels=max_pixels)
        except ImageError as exc:
            out.append(ImageRejected(exc.reason, exc.detail))
            continue
        blobs.put(result.gray_digest, GRAY_EXT, result.gray)
        out.append(
            Pixels(
                width=result.width,
                height=result.height,
                phash=result.phash,
                gray_key=result.gray_digest,
                format=result.format,
                mode=result.mode,
            )
        )
    return out


class ImagesPipeline:
    """The job handlers of the images app, bound to one set of services."""

    def __init__(self, services: Services, fetcher: Fetcher) -> None:
        self.services = services
        self.fetcher = fetcher
        self.engine = services.engine
        self.blobs = services.blobs
        self.max_pixels = services.settings.imaging.max_pixels

    def kinds(self) -> list[Kind]:
        """The pipeline's tasks with their handlers, leases and attempts as configured."""
        w = self.services.settings.worker

        def configured(task: Task[P]) -> Task[P]:
            return dataclasses.replace(task, max_attempts=w.max_attempts, lease=w.lease_seconds)

        return [
            JobKind(configured(FETCH), self.fetch),
            BatchKind(configured(MD5), self.md5),
            BatchKind(configured(GRAYSCALE), self.grayscale, cpu_modules=(KERNEL,)),
            BatchKind(configured(STORE), self.store),
        ]

    async def _fail(
        self, item: Item, ctx: JobContext, reason: str, detail: str, status: int | None = None
    ) -> None:
        await asyncio.to_thread(record_error, self.engine, item, reason, detail, status)
        await self._cleanup([item], ctx)

    async def _cleanup(self, items: list[Item], ctx: JobContext) -> None:
        """Drop what the lines had in flight: originals and fan-in groups."""
        if items:
            await asyncio.to_thread(self._delete_originals, items)
            await ctx.forget_joins([item.key for item in items])

    def _delete_originals(self, items: list[Item]) -> None:
        for item in items:
            self.blobs.delete(item.key, INFLIGHT_EXT)

    async def _unresolved(self, items: list[Item], ctx: JobContext) -> set[Item]:
        """The items still to do; resolved ones (a fetch delivered twice may have left a new
        original after `store` ran) have their leftovers cleaned up."""
        done = await asyncio.to_thread(resolved_items, self.engine, items)
        await self._cleanup([item for item in items if item in done], ctx)
        return set(items) - done

    async def fetch(self, item: Item, ctx: JobContext) -> None:
        if await asyncio.to_thread(is_resolved, self.engine, item):
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
        digest = await asyncio.to_thread(self._keep_original, item, result.body)
        md5_job = Md5Job(item.crawl, item.line, item.url, digest, len(result.body))
        await ctx.send(MD5, md5_job, dedup_key=f"md5:{item.key}")
        await ctx.send(GRAYSCALE, item, dedup_key=f"gray:{item.key}")

    def _keep_original(self, item: Item, body: bytes) -> str:
        """Write the in-flight original and hash it, while the bytes are in memory."""
        self.blobs.put(item.key, INFLIGHT_EXT, body, overwrite=True)
        return md5_hex(body)

    async def _join(
        self, ctx: JobContext, entries: list[tuple[Item, str, Md5Part | Pixels]]
    ) -> None:
        """Record the parts; send `store` for every line whose parts are all in."""
        rows = [(item.key, part, dataclasses.asdict(value)) for item, part, value in entries]
        groups = await ctx.join_many(rows, PARTS)
        stores = [
            (STORE.decode({**dataclasses.asdict(item), **parts}), f"store:{item.key}")
            for (item, _, _), parts in zip(entries, groups, strict=True)
            if parts is not None
        ]
        if stores:
            await ctx.send_many(STORE, stores)

    def _original(self, item: Item) -> Path | None:
        path = self.blobs.path(item.key, INFLIGHT_EXT)
        return path if path.exists() else None

    def _hash_original(self, item: Item) -> Md5Part:
        path = self._original(item)
        if path is None:
            raise RuntimeError(f"in-flight original of {item.key} is missing")
        data = path.read_bytes()
        return Md5Part(md5_hex(data), len(data))

    async def md5(self, jobs: list[Md5Job], ctx: JobContext) -> list[Outcome]:
        todo = await self._unresolved([job.item for job in jobs], ctx)
        outcomes: list[Outcome] = [None] * len(jobs)
        entries: list[tuple[Item, str, Md5Part | Pixels]] = []
        for i, job in enumerate(jobs):
            if job.item not in todo:
                continue
            if job.md5 is not None and job.size is not None:
                entries.append((job.item, "md5", Md5Part(job.md5, job.size)))
                continue
            try:
                part = await asyncio.to_thread(self._hash_original, job.item)
            except RuntimeError as exc:
                outcomes[i] = exc
            else:
                entries.append((job.item, "md5", part))
        await self._join(ctx, entries)
        return outcomes

    async def grayscale(self, items: list[Item], ctx: JobContext) -> list[Outcome]:
        todo = await self._unresolved(items, ctx)
        outcomes: list[Outcome] = [None] * len(items)
        present: list[int] = []
        for i, item in enumerate(items):
            if item not in todo:
                continue
            if self._original(item) is None:
                outcomes[i] = RuntimeError(f"in-flight original of {item.key} is missing")
            else:
                present.append(i)
        root = str(self.blobs.root)
        chunks = [present[at : at + CPU_CHUNK] for at in range(0, len(present), CPU_CHUNK)]
        results = await asyncio.gather(
            *(
                ctx.run_cpu(grayscale_task, root, [items[i].key for i in chunk], self.max_pixels)
                for chunk in chunks
            ),
            return_exceptions=True,
        )
        entries: list[tuple[Item, str, Md5Part | Pixels]] = []
        for chunk, got in zip(chunks, results, strict=True):
            if isinstance(got, BaseException):
                for i in chunk:  # the pool failed (a process died): these run again
                    outcomes[i] = got
                continue
            for i, out in zip(chunk, got, strict=True):
                if isinstance(out, ImageRejected):
                    await self._fail(items[i], ctx, out.reason, out.detail)
                else:
                    entries.append((items[i], "gray", out))
        await self._join(ctx, entries)
        return outcomes

    async def store(self, payloads: list[StorePayload], ctx: JobContext) -> None:
        stored = [
            (
                payload.item,
                ImageContent(md5=payload.md5.md5, bytes=payload.md5.size, **vars(payload.gray)),
            )
            for payload in payloads
        ]
        await asyncio.to_thread(store_images, self.engine, stored)
        await self._cleanup([item for item, _ in stored], ctx)
