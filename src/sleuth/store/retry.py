"""Transactions that the database may abort to break a deadlock, run again until they commit.

Workers writing the same rows at once can deadlock on MariaDB/MySQL (an `INSERT IGNORE` of an
existing key takes a shared lock that the following update must upgrade) and, more rarely, on
PostgreSQL. The server then aborts one transaction and asks for it to be restarted; doing that
here keeps a routine race from failing a job and spending one of its attempts.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)

T = TypeVar("T")

_MYSQL_RESTART = {1213, 1205}  # deadlock found; lock wait timeout exceeded
_POSTGRES_RESTART = {"40P01", "40001"}  # deadlock detected; serialization failure


def must_restart(exc: DBAPIError) -> bool:
    """True when the database aborted the transaction and asks for it to be run again."""
    orig = exc.orig
    if getattr(orig, "sqlstate", None) in _POSTGRES_RESTART:
        return True
    args = getattr(orig, "args", ())
    return bool(args) and args[0] in _MYSQL_RESTART


def in_transaction(engine: Engine, work: Callable[[Connection], T], attempts: int = 5) -> T:
    """`work(conn)` in one transaction, run again (after a short random pause) when the
    database aborts it to break a deadlock; the last failure is raised after `attempts`.
    `work` must have no effect outside the database, as it may run more than once."""
    if attempts < 1:
        raise ValueError(f"attempts must be >= 1, not {attempts!r}")
    attempt = 1
    while True:
        try:
            with engine.begin() as conn:
                return work(conn)
        except DBAPIError as exc:
            if attempt >= attempts or not must_restart(exc):
                raise
            log.debug("transaction aborted by the database (%s); running it again", exc.orig)
            time.sleep(random.uniform(0, 0.01 * 2**attempt))
            attempt += 1
