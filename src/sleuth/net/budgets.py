"""Rate-limit budgets per (host, source address), shared by every worker, so a crawl runs at a
source's announced ceiling and not over it; a host that counts each endpoint apart (X) has one
per (host endpoint, source address) too (`budget_key`).

A budget is what the last responses said (`net.ratelimit`), minus the requests claimed since.
Before a request, `claim` takes one from the remaining count, or says how long to wait: until the
window resets when it is spent, until a 429's `Retry-After` (or reset) has passed. After a
response, `observe` folds its headers in. The rules live in two pure functions (`claim`,
`observe`); the stores only keep budgets where every worker sees them:

- `MemoryBudgets`: one process;
- `RedisBudgets`: a hash per budget in the queue's Redis, changed in WATCH/MULTI transactions;
- `SqlBudgets`: the `rate_budgets` table, each change a read-modify-write under a row lock.

A host that never announced a budget has none: its requests cost one look-up a second per
worker (`ABSENT_TTL`), and no write. Times are epoch seconds of each worker's clock, assumed in
step (NTP), as for host clocks.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol

import redis
import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from sleuth.net.ratelimit import RateLimit
from sleuth.store.schema import metadata
from sleuth.store.upsert import insert_or_update

# A spent budget whose reset is unknown is trusted again this long after its last news.
UNKNOWN_RESET_WAIT = 60.0
# How often a wait for such a budget asks again.
UNKNOWN_RESET_POLL = 1.0
# How long a 429 that says neither Retry-After nor a reset blocks its budget.
DEFAULT_429_WAIT = 60.0
# A shared store remembers this long that a host has no budget, so that the requests of a host
# that announces none (most image hosts) cost no round trip; a budget another worker has just
# learnt is seen after at most this long.
ABSENT_TTL = 1.0
# Reset times of one window differ by a fraction of a second between answers (Mastodon's do).
SAME_WINDOW = 1.0
# A request claimed this close to its window's reset may reach the server after it, and count
# in the next window there: the next window starts with such requests already taken.
STRADDLE = 1.0

rate_budgets = sa.Table(
    "rate_budgets",
    metadata,
    sa.Column("host", sa.String(255), primary_key=True),
    sa.Column("source", sa.String(64), primary_key=True),
    sa.Column("quota", sa.Integer, nullable=True),  # the limit (LIMIT is an SQL keyword)
    sa.Column("remaining", sa.Integer, nullable=True),
    sa.Column("reset_at", sa.Double, nullable=True),
    sa.Column("blocked_until", sa.Double, nullable=True),
    sa.Column("updated_at", sa.Double, nullable=False, index=True),
    sa.Column("straddling", sa.Integer, nullable=False, server_default="0"),
)


def budget_key(host: str, budget: str = "") -> str:
    """The key of one of a host's budgets: the host itself for its only one (which, when the
    host also has per-endpoint ones, holds the blocks that stop them all: X's usage cap), and
    `host endpoint` for one a host counts per endpoint (X's `users/:id/followers`)."""
    return f"{host} {budget}" if budget else host


@dataclass(frozen=True)
class Budget:
    """One (host, source address) budget; `source` is "" for the system's default address.

    `limit`/`remaining`/`reset_at` are the window's (None: unknown); `blocked_until` is set by
    a 429 or a `Retry-After`; `updated_at` is when a response last told something;
    `straddling` counts the requests claimed within `STRADDLE` of the window's reset."""

    host: str
    source: str
    limit: int | None = None
    remaining: int | None = None
    reset_at: float | None = None
    blocked_until: float | None = None
    updated_at: float = 0.0
    straddling: int = 0

    def expires_at(self) -> float:
        """When this budget says nothing any more and may be forgotten."""
        times = [self.updated_at + UNKNOWN_RESET_WAIT, self.reset_at, self.blocked_until]
        return max(t for t in times if t is not None)


def as_of(budget: Budget, now: float) -> Budget:
    """The budget as it stands at `now`, changing nothing stored: once its window's reset has
    passed, a new window whose budget is whole but for the requests that straddled the reset,
    and whose end is unknown until an answer says it (what monitors show, and where `claim`
    starts)."""
    if budget.reset_at is not None and budget.reset_at <= now:
        whole = None if budget.limit is None else max(0, budget.limit - budget.straddling)
        return replace(budget, remaining=whole, reset_at=None, updated_at=now, straddling=0)
    return budget


def claim(budget: Budget, now: float) -> tuple[Budget, float]:
    """Take one request from `budget`: the budget after it and 0, or the budget unchanged (or
    only rolled into a new window) and the seconds to wait before asking again."""
    if budget.blocked_until is not None and budget.blocked_until > now:
        return budget, budget.blocked_until - now
    budget = as_of(budget, now)
    if budget.remaining is None:
        return budget, 0.0
    if budget.remaining > 0:
        late = budget.reset_at is not None and budget.reset_at - now < STRADDLE
        taken = replace(budget, remaining=budget.remaining - 1)
        return replace(taken, straddling=taken.straddling + 1) if late else taken, 0.0
    if budget.reset_at is not None:
        return budget, budget.reset_at - now
    trusted_at = budget.updated_at + UNKNOWN_RESET_WAIT
    if now < trusted_at:  # ask again soon: an answer in flight may tell the reset
        return budget, min(trusted_at - now, UNKNOWN_RESET_POLL)
    fresh = None if budget.limit is None else budget.limit - 1
    return replace(budget, remaining=fresh, updated_at=now), 0.0


def observe(budget: Budget, news: RateLimit, status: int, now: float) -> Budget | None:
    """`budget` with one response's headers folded in, or None when they change nothing (most
    answers within a window: the local count is already the smaller).

    Within one window the smaller remaining count wins: answers arrive out of order, and the
    requests claimed but not answered yet are already taken off the local count. An answer
    that arrives late from a window already over says nothing of the current one: neither its
    count (which would stop a fresh window's budget) nor its reset (which, already past, would
    make the next claim start yet another whole window, and the client overrun the server's),
    nor, when it is a 429, a block."""
    if not news.known and status != 429:
        return None
    limit = news.limit if news.limit is not None else budget.limit
    remaining, reset_at, straddling = budget.remaining, budget.reset_at, budget.straddling
    late = news.reset_at is not None and (
        (reset_at is None and budget.limit is not None and news.reset_at <= now)
        or (reset_at is not None and news.reset_at < reset_at - SAME_WINDOW)
    )
    stale = late or (news.reset_at is not None and news.reset_at < now - SAME_WINDOW)
    if not stale:
        if news.reset_at is not None and (
            reset_at is None or news.reset_at > reset_at + SAME_WINDOW
        ):
            if news.remaining is not None and reset_at is not None:
                remaining = news.remaining  # a later window than the one counted
                straddling = 0  # the server counted them in it already
            elif news.remaining is not None:
                remaining = news.remaining if remaining is None else min(remaining, news.remaining)
            reset_at = news.reset_at
        elif news.remaining is not None:
            remaining = news.remaining if remaining is None else min(remaining, news.remaining)
    still_blocked = (
        budget.blocked_until if budget.blocked_until and budget.blocked_until > now else None
    )
    blocked = still_blocked
    if news.retry_at is not None:
        blocked = max(blocked or 0.0, news.retry_at)
    if status == 429 and not late:
        if reset_at is not None and reset_at > now:
            remaining = 0  # spent until the reset; without one, the block alone says when
        if news.retry_at is None:
            until = reset_at if reset_at is not None and reset_at > now else now + DEFAULT_429_WAIT
            blocked = max(blocked or 0.0, until)
    if reset_at is not None and (limit, remaining, reset_at, blocked, straddling) == (
        budget.limit,
        budget.remaining,
        budget.reset_at,
        still_blocked,
        budget.straddling,
    ):
        return None  # said already (`updated_at` matters only while the reset is unknown)
    return replace(
        budget,
        limit=limit,
        remaining=remaining,
        reset_at=reset_at,
        blocked_until=blocked,
        updated_at=now,
        straddling=straddling,
    )


class BudgetStore(Protocol):
    """Where budgets live; every call is blocking (the fetcher runs shared ones off-loop)."""

    shared: bool

    def surely_absent(self, host: str, source: str, now: float) -> bool:
        """Whether there is no budget for sure, so `claim` and `peek` would answer 0; never a
        round trip (a shared store answers from what it found lately)."""
        ...

    def claim(self, host: str, source: str, now: float) -> float:
        """Claim one request: 0 when claimed, else the seconds to wait (nothing claimed)."""
        ...

    def peek(self, host: str, source: str, now: float) -> float:
        """The seconds `claim` would ask to wait now, claiming nothing."""
        ...

    def observe(self, host: str, source: str, news: RateLimit, status: int, now: float) -> None:
        """Fold a response's rate-limit headers (and a 429) into the budget."""
        ...

    def listing(self) -> list[Budget]:
        """Every budget known, for `/metrics` and monitors."""
        ...


class MemoryBudgets:
    """Budgets of one process."""

    shared = False

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._budgets: dict[tuple[str, str], Budget] = {}

    def surely_absent(self, host: str, source: str, now: float) -> bool:
        return (host, source) not in self._budgets

    def claim(self, host: str, source: str, now: float) -> float:
        with self._lock:
            current = self._budgets.get((host, source))
            if current is None:
                return 0.0
            self._budgets[host, source], wait = claim(current, now)
            return wait

    def peek(self, host: str, source: str, now: float) -> float:
        with self._lock:
            current = self._budgets.get((host, source))
        return 0.0 if current is None else claim(current, now)[1]

    def observe(self, host: str, source: str, news: RateLimit, status: int, now: float) -> None:
        with self._lock:
            current = self._budgets.get((host, source)) or Budget(host, source)
            changed = observe(current, news, status, now)
            if changed is not None:
                self._budgets[host, source] = changed
            if len(self._budgets) > 1024:
                self._budgets = {k: b for k, b in self._budgets.items() if b.expires_at() > now}

    def listing(self) -> list[Budget]:
        with self._lock:
            return sorted(self._budgets.values(), key=lambda b: (b.host, b.source))


class _Absences:
    """The budgets a shared store looked up lately and found absent, with when."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], float] = {}

    def fresh(self, host: str, source: str, now: float) -> bool:
        seen = self._seen.get((host, source))
        return seen is not None and now - seen < ABSENT_TTL

    def note(self, host: str, source: str, now: float) -> None:
        self._seen[host, source] = now
        if len(self._seen) > 4096:
            self._seen = {k: t for k, t in self._seen.items() if now - t < ABSENT_TTL}

    def forget(self, host: str, source: str) -> None:
        self._seen.pop((host, source), None)


_FIELDS = ("limit", "remaining", "reset_at", "blocked_until", "updated_at", "straddling")


def _to_hash(budget: Budget) -> dict[str, str]:
    values = asdict(budget)
    return {name: "" if values[name] is None else repr(values[name]) for name in _FIELDS}


def _text(value: bytes | str) -> str:
    """A Redis reply as text, whether the client decodes replies (the queue's does) or not."""
    return value.decode() if isinstance(value, bytes) else value


def _from_hash(host: str, source: str, raw: Mapping[Any, Any]) -> Budget:
    """A budget from its Redis hash."""
    fields = {_text(name): _text(value) for name, value in raw.items()}

    def number(name: str, kind: Callable[[str], Any]) -> Any:
        text = fields.get(name, "")
        return kind(text) if text else None

    return Budget(
        host,
        source,
        limit=number("limit", int),
        remaining=number("remaining", int),
        reset_at=number("reset_at", float),
        blocked_until=number("blocked_until", float),
        updated_at=number("updated_at", float) or 0.0,
        straddling=number("straddling", int) or 0,
    )


class RedisBudgets:
    """Budgets as hashes `<prefix>:budget:<host>|<source>` that expire once they say nothing."""

    shared = True

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._redis = client
        self.key_prefix = f"{prefix}:budget:"
        self._absent = _Absences()

    def _key(self, host: str, source: str) -> str:
        return f"{self.key_prefix}{host}|{source}"

    def _change(self, host: str, source: str, change: Callable[[Budget], Budget | None]) -> None:
        key = self._key(host, source)

        def apply(pipe: Any) -> None:
            after = change(_from_hash(host, source, pipe.hgetall(key)))
            pipe.multi()
            if after is not None:
                pipe.hset(key, mapping=_to_hash(after))
                pipe.expireat(key, int(after.expires_at()) + 3600)

        self._redis.transaction(apply, key)

    def surely_absent(self, host: str, source: str, now: float) -> bool:
        return self._absent.fresh(host, source, now)

    def claim(self, host: str, source: str, now: float) -> float:
        if not self._redis.exists(self._key(host, source)):
            self._absent.note(host, source, now)
            return 0.0
        waited: list[float] = []

        def take(budget: Budget) -> Budget | None:
            after, wait = claim(budget, now)
            waited[:] = [wait]
            return after if after != budget else None

        self._change(host, source, take)
        return waited[0]

    def peek(self, host: str, source: str, now: float) -> float:
        raw = self._redis.hgetall(self._key(host, source))
        if not raw:
            self._absent.note(host, source, now)
            return 0.0
        return claim(_from_hash(host, source, raw), now)[1]

    def observe(self, host: str, source: str, news: RateLimit, status: int, now: float) -> None:
        if not news.known and status != 429:
            return
        raw = self._redis.hgetall(self._key(host, source))
        if raw and observe(_from_hash(host, source, raw), news, status, now) is None:
            return  # nothing new: no transaction
        self._change(host, source, lambda b: observe(b, news, status, now))
        self._absent.forget(host, source)

    def listing(self) -> list[Budget]:
        out = []
        for key in self._redis.scan_iter(match=f"{self.key_prefix}*", count=500):
            host, _, source = _text(key)[len(self.key_prefix) :].rpartition("|")
            raw = self._redis.hgetall(key)
            if raw:
                out.append(_from_hash(host, source, raw))
        return sorted(out, key=lambda b: (b.host, b.source))


def _budget_row(row: Any) -> Budget:
    return Budget(
        row.host,
        row.source,
        limit=row.quota,
        remaining=row.remaining,
        reset_at=row.reset_at,
        blocked_until=row.blocked_until,
        updated_at=row.updated_at,
        straddling=row.straddling,
    )


class SqlBudgets:
    """Budgets in the `rate_budgets` table of the application database."""

    shared = True

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._absent = _Absences()

    def surely_absent(self, host: str, source: str, now: float) -> bool:
        return self._absent.fresh(host, source, now)

    def _where(self, host: str, source: str) -> sa.ColumnElement[bool]:
        return sa.and_(rate_budgets.c.host == host, rate_budgets.c.source == source)

    def _read(self, conn: Connection, host: str, source: str) -> Budget | None:
        row = conn.execute(sa.select(rate_budgets).where(self._where(host, source))).first()
        return None if row is None else _budget_row(row)

    def _change(
        self,
        conn: Connection,
        host: str,
        source: str,
        change: Callable[[Budget], Budget | None],
        create: bool = False,
    ) -> None:
        """Apply `change` to the row while holding its lock: a first statement that changes
        nothing takes the row lock (the write lock on SQLite) before the row is read; with
        `create`, an upsert that also makes a missing row (one statement: an INSERT IGNORE
        then an UPDATE would deadlock two MariaDB writers on their shared locks)."""
        where = self._where(host, source)
        keep = {"updated_at": rate_budgets.c.updated_at}
        if create:
            insert_or_update(
                conn, rate_budgets, {"host": host, "source": source, "updated_at": 0.0}, keep
            )
        else:
            conn.execute(sa.update(rate_budgets).where(where).values(keep))
        current = self._read(conn, host, source)
        after = None if current is None else change(current)
        if after is not None:
            conn.execute(
                sa.update(rate_budgets)
                .where(where)
                .values(
                    quota=after.limit,
                    remaining=after.remaining,
                    reset_at=after.reset_at,
                    blocked_until=after.blocked_until,
                    updated_at=after.updated_at,
                    straddling=after.straddling,
                )
            )

    def claim(self, host: str, source: str, now: float) -> float:
        with self.engine.connect() as conn:
            if self._read(conn, host, source) is None:
                self._absent.note(host, source, now)
                return 0.0
        waited = [0.0]

        def take(budget: Budget) -> Budget | None:
            after, waited[0] = claim(budget, now)
            return after if after != budget else None

        with self.engine.begin() as conn:
            self._change(conn, host, source, take)
        return waited[0]

    def peek(self, host: str, source: str, now: float) -> float:
        with self.engine.connect() as conn:
            current = self._read(conn, host, source)
        if current is None:
            self._absent.note(host, source, now)
            return 0.0
        return claim(current, now)[1]

    def observe(self, host: str, source: str, news: RateLimit, status: int, now: float) -> None:
        if not news.known and status != 429:
            return
        with self.engine.connect() as conn:
            current = self._read(conn, host, source)
        if current is not None and observe(current, news, status, now) is None:
            return  # nothing new: no transaction
        with self.engine.begin() as conn:
            self._change(conn, host, source, lambda b: observe(b, news, status, now), create=True)
        self._absent.forget(host, source)

    def listing(self) -> list[Budget]:
        query = sa.select(rate_budgets).order_by(rate_budgets.c.host, rate_budgets.c.source)
        with self.engine.connect() as conn:
            return [_budget_row(row) for row in conn.execute(query)]


def prune_budgets(conn: Connection, now: float, older_than: float = 3600.0) -> int:
    """Delete budgets that have said nothing for `older_than` seconds; returns how many."""
    old = now - older_than
    stmt = sa.delete(rate_budgets).where(
        rate_budgets.c.updated_at < old - UNKNOWN_RESET_WAIT,
        sa.or_(rate_budgets.c.reset_at.is_(None), rate_budgets.c.reset_at < old),
        sa.or_(rate_budgets.c.blocked_until.is_(None), rate_budgets.c.blocked_until < old),
    )
    return conn.execute(stmt).rowcount
