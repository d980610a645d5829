"""The finder's job handlers: a request's steps (link finder, reverse search), account scans,
image indexing, and the maintenance chores.

A query goes `finder.link` (find the artwork's images and accounts, hash the artwork, ask
for the scans it needs) → `finder.scan` per account that needs one (list the posts newer than
the cursor, queue their images) → `finder.index` (download and hash each image, in batches) →
`finder.search` (once no account of the request is being scanned: compare the hashes). When
no account needs a scan, the link step searches itself: a warm query is one job.
Every step may run twice: requests only move forward, rows are keyed by the network's ids,
and an account's cursor moves only once every post it listed is indexed, so a kill at any
moment leaves the database consistent. A step that keeps failing ends its request with
`PROCESSING_ERROR` and the traceback in the log (AOTF's error collector); the worker goes on.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from sleuth.apps.finder import networks
from sleuth.apps.finder import requests as reqs
from sleuth.apps.finder.aotf import QUERY_BLOB
from sleuth.apps.finder.firstimage import NoUsableImage, fetch_first_image
from sleuth.apps.finder.linkfinder import LinkFinder, LinkFinderError
from sleuth.apps.finder.matching import Query, search_accounts, search_everything
from sleuth.apps.finder.models import accounts, images, posts
from sleuth.apps.finder.scans import record_account, scanning, want_scan
from sleuth.apps.finder.settings import NAME, FinderSettings
from sleuth.apps.finder.tasks import (
    BACKGROUND,
    INDEX,
    LINK,
    MAINTAIN,
    SCAN,
    SEARCH,
    Chore,
    IndexJob,
    RequestJob,
    ScanJob,
)
from sleuth.imaging.errors import ImageError
from sleuth.imaging.hashes import phash_from_db, phash_to_db
from sleuth.imaging.phash import phash_and_mirror
from sleuth.jobs.worker import BatchKind, JobContext, JobKind, Kind, Outcome, Retry
from sleuth.net.errors import FetchError
from sleuth.net.fetcher import Fetcher
from sleuth.services import Services
from sleuth.sources.profiles import AccountRef
from sleuth.sources.social import Account, Post, SourceError
from sleuth.store.upsert import insert_ignore_many

log = logging.getLogger(__name__)

WAIT_FOR_SCANS = 1.0  # seconds between two looks at the scans a request waits for
WAIT_FOR_IMAGES = 2.0  # seconds between two looks at a scan's images
GONE = frozenset({404, 410})  # a deleted image: stored as gone, never retried
UPDATE_BATCH = 100  # accounts put up for an update per chore run, at most


def hash_image(data: bytes, max_pixels: int) -> tuple[int, int] | str:
    """(pHash, mirrored pHash) of an image's bytes, or why it is not an image (CPU pool)."""
    try:
        return phash_and_mirror(data, max_pixels)
    except ImageError as exc:
        return str(exc)


def _as_account(row: Any) -> Account:
    """The connector's account from its row (what a scan needs to page it)."""
    return Account(
        network=row.network,
        id=row.account_id,
        username=row.username.split("@", 1)[0] if row.network == "mastodon" else row.username,
        server=row.server,
        acct=row.username,
        display_name="",
        url=row.url,
    )


class FinderPipeline:
    """The finder's handlers, bound to one set of services."""

    def __init__(self, services: Services, fetcher: Fetcher) -> None:
        self.services = services
        self.fetcher = fetcher
        self.engine = services.engine
        self.cfg: FinderSettings = services.settings.app(NAME)
        self.sources = services.settings.sources
        self.max_pixels = services.settings.imaging.max_pixels

    def kinds(self) -> list[Kind]:
        return [
            JobKind(LINK, self.link),
            JobKind(SCAN, self.scan),
            BatchKind(INDEX, self.index),
            JobKind(SEARCH, self.search),
            JobKind(MAINTAIN, self.maintain),
        ]

    # -- requests ------------------------------------------------------------------------------

    def _request(self, request_id: str) -> reqs.FinderRequest | None:
        with self.engine.connect() as conn:
            return reqs.get(conn, request_id, time.time())

    async def _finish(self, request_id: str, **kw: Any) -> None:
        await asyncio.to_thread(reqs.finish, self.engine, request_id, time.time(), **kw)

    async def _give_up_or_retry(self, request_id: str, ctx: JobContext, exc: Exception) -> None:
        """A step failed: let the job be retried, or on its last attempt end the request with
        PROCESSING_ERROR, the traceback in the log."""
        if ctx.job.attempts < self._attempts(ctx):
            raise exc
        log.error("request %s failed; ends with PROCESSING_ERROR", request_id, exc_info=exc)
        await self._finish(request_id, error="PROCESSING_ERROR")

    def _attempts(self, ctx: JobContext) -> int:
        return {LINK.queue: LINK, SEARCH.queue: SEARCH}[ctx.job.queue].max_attempts

    async def link(self, job: RequestJob, ctx: JobContext) -> None:
        request = await asyncio.to_thread(self._request, job.request)
        if request is None or request.finished or request.url is None:
            return
        now = time.time()
        ctx.start_cpu()  # the artwork is hashed once found: its pool process starts meanwhile
        await asyncio.to_thread(reqs.advance, self.engine, request.id, reqs.LINK_FINDER, now)
        found: dict[AccountRef, Account] = {}

        async def exists(ref: AccountRef) -> bool:
            try:
                account = await networks.lookup(self.fetcher, self.sources, ref)
            except SourceError as exc:
                if exc.retryable:
                    raise
                log.info("request %s: %s is not usable: %s", request.id, ref, exc)
                return False
            if account.private:
                return False
            found[ref] = account
            return True

        finder = LinkFinder(self.fetcher, self.sources, exists, block_list=self.cfg.block_list)
        try:
            page = await finder.page(request.url)
            # The accounts are looked for while the image downloads; the link finder's error,
            # if any, is the request's.
            result, first = await asyncio.gather(
                finder.result(page),
                fetch_first_image(self.fetcher, page.image_urls, headers=page.image_headers),
                return_exceptions=True,
            )
            if isinstance(result, BaseException):
                raise result
            if isinstance(first, BaseException):
                raise first
            hashed = await ctx.run_cpu(hash_image, first.body, self.max_pixels)
        except LinkFinderError as exc:
            if exc.code == "PROCESSING_ERROR":
                await self._give_up_or_retry(request.id, ctx, exc)
            else:
                await self._finish(request.id, error=exc.code)
            return
        except NoUsableImage as exc:
            log.info("request %s: %s", request.id, exc)
            await self._finish(request.id, error="ERROR_DURING_REVERSE_SEARCH")
            return
        except (SourceError, FetchError) as exc:  # a network that is down or limits us
            await self._give_up_or_retry(request.id, ctx, exc)
            return
        if isinstance(hashed, str):
            await self._finish(request.id, error="ERROR_DURING_REVERSE_SEARCH")
            return
        chosen = [found[ref] for ref in result.accounts]
        artwork_at = result.created_at.timestamp() if result.created_at else None
        first_time, to_scan = await asyncio.to_thread(self._ask_for_scans, chosen, artwork_at, now)
        await asyncio.to_thread(
            reqs.advance,
            self.engine,
            request.id,
            reqs.WAIT_INDEX,
            now,
            accounts=[reqs.Account(a.network, a.id, a.acct.lower(), a.url) for a in chosen],
            has_first_time_scan=first_time,
            hashes=(phash_to_db(hashed[0]), phash_to_db(hashed[1])),
            artwork_at=artwork_at,
        )
        for account in to_scan:
            key = f"scan:{account.network}:{account.id}"
            await ctx.send(SCAN, ScanJob(account.network, account.id), dedup_key=key)
        if not to_scan and await self._search_now(request.id):
            return
        await ctx.send(SEARCH, RequestJob(request.id), dedup_key=f"search:{request.id}")

    async def _search_now(self, request_id: str) -> bool:
        """The search of a request whose accounts need no scan, in the link step rather than
        one queue round trip later; False when it must wait for the search step after all (a
        scan began meanwhile, or the search failed: that step retries it)."""
        request = await asyncio.to_thread(self._request, request_id)
        if request is None or request.finished:
            return True
        try:
            await self._search_query(request, time.time())
        except Retry:
            return False
        except Exception:
            log.warning("request %s: search left to its own step", request_id, exc_info=True)
            return False
        return True

    def _ask_for_scans(
        self, chosen: Sequence[Account], artwork_at: float | None, now: float
    ) -> tuple[bool, list[Account]]:
        """Record the accounts and ask for the scans the artwork needs: an account never
        scanned, or scanned before the artwork was made (less the margin). Returns whether
        one is scanned for the first time, and the accounts to scan."""
        margin = self.cfg.artwork_margin_days * 86400.0
        first_time = False
        to_scan = []
        with self.engine.begin() as conn:
            for account in chosen:
                scanned_at = record_account(conn, account)
                if scanned_at is None:
                    first_time = True
                elif artwork_at is not None and artwork_at <= scanned_at - margin:
                    continue  # the last scan saw it
                want_scan(conn, account.network, account.id, now)
                to_scan.append(account)
        return first_time, to_scan

    async def search(self, job: RequestJob, ctx: JobContext) -> None:
        request = await asyncio.to_thread(self._request, job.request)
        if request is None or request.finished:
            return
        now = time.time()
        if now - request.created_at > self.cfg.request_timeout:
            await self._finish(request.id, error="PROCESSING_ERROR")
            return
        try:
            if request.kind == "query":
                await self._search_query(request, now)
            else:
                await self._search_image(request, ctx, now)
        except Retry:
            raise
        except Exception as exc:
            await self._give_up_or_retry(request.id, ctx, exc)

    async def _search_query(self, request: reqs.FinderRequest, now: float) -> None:
        keys = [(a["network"], a["account_id"]) for a in request.accounts]
        with self.engine.connect() as conn:
            busy = await asyncio.to_thread(scanning, conn, keys)
        if busy:
            await asyncio.to_thread(reqs.advance, self.engine, request.id, reqs.INDEX, now)
            raise Retry(after=WAIT_FOR_SCANS, reason=f"{busy} account scan(s) to finish")
        await asyncio.to_thread(reqs.advance, self.engine, request.id, reqs.SEARCH, now)
        if request.phash is None or request.phash_mirror is None:
            await self._finish(request.id, error="ERROR_DURING_REVERSE_SEARCH")
            return
        query = Query(
            phash_from_db(request.phash), phash_from_db(request.phash_mirror), self.cfg.max_distance
        )
        results = await asyncio.to_thread(self._match, query, keys, now)
        await self._finish(request.id, results=results)

    def _match(
        self, query: Query, keys: Sequence[tuple[str, str]], now: float
    ) -> list[reqs.Result]:
        with self.engine.begin() as conn:
            found = search_accounts(conn, query, keys)
            if keys:
                key = sa.tuple_(accounts.c.network, accounts.c.account_id).in_(list(keys))
                conn.execute(
                    sa.update(accounts)
                    .where(key)
                    .values(last_use=now, uses_count=accounts.c.uses_count + 1)
                )
        return found

    async def _search_image(self, request: reqs.FinderRequest, ctx: JobContext, now: float) -> None:
        await asyncio.to_thread(reqs.advance, self.engine, request.id, reqs.SEARCH, now)
        path = self.services.blobs.path(request.id, QUERY_BLOB)
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            await self._finish(request.id, error="CANNOT_GET_IMAGE")
            return
        hashed = await ctx.run_cpu(hash_image, data, self.max_pixels)
        if isinstance(hashed, str):
            await self._finish(request.id, error="CANNOT_GET_IMAGE")
        else:
            query = Query(hashed[0], hashed[1], self.cfg.max_distance)
            error, results = await asyncio.to_thread(self._search_uploaded, request, query)
            await self._finish(request.id, error=error, results=results)
        await asyncio.to_thread(self.services.blobs.delete, request.id, QUERY_BLOB)

    def _search_uploaded(
        self, request: reqs.FinderRequest, query: Query
    ) -> tuple[str | None, list[reqs.Result]]:
        with self.engine.connect() as conn:
            if request.account_name is None:
                return None, search_everything(conn, query)
            rows = conn.execute(
                sa.select(accounts.c.network, accounts.c.account_id, accounts.c.scanned_at).where(
                    accounts.c.username == request.account_name
                )
            ).all()
            if not rows:
                return "INVALID_TWITTER_ACCOUNT", []
            scanned = [(r.network, r.account_id) for r in rows if r.scanned_at is not None]
            if not scanned:
                return "TWITTER_ACCOUNT_NOT_INDEXED", []
            return None, search_accounts(conn, query, scanned)

    # -- scans ---------------------------------------------------------------------------------

    def _hold(self, job: ScanJob, owner: str, now: float) -> Any | None:
        """Take the account for this scan (one at a time); its row, or None when another
        scan holds it."""
        key = sa.and_(accounts.c.network == job.network, accounts.c.account_id == job.account_id)
        free = sa.or_(
            accounts.c.scan_owner.is_(None),
            accounts.c.scan_owner == owner,
            accounts.c.scan_owner_until < now,
        )
        with self.engine.begin() as conn:
            taken = conn.execute(
                sa.update(accounts)
                .where(key, free)
                .values(scan_owner=owner, scan_owner_until=now + SCAN.lease)
            ).rowcount
            if taken != 1:
                return None
            return conn.execute(sa.select(accounts).where(key)).first()

    async def scan(self, job: ScanJob, ctx: JobContext) -> None:
        now = time.time()
        owner = ctx.job.id
        row = await asyncio.to_thread(self._hold, job, owner, now)
        if row is None:
            exists = await asyncio.to_thread(self._account_exists, job)
            if not exists:
                return
            raise Retry(after=5.0, reason="another scan of this account runs")
        account = _as_account(row)
        try:
            if row.pending_cursor is None:
                await self._list(account, row.cursor, owner)
            pending = await asyncio.to_thread(self._pending_images, account)
            if pending:
                net = account.network
                # A waiting user's scan indexes at its priority; a background update at its own.
                await ctx.send_many(
                    dataclasses.replace(INDEX, priority=ctx.job.priority),
                    [
                        (IndexJob(net, post, position), f"index:{net}:{post}:{position}")
                        for post, position in pending
                    ],
                )
                raise Retry(after=WAIT_FOR_IMAGES, reason=f"{len(pending)} images to index")
            await asyncio.to_thread(self._scanned, account, owner, time.time())
        except SourceError as exc:
            if exc.retryable and ctx.job.attempts < SCAN.max_attempts:
                raise
            await asyncio.to_thread(self._scan_failed, account, owner, str(exc))

    def _account_exists(self, job: ScanJob) -> bool:
        with self.engine.connect() as conn:
            query = sa.select(accounts.c.account_id).where(
                accounts.c.network == job.network, accounts.c.account_id == job.account_id
            )
            return conn.execute(query).first() is not None

    async def _list(self, account: Account, cursor: str | None, owner: str) -> None:
        """List the posts newer than `cursor`, page by page, each page in one transaction;
        then keep the newest id as the pending cursor."""
        newest: str | None = None
        async for page in networks.posts_since(self.fetcher, self.sources, account, cursor):
            if page and newest is None:
                newest = page[0].id
            await asyncio.to_thread(self._save_page, account, page, owner)
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(accounts)
                .where(accounts.c.network == account.network, accounts.c.account_id == account.id)
                .values(
                    pending_cursor=newest or cursor or "", scan_owner_until=time.time() + SCAN.lease
                )
            )

    def _save_page(self, account: Account, page: list[Post], owner: str) -> None:
        now = time.time()
        post_rows = [
            {
                "network": p.network,
                "post_id": p.id,
                "account_id": account.id,
                "url": p.url,
                "created_at": p.created_at.timestamp() if p.created_at else now,
                "images_count": len(p.images),
            }
            for p in page
        ]
        image_rows = [
            {
                "network": p.network,
                "post_id": p.id,
                "position": image.position,
                "account_id": account.id,
                "media_url": image.url,
                "state": "pending",
                "phash": None,
                "phash_mirror": None,
                "attempts": 0,
                "last_error": None,
                "updated_at": now,
            }
            for p in page
            for image in p.images
        ]
        with self.engine.begin() as conn:
            insert_ignore_many(conn, posts, post_rows)
            insert_ignore_many(conn, images, image_rows)  # an indexed image stays indexed
            conn.execute(
                sa.update(accounts)
                .where(
                    accounts.c.network == account.network,
                    accounts.c.account_id == account.id,
                    accounts.c.scan_owner == owner,
                )
                .values(scan_owner_until=now + SCAN.lease)
            )

    def _pending_images(self, account: Account) -> list[tuple[str, int]]:
        with self.engine.connect() as conn:
            query = sa.select(images.c.post_id, images.c.position).where(
                images.c.network == account.network,
                images.c.account_id == account.id,
                images.c.state == "pending",
            )
            return [(r.post_id, r.position) for r in conn.execute(query)]

    def _scanned(self, account: Account, owner: str, now: float) -> None:
        """Every listed post is indexed: the pending cursor becomes the cursor."""
        key = sa.and_(accounts.c.network == account.network, accounts.c.account_id == account.id)
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(accounts)
                .where(key, accounts.c.scan_owner == owner)
                .values(
                    cursor=sa.func.coalesce(
                        sa.func.nullif(accounts.c.pending_cursor, ""), accounts.c.cursor
                    ),
                    pending_cursor=None,
                    scanned_at=now,
                    scan_error=None,
                    scan_owner=None,
                    scan_owner_until=None,
                )
            )

    def _scan_failed(self, account: Account, owner: str, error: str) -> None:
        """The scan cannot go on: the account keeps its cursor, the requests stop waiting."""
        log.warning("scan of %s:%s failed: %s", account.network, account.id, error)
        key = sa.and_(accounts.c.network == account.network, accounts.c.account_id == account.id)
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(accounts)
                .where(key, accounts.c.scan_owner == owner)
                .values(
                    scan_wanted_at=None,
                    scan_error=error,
                    pending_cursor=None,
                    scan_owner=None,
                    scan_owner_until=None,
                )
            )

    # -- images --------------------------------------------------------------------------------

    async def index(self, jobs: list[IndexJob], ctx: JobContext) -> list[Outcome]:
        rows = await asyncio.to_thread(self._to_index, jobs)
        bodies = await asyncio.gather(*(self._download(row.media_url) for row in rows))
        # The batch's images are hashed at once: each pool process takes one.
        hashes = await asyncio.gather(
            *(
                ctx.run_cpu(hash_image, body, self.max_pixels)
                for body in bodies
                if not isinstance(body, FetchError)
            )
        )
        hashed_bodies = iter(hashes)
        now = time.time()
        updates: list[dict[str, Any]] = []
        for row, body in zip(rows, bodies, strict=True):
            key = {"network": row.network, "post_id": row.post_id, "position": row.position}
            if isinstance(body, FetchError):
                gone = body.status in GONE
                updates.append(
                    {
                        **key,
                        "state": "gone" if gone else "failed",
                        "phash": None,
                        "phash_mirror": None,
                        "last_error": str(body),
                    }
                )
                continue
            hashed = next(hashed_bodies)
            if isinstance(hashed, str):
                updates.append(
                    {
                        **key,
                        "state": "failed",
                        "phash": None,
                        "phash_mirror": None,
                        "last_error": hashed,
                    }
                )
            else:
                updates.append(
                    {
                        **key,
                        "state": "indexed",
                        "phash": phash_to_db(hashed[0]),
                        "phash_mirror": phash_to_db(hashed[1]),
                        "last_error": None,
                    }
                )
        await asyncio.to_thread(self._save_images, updates, now)
        return [None] * len(jobs)

    def _to_index(self, jobs: Sequence[IndexJob]) -> list[Any]:
        keys = [(j.network, j.post_id, j.position) for j in jobs]
        key = sa.tuple_(images.c.network, images.c.post_id, images.c.position).in_(keys)
        with self.engine.connect() as conn:
            query = sa.select(images).where(key, images.c.state == "pending")
            return list(conn.execute(query).all())

    async def _download(self, url: str) -> bytes | FetchError:
        try:
            result = await self.fetcher.get(url, expect="image")
        except FetchError as exc:
            return exc
        return result.body

    def _save_images(self, updates: Sequence[dict[str, Any]], now: float) -> None:
        if not updates:
            return
        with self.engine.begin() as conn:
            for u in updates:
                conn.execute(
                    sa.update(images)
                    .where(
                        images.c.network == u["network"],
                        images.c.post_id == u["post_id"],
                        images.c.position == u["position"],
                    )
                    .values(
                        state=u["state"],
                        phash=u["phash"],
                        phash_mirror=u["phash_mirror"],
                        last_error=u["last_error"],
                        attempts=images.c.attempts + 1,
                        updated_at=now,
                    )
                )

    # -- maintenance ---------------------------------------------------------------------------

    async def maintain(self, chore: Chore, ctx: JobContext) -> None:
        now = time.time()
        if chore.what == "purge":
            gone = await asyncio.to_thread(reqs.purge, self.engine, now)
            log.info("purged %d finished requests", gone)
        elif chore.what == "update":
            for network, account_id in await asyncio.to_thread(self._stale_accounts, now):
                key = f"bgscan:{network}:{account_id}"
                await ctx.send(
                    SCAN, ScanJob(network, account_id), dedup_key=key, priority=BACKGROUND
                )
        elif chore.what == "retry":
            again = await asyncio.to_thread(self._failed_images, now)
            await ctx.send_many(
                INDEX,
                [(IndexJob(n, p, i), f"index:{n}:{p}:{i}") for n, p, i in again],
            )
        else:
            raise ValueError(f"unknown finder chore {chore.what!r}")

    def _stale_accounts(self, now: float) -> list[tuple[str, str]]:
        """Accounts not scanned for `update_days`, the oldest first, a share of them per run
        so that updates spread over the period instead of coming all at once."""
        cutoff = now - self.cfg.update_days * 86400.0
        with self.engine.begin() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(accounts)).scalar_one()
            runs = max(1, round(self.cfg.update_days * 24))  # the chore runs hourly
            share = min(UPDATE_BATCH, max(1, -(-int(total) // runs)))
            rows = conn.execute(
                sa.select(accounts.c.network, accounts.c.account_id)
                .where(accounts.c.scanned_at < cutoff)
                .order_by(accounts.c.scanned_at)
                .limit(share)
            ).all()
            for r in rows:
                want_scan(conn, r.network, r.account_id, now)
        return [(r.network, r.account_id) for r in rows]

    def _failed_images(self, now: float) -> list[tuple[str, str, int]]:
        """Failed images not tried for `retry_images_hours`, back to pending."""
        cutoff = now - self.cfg.retry_images_hours * 3600.0
        stale = sa.and_(images.c.state == "failed", images.c.updated_at < cutoff)
        with self.engine.begin() as conn:
            rows = conn.execute(
                sa.select(images.c.network, images.c.post_id, images.c.position).where(stale)
            ).all()
            conn.execute(sa.update(images).where(stale).values(state="pending", updated_at=now))
        return [(r.network, r.post_id, r.position) for r in rows]
