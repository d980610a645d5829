"""Accounts and their scans: recording an account, asking for a scan of it (which a scan
already under way answers), and whether accounts are being scanned.

An account is being scanned from the moment a scan is asked for (`scan_wanted_at`) until a
scan ends after it (`scanned_at` later) or fails (`scan_error`, `scan_wanted_at` cleared):
the requests that need it wait for exactly that."""

from __future__ import annotations

import time
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy import Connection

from sleuth.apps.finder import networks
from sleuth.apps.finder.models import accounts
from sleuth.net.fetcher import Fetcher
from sleuth.runner import shared_budgets
from sleuth.services import Services
from sleuth.sources.mastodon import parse_handle
from sleuth.sources.profiles import AccountRef, parse_profile_url
from sleuth.sources.social import Account, SourceError
from sleuth.store.upsert import insert_or_update


def record_account(conn: Connection, account: Account) -> float | None:
    """Insert or refresh the account's row; returns when it was last scanned."""
    row = {
        "network": account.network,
        "account_id": account.id,
        "username": account.acct.lower(),
        "server": account.server,
        "url": account.url,
    }
    insert_or_update(conn, accounts, row, {k: row[k] for k in ("username", "server", "url")})
    scanned: float | None = conn.execute(
        sa.select(accounts.c.scanned_at).where(
            accounts.c.network == account.network, accounts.c.account_id == account.id
        )
    ).scalar_one()
    return scanned


def want_scan(conn: Connection, network: str, account_id: str, now: float) -> None:
    """Mark the account as being scanned, unless it already is (the request joins it)."""
    idle = sa.or_(
        accounts.c.scan_wanted_at.is_(None),
        sa.and_(
            accounts.c.scanned_at.is_not(None), accounts.c.scanned_at >= accounts.c.scan_wanted_at
        ),
    )
    conn.execute(
        sa.update(accounts)
        .where(accounts.c.network == network, accounts.c.account_id == account_id, idle)
        .values(scan_wanted_at=now, scan_error=None)
    )


def scanning(conn: Connection, keys: Sequence[tuple[str, str]]) -> int:
    """How many of these (network, account id) accounts are being scanned."""
    if not keys:
        return 0
    wanted = sa.and_(
        accounts.c.scan_wanted_at.is_not(None),
        sa.or_(accounts.c.scanned_at.is_(None), accounts.c.scanned_at < accounts.c.scan_wanted_at),
    )
    key = sa.tuple_(accounts.c.network, accounts.c.account_id).in_(list(keys))
    return int(conn.execute(sa.select(sa.func.count()).where(key, wanted)).scalar_one())


def account_ref(text: str) -> AccountRef:
    """A profile URL (`https://x.com/name`, `https://server/@user`, `bsky.app/profile/h`)
    or a Mastodon handle `@user@server`, as an AccountRef; ValueError saying why not."""
    ref = parse_profile_url(text.strip())
    if ref is not None:
        return ref
    try:
        user, server = parse_handle(text)
    except SourceError:
        raise ValueError(
            f"{text!r} is not an account: give a profile URL or a Mastodon @user@server"
        ) from None
    return AccountRef("mastodon", server.lower(), user.lower())


async def ask_for_scan(services: Services, text: str) -> tuple[str, str, str]:
    """Look the account up on its network, record it and ask for its scan: (network,
    account id, acct). ValueError when it cannot be scanned."""
    ref = account_ref(text)
    async with Fetcher(services.settings.net, budgets=shared_budgets(services)) as fetcher:
        try:
            account = await networks.lookup(fetcher, services.settings.sources, ref)
        except SourceError as exc:
            raise ValueError(f"{ref}: {exc}") from None
    if account.private:
        raise ValueError(f"{ref} is private: its posts cannot be read")
    with services.engine.begin() as conn:
        record_account(conn, account)
        want_scan(conn, account.network, account.id, time.time())
    return account.network, account.id, account.acct
