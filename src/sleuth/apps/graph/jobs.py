"""The graph app's job kinds on the crawl layer: every operation on an account is an item.

A crawl is a run; its items are the seeds (`seed:N`, on the analysis queue), each operation on
an account (`T:`, `F:`, `following:`, `U:` + network + node id, on their own queues) and each
analysis of the accounts one page met (`A:` + network + account + list + page). An item's
target (JSON) carries the crawl's plan, so the item alone gives its job again (`retry-errors`)
and the accounts it finds get the same operations.

Followers and follows are read a page at a time: each page's accounts, its edges, its cursor
and the items it gives rise to commit in one transaction, and the jobs of those items are
queued after it; a kill re-reads at most one page (and a resumed command queues the jobs of
items a kill left without one). A cursor sent back unchanged fails the item `stuck_cursor`; an
empty first page of an account that counts some is recorded as hidden. A failure that waiting
may cure (a 429, a 5xx, a timeout) is raised for the queue to retry later; any other fails the
item with its reason.

Each page of followers or follows and each page of a timeline, once committed, is told on the
`graph` channel of the live events (`observe.events`): `{"type": "followers"|"following"|
"timeline", "network", "account", "page", "items", "state", "at"}` (`page` numbers the pages
of that operation on that account, from 1; a U's event has `"page": null` and its new posts).
(network, account, type, page) makes an event unique: a job run again tells its page again.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from sqlalchemy import Connection

from sleuth.apps.graph.app import (
    ANALYSIS_QUEUE,
    CRAWLED,
    FOLLOWERS_QUEUE,
    FOLLOWING_QUEUE,
    HIDDEN,
    NAME,
    TIMELINE_QUEUE,
    UPDATE_QUEUE,
)
from sleuth.apps.graph.models import DONE, REJECTED, RUNNING, SEEN, SELECTED
from sleuth.apps.graph.models import HIDDEN as HIDDEN_LIST
from sleuth.apps.graph.networks import (
    FOLLOWERS,
    FOLLOWING,
    TIMELINE,
    follows_page,
    lookup,
    node_id,
    parse_seed,
    posts_page,
)
from sleuth.apps.graph.records import (
    Cursor,
    add_edges,
    add_posts,
    merge_timeline,
    neighbours,
    nodes,
    reach,
    read_cursor,
    read_timeline,
    save_cursor,
    set_lang,
    set_state,
    upsert_node,
)
from sleuth.apps.graph.select import Selector, parse
from sleuth.crawl import runs
from sleuth.jobs.tasks import Task
from sleuth.jobs.worker import JobContext, JobKind, Retry
from sleuth.net.fetcher import Fetcher
from sleuth.observe.events import live_events
from sleuth.services import Services
from sleuth.sources import bluesky
from sleuth.sources.social import Account, Post, SourceError, newer
from sleuth.store.retry import in_transaction

T, F, FOLLOWING_OP, A, U, SEED = "T", "F", "following", "A", "U", "seed"
OPERATIONS = (T, F, FOLLOWING_OP)  # what a crawl may run on each account it selects
BFS, DFS, FRONTIER = "bfs", "dfs", "frontier"
ORDERS = (BFS, DFS, FRONTIER)
# --frontier: seeds and analyses first (they choose the accounts and learn their counts), then
# the operations of the most-followed accounts, in powers of two of their followers (a few
# priority levels, not one per count: the Redis queue keeps a stream per level).
FRONTIER_FIRST = 64
STORED_BATCH = 100  # accounts per analysis of a list stored by an earlier crawl


@dataclass(frozen=True)
class Plan:
    """What a crawl does: the operations on each selected account, whether A selects the
    accounts lists meet (by `select`; without A every one is selected), how many hops from
    the seeds accounts are selected, and in which order the queue serves them: the nearest
    first (BFS), the deepest first (DFS) or the most-followed first (FRONTIER)."""

    operations: tuple[str, ...]
    analyse: bool = False
    select: str | None = None
    depth: int = 1
    order: str = BFS

    def __post_init__(self) -> None:
        unknown = set(self.operations) - set(OPERATIONS)
        if unknown:
            raise ValueError(f"unknown operations {sorted(unknown)}: they are {OPERATIONS}")
        if self.order not in ORDERS:
            raise ValueError(f"the order is one of {ORDERS}, not {self.order!r}")
        if self.depth < 0:
            raise ValueError("the depth is 0 or more")
        if self.select is not None:
            parse(self.select)

    @property
    def selector(self) -> Selector | None:
        return parse(self.select) if self.analyse and self.select else None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Plan:
        return cls(**{**data, "operations": tuple(data["operations"])})


@dataclass(frozen=True)
class GraphJob:
    """An item of a graph crawl to work on: its run and key, and its target (JSON)."""

    run: str
    key: str
    target: str


TASKS = {
    queue: Task(queue, GraphJob)
    for queue in (ANALYSIS_QUEUE, TIMELINE_QUEUE, FOLLOWERS_QUEUE, FOLLOWING_QUEUE, UPDATE_QUEUE)
}
_QUEUE_OF = {
    SEED: ANALYSIS_QUEUE,
    A: ANALYSIS_QUEUE,
    T: TIMELINE_QUEUE,
    F: FOLLOWERS_QUEUE,
    FOLLOWING_OP: FOLLOWING_QUEUE,
    U: UPDATE_QUEUE,
}


def seed_item(run: str, number: int, text: str, plan: Plan) -> runs.RunItem:
    target = {"op": SEED, "seed": text, "depth": 0, "plan": plan.to_json()}
    return runs.RunItem(run, f"seed:{number}", json.dumps(target))


def account_item(
    run: str,
    op: str,
    network: str,
    account: str,
    depth: int,
    plan: Plan,
    followers: int | None = None,
) -> runs.RunItem:
    """An operation on an account; `followers`, its count when known, ranks it in the
    FRONTIER order."""
    target = {"op": op, "network": network, "id": account, "depth": depth, "followers": followers}
    return runs.RunItem(
        run, f"{op}:{network}:{account}", json.dumps(target | {"plan": plan.to_json()})
    )


def _analysis_item(
    run: str, network: str, ids: list[str], depth: int, plan: Plan, where: str
) -> runs.RunItem:
    target = {"op": A, "network": network, "ids": ids, "depth": depth}
    return runs.RunItem(run, f"A:{network}:{where}", json.dumps(target | {"plan": plan.to_json()}))


def _priority(target: dict[str, Any], order: str) -> int:
    depth = int(target["depth"])
    if order == DFS:
        return depth
    if order == FRONTIER:
        if target["op"] in (SEED, A):
            return FRONTIER_FIRST
        return int(target.get("followers") or 0).bit_length()
    return -depth


def item_job(item: runs.RunItem) -> runs.ItemJob:
    """An item's job: on its operation's queue, deeper ones later (BFS), sooner (DFS), or the
    most-followed accounts' sooner (FRONTIER)."""
    target = json.loads(item.target)
    plan = Plan.from_json(target["plan"])
    task = TASKS[_QUEUE_OF[target["op"]]]
    task = replace(task, priority=_priority(target, plan.order))
    return runs.ItemJob(
        task, GraphJob(item.run, item.key, item.target), f"graph:{item.run}:{item.key}"
    )


def _operations(
    run: str, network: str, account: str, depth: int, plan: Plan, followers: int | None
) -> list[runs.RunItem]:
    return [
        account_item(run, op, network, account, depth, plan, followers) for op in plan.operations
    ]


def _found(
    run: str,
    network: str,
    ids: list[str],
    depth: int,
    plan: Plan,
    where: str,
    followers: Mapping[str, int | None],
) -> list[runs.RunItem]:
    """The items of the accounts a list of an account at `depth` holds: one analysis of them
    (A), or every one's operations (with its count of `followers`, when known), unless they
    lie deeper than the plan goes."""
    if not ids or depth + 1 > plan.depth:
        return []
    if plan.analyse:
        return [_analysis_item(run, network, ids, depth + 1, plan, where)]
    return [
        i
        for other in ids
        for i in _operations(run, network, other, depth + 1, plan, followers.get(other))
    ]


def _main_lang(langs: Sequence[str | None]) -> str | None:
    counted = Counter(lang for lang in langs if lang)
    return counted.most_common(1)[0][0] if counted else None


@dataclass(frozen=True)
class _PageWrite:
    """One page of followers (or follows) written in one transaction: its accounts, its
    edges, the items it gives rise to, the cursor of the next page and, for the last page,
    the operation's outcome; returns the items whose jobs to queue once it commits. A
    transaction the database aborts to break a deadlock runs again whole."""

    job: GraphJob
    network: str
    ident: str
    kind: str
    depth: int
    plan: Plan
    home: str  # the server that listed the page (Mastodon)
    others: dict[str, Account]
    cursor: Cursor
    next: str | None
    state: str
    outcome: str | None

    def __call__(self, conn: Connection) -> list[runs.RunItem]:
        plan, depth, network = self.plan, self.depth, self.network
        chosen = SELECTED if depth + 1 <= plan.depth and not plan.analyse else SEEN
        for other in self.others.values():
            native = network != "mastodon" or other.server == self.home
            upsert_node(conn, other, depth + 1, chosen, native)
        ids = list(self.others)
        pairs = [(o, self.ident) if self.kind == FOLLOWERS else (self.ident, o) for o in ids]
        add_edges(conn, network, pairs)
        where = f"{self.ident}:{self.kind}:{self.cursor.pages}"
        counts = {i: o.followers_count for i, o in self.others.items()}
        found = _found(self.job.run, network, ids, depth, plan, where, counts)
        todo = runs.add_items_in(conn, found)
        held = self.cursor.found + len(ids)
        following = Cursor(self.next, self.cursor.pages + 1, held, self.state)
        save_cursor(conn, network, self.ident, self.kind, following)
        if self.outcome is not None:
            runs.resolve(conn, NAME, self.job.run, self.job.key, self.outcome)
        return todo


class Crawler:
    """The handlers of every graph queue, sharing one fetcher."""

    def __init__(self, services: Services, fetcher: Fetcher) -> None:
        self.engine = services.engine
        self.blobs = services.blobs
        self.sources = services.settings.sources
        self.timeline_pages = max(1, services.settings.app(NAME).timeline_pages)
        self.fetcher = fetcher
        self.events = live_events(services.queue)

    def _tell(
        self, kind: str, network: str, ident: str, page: int | None, items: int, state: str
    ) -> None:
        """Publish a stored page on the live events (after its transaction committed)."""
        event = {
            "type": kind,
            "network": network,
            "account": ident,
            "page": page,
            "items": items,
            "state": state,
            "at": time.time(),
        }
        self.events.publish(NAME, event)

    async def handle(self, job: GraphJob, ctx: JobContext) -> None:
        target = json.loads(job.target)
        try:
            await self._run(job, target, ctx)
        except SourceError as exc:
            if exc.reason == "rate_limited" and exc.retry_after is not None:
                # A budget that resets in minutes, a usage cap in weeks: the job waits for it
                # without spending its attempts, which a crawl at the ceiling would soon do.
                raise Retry(after=exc.retry_after, reason=str(exc)) from None
            if exc.retryable:
                raise
            with self.engine.begin() as conn:
                runs.fail(conn, NAME, job.run, job.key, exc.reason, exc.message, exc.status)

    async def _run(self, job: GraphJob, target: dict[str, Any], ctx: JobContext) -> None:
        op = target["op"]
        if runs.is_resolved(self.engine, job.run, job.key):
            return
        if op == SEED:
            await self._seed(job, target, ctx)
        elif op == A:
            await self._analyse(job, target, ctx)
        elif op in (F, FOLLOWING_OP):
            await self._follows(job, target, ctx, FOLLOWERS if op == F else FOLLOWING)
        elif op == T:
            await self._timeline(job, target)
        elif op == U:
            await self._update(job, target)
        else:
            raise SourceError("bad_input", f"no graph operation {op!r}")

    def _queue(self, ctx: JobContext, items: list[runs.RunItem]) -> None:
        if items:
            runs.enqueue_jobs(ctx.backend, (item_job(i) for i in items))

    async def _seed(self, job: GraphJob, target: dict[str, Any], ctx: JobContext) -> None:
        """Look the seed up, make it a selected node at depth 0 and queue its operations."""
        plan = Plan.from_json(target["plan"])
        network, name = parse_seed(target["seed"])
        account = await lookup(self.fetcher, self.sources, network, name)
        ident = node_id(account)
        with self.engine.begin() as conn:
            upsert_node(conn, account, 0, SELECTED)
            ops = _operations(job.run, network, ident, 0, plan, account.followers_count)
            todo = runs.add_items_in(conn, ops)
            runs.resolve(conn, NAME, job.run, job.key, CRAWLED, f"{network}:{ident}")
        self._queue(ctx, todo)

    async def _account(self, target: dict[str, Any]) -> Account:
        return await lookup(self.fetcher, self.sources, target["network"], target["id"])

    async def _follows(
        self, job: GraphJob, target: dict[str, Any], ctx: JobContext, kind: str
    ) -> None:
        """Read the account's followers (or follows) from its stored cursor to the end."""
        plan = Plan.from_json(target["plan"])
        depth = int(target["depth"])
        network, ident = target["network"], target["id"]
        expand = depth + 1 <= plan.depth
        account: Account | None = None  # read fresh before its first page, not before
        counted: int | None = None
        while True:
            with self.engine.connect() as conn:
                cursor = read_cursor(conn, network, ident, kind)
            if cursor.state != RUNNING:  # read to its end by an earlier crawl
                with self.engine.begin() as conn:
                    known = neighbours(conn, network, ident, kind)
                    counts = {i: n.followers_count for i, n in nodes(conn, network, known).items()}
                    if expand and not plan.analyse:
                        reach(conn, network, known, depth + 1, SELECTED)
                    else:
                        reach(conn, network, known, depth + 1)
                    items = [
                        item
                        for start in range(0, len(known), STORED_BATCH)
                        for item in _found(
                            job.run,
                            network,
                            known[start : start + STORED_BATCH],
                            depth,
                            plan,
                            f"{ident}:{kind}:stored:{start}",
                            counts,
                        )
                    ]
                    todo = runs.add_items_in(conn, items)
                    outcome = HIDDEN if cursor.state == HIDDEN_LIST else CRAWLED
                    runs.resolve(conn, NAME, job.run, job.key, outcome)
                self._queue(ctx, todo)
                return
            if account is None:
                account = await self._account(target)
                with self.engine.begin() as conn:
                    upsert_node(conn, account, depth)
                counted = account.followers_count if kind == FOLLOWERS else account.following_count
            page = await follows_page(self.fetcher, self.sources, account, kind, cursor.cursor)
            if page.next is not None and page.next == cursor.cursor:
                raise SourceError("stuck_cursor", f"{kind} of {account.acct}: the cursor repeats")
            first = cursor.pages == 0
            hidden = page.hidden or (
                first and not page.items and page.next is None and bool(counted)
            )
            state = HIDDEN_LIST if hidden else DONE if page.next is None else RUNNING
            write = _PageWrite(
                job,
                network,
                ident,
                kind,
                depth,
                plan,
                account.server,
                # in id order, so that workers writing the same nodes at once lock them alike
                dict(sorted((node_id(o), o) for o in page.items if node_id(o) != ident)),
                cursor,
                page.next,
                state,
                None if state == RUNNING else HIDDEN if hidden else CRAWLED,
            )
            self._queue(ctx, in_transaction(self.engine, write))
            self._tell(kind, network, ident, cursor.pages + 1, len(write.others), state)
            if state != RUNNING:
                return

    async def _analyse(self, job: GraphJob, target: dict[str, Any], ctx: JobContext) -> None:
        """Select among the accounts a page met those the rule keeps, and queue the
        operations of every selected one. Bluesky lists give no counts: they are read by
        getProfiles, 25 a call; `lang` (which no network gives an account) is the most
        frequent of its posts'."""
        plan = Plan.from_json(target["plan"])
        network, depth = target["network"], int(target["depth"])
        with self.engine.connect() as conn:
            stored = nodes(conn, network, target["ids"])
        # A selection sticks; a rejection is judged again (this crawl's rule may differ).
        chosen = [n.account_id for n in stored.values() if n.state == SELECTED]
        undecided = sorted(
            (n for n in stored.values() if n.state != SELECTED), key=lambda n: n.account_id
        )
        selector = plan.selector
        fresh: dict[str, Account] = {}
        if selector is not None and network == "bluesky":
            missing = [n.account_id for n in undecided if n.followers_count is None]
            if missing:
                for account in await bluesky.get_profiles(self.fetcher, self.sources, missing):
                    fresh[node_id(account)] = account
        langs: dict[str, str | None] = {}
        if selector is not None and "lang" in selector.fields:
            for node in undecided:
                if node.lang is None:
                    langs[node.account_id] = await self._lang(network, node.account_id)

        def write(conn: Connection) -> list[runs.RunItem]:
            for node in undecided:
                if node.account_id in fresh:
                    upsert_node(conn, fresh[node.account_id], node.depth)
                if node.account_id in langs:
                    set_lang(conn, network, node.account_id, langs[node.account_id])
            selected = list(chosen)
            with_counts = nodes(conn, network, sorted(n.account_id for n in undecided))
            for ident, node in with_counts.items():
                values = {
                    "network": network,
                    "handle": node.handle,
                    "lang": node.lang,
                    "statuses_count": node.statuses_count,
                    "followers_count": node.followers_count,
                    "following_count": node.following_count,
                    "depth": node.depth,
                }
                keep = selector is None or selector.matches(values)
                set_state(conn, network, ident, SELECTED if keep else REJECTED)
                if keep:
                    selected.append(ident)
            counts = {i: n.followers_count for i, n in (stored | with_counts).items()}
            items = [
                i
                for c in selected
                for i in _operations(job.run, network, c, depth, plan, counts.get(c))
            ]
            todo = runs.add_items_in(conn, items)
            runs.resolve(conn, NAME, job.run, job.key, CRAWLED, f"{len(selected)} selected")
            return todo

        self._queue(ctx, in_transaction(self.engine, write))

    async def _lang(self, network: str, ident: str) -> str | None:
        """The most frequent language of the account's latest posts (None: none says)."""
        try:
            account = await lookup(self.fetcher, self.sources, network, ident)
            page = await posts_page(self.fetcher, self.sources, account, None)
        except SourceError as exc:
            if exc.retryable:
                raise
            return None
        return _main_lang([p.lang for p in page.items])

    async def _timeline(self, job: GraphJob, target: dict[str, Any]) -> None:
        """Read the account's latest posts into its timeline blob, a page at a time: the blob
        is rewritten atomically, then the cursor committed (a page read twice is merged)."""
        network, ident = target["network"], target["id"]
        account: Account | None = None
        while True:
            with self.engine.connect() as conn:
                cursor = read_cursor(conn, network, ident, TIMELINE)
            if cursor.state != RUNNING:  # stored already: U brings it up to date
                with self.engine.begin() as conn:
                    runs.resolve(conn, NAME, job.run, job.key, CRAWLED)
                return
            if account is None:
                account = await self._account(target)
            page = await posts_page(self.fetcher, self.sources, account, cursor.cursor)
            if page.next is not None and page.next == cursor.cursor:
                raise SourceError("stuck_cursor", f"posts of {account.acct}: the cursor repeats")
            held = merge_timeline(self.blobs, network, ident, page.items)
            pages = cursor.pages + 1
            done = page.next is None or pages >= self.timeline_pages
            newest = _newest(cursor.newest, page.items)
            with self.engine.begin() as conn:
                upsert_node(conn, account, int(target["depth"]))
                add_posts(conn, ident, page.items)
                state = DONE if done else RUNNING
                save_cursor(
                    conn, network, ident, TIMELINE, Cursor(page.next, pages, held, state, newest)
                )
                if done:
                    lines = read_timeline(self.blobs, network, ident)
                    set_lang(conn, network, ident, _main_lang([p.get("lang") for p in lines]))
                    runs.resolve(conn, NAME, job.run, job.key, CRAWLED)
            self._tell(TIMELINE, network, ident, pages, len(page.items), state)
            if done:
                return

    async def _update(self, job: GraphJob, target: dict[str, Any]) -> None:
        """Add the posts newer than the stored timeline's newest (U)."""
        network, ident = target["network"], target["id"]
        with self.engine.connect() as conn:
            cursor = read_cursor(conn, network, ident, TIMELINE)
        account = await self._account(target)
        found: list[Post] = []
        following: str | None = None
        for _ in range(self.timeline_pages):
            page = await posts_page(self.fetcher, self.sources, account, following)
            fresh = [p for p in page.items if cursor.newest is None or newer(p.id, cursor.newest)]
            found += fresh
            if len(fresh) < len(page.items) or page.next is None or page.next == following:
                break
            following = page.next
        held = merge_timeline(self.blobs, network, ident, found)
        with self.engine.begin() as conn:
            add_posts(conn, ident, found)
            newest = _newest(cursor.newest, found)
            state = cursor.state if cursor.state != RUNNING else DONE
            save_cursor(
                conn,
                network,
                ident,
                TIMELINE,
                replace(cursor, found=held, state=state, newest=newest),
            )
            runs.resolve(conn, NAME, job.run, job.key, CRAWLED, f"{len(found)} new posts")
        self._tell(TIMELINE, network, ident, None, len(found), state)


def _newest(stored: str | None, posts: Sequence[Post]) -> str | None:
    best = stored
    for post in posts:
        if best is None or newer(post.id, best):
            best = post.id
    return best


def graph_kinds(services: Services, fetcher: Fetcher) -> list[JobKind[GraphJob]]:
    """Every graph queue's task with the worker's configured lease and attempts."""
    crawler = Crawler(services, fetcher)
    w = services.settings.worker
    return [
        JobKind(replace(task, max_attempts=w.max_attempts, lease=w.lease_seconds), crawler.handle)
        for task in TASKS.values()
    ]
