"""`sleuth stacks`: the Python stacks of every live worker, wherever it runs, in one file.

Workers may be on other machines, so no signal can reach them: the command writes a request
row to the database; each worker's monitor thread polls for requests, dumps the stacks of all
its threads and the chains of coroutines of its asyncio tasks (down to the future each one
awaits) and writes them back; the command collects the answers until every worker answered
or the timeout passed. The dump is taken by the monitor thread, not by the event loop, so a
worker whose loop is blocked (a handler doing CPU work or blocking I/O on it) still answers,
and its main thread's stack shows where it is stuck.
"""

from __future__ import annotations

import asyncio
import linecache
import secrets
import sys
import threading
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine
from sqlalchemy.dialects import mysql

from sleuth.store.schema import metadata
from sleuth.store.upsert import insert_ignore

# A worker answers requests younger than this; older ones (their command gave up) are pruned.
REQUEST_TTL = 120.0
# MySQL's MEDIUMTEXT holds 16 MiB; a dump is cut well below it, saying so.
MAX_DUMP_CHARS = 2_000_000
LONG_TEXT = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")

stack_requests = sa.Table(
    "stack_requests",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("requested_at", sa.Double, nullable=False, index=True),
)

stack_dumps = sa.Table(
    "stack_dumps",
    metadata,
    sa.Column("request_id", sa.String(32), primary_key=True),
    sa.Column("consumer", sa.String(255), primary_key=True),
    sa.Column("dumped_at", sa.Double, nullable=False, index=True),
    sa.Column("dump_text", LONG_TEXT, nullable=False),
)


# -- taking a dump ----------------------------------------------------------------------------


def _frame_lines(frame: FrameType) -> list[str]:
    code = frame.f_code
    line = frame.f_lineno
    out = [f'  File "{code.co_filename}", line {line}, in {code.co_name}\n']
    source = linecache.getline(code.co_filename, line or 0, frame.f_globals).strip()
    if source:
        out.append(f"    {source}\n")
    return out


def _awaitable_frame(obj: Any) -> FrameType | None:
    for name in ("cr_frame", "gi_frame", "ag_frame"):
        if hasattr(obj, name):
            frame: FrameType | None = getattr(obj, name)
            return frame
    return None


def _awaited_by(obj: Any) -> Any:
    for name in ("cr_await", "gi_yieldfrom", "ag_await"):
        if hasattr(obj, name):
            return getattr(obj, name)
    return None


def task_lines(task: asyncio.Task[Any], running: bool) -> list[str]:
    """A task's coroutine chain, outermost first (`Task.get_stack` shows only the outermost
    frame of a suspended task), then what the innermost one awaits."""
    state = "running now" if running else "suspended"
    out = [f"Task {task.get_name()!r} ({state}):\n"]
    coro: Any = task.get_coro()
    seen = 0
    while coro is not None and seen < 200:  # bounded: a chain is short, a cycle is a bug
        frame = _awaitable_frame(coro)
        if frame is None:
            break
        out += _frame_lines(frame)
        coro = _awaited_by(coro)
        seen += 1
        if _awaitable_frame(coro) is None:
            break
    # Where the innermost coroutine is parked: the asyncio future it waits for (private
    # attribute, present on both the C and the Python Task).
    waiter = getattr(task, "_fut_waiter", None)
    if waiter is not None:
        out.append(f"  awaiting {waiter!r}\n")
    return out


def format_stacks(
    loop: asyncio.AbstractEventLoop | None,
    *,
    header: str = "",
    loop_thread: int | None = None,
    skip_thread: int | None = None,
) -> str:
    """Every thread's stack (the one with ident `loop_thread` labelled as the event loop's)
    and, when `loop` is given, every pending task of it. Callable from any thread; from
    outside the loop the task chains are a snapshot that may be a little inconsistent between
    tasks (they keep running meanwhile)."""
    out: list[str] = [header] if header else []
    names = {t.ident: t.name for t in threading.enumerate()}
    frames = sys._current_frames()
    out.append(f"--- threads ({len(frames)}) ---\n")
    for ident, frame in sorted(frames.items(), key=lambda item: names.get(item[0], "~")):
        name = names.get(ident, "?")
        if ident == skip_thread:
            out.append(f"Thread {name!r} (ident {ident}): this dump's writer, left out\n\n")
            continue
        role = ", runs the event loop" if ident == loop_thread else ""
        out.append(f"Thread {name!r} (ident {ident}{role}), most recent call last:\n")
        out += traceback.format_list(traceback.extract_stack(frame))
        out.append("\n")
    if loop is not None:
        tasks = sorted(asyncio.all_tasks(loop), key=lambda t: t.get_name())
        current = asyncio.current_task(loop)
        out.append(f"--- asyncio tasks ({len(tasks)}), outermost coroutine first ---\n")
        for task in tasks:
            out += task_lines(task, task is current)
            out.append("\n")
    text = "".join(out)
    if len(text) > MAX_DUMP_CHARS:
        text = text[:MAX_DUMP_CHARS] + f"\n[cut at {MAX_DUMP_CHARS} characters]\n"
    return text


# -- the request / answer exchange ------------------------------------------------------------


def request_stacks(conn: Connection, at: float | None = None) -> str:
    """Ask every worker for its stacks; returns the request id."""
    request_id = secrets.token_hex(16)
    requested_at = time.time() if at is None else at
    conn.execute(sa.insert(stack_requests).values(id=request_id, requested_at=requested_at))
    return request_id


def open_requests(conn: Connection, consumer: str, now: float) -> list[str]:
    """Requests still waiting for `consumer`'s answer."""
    answered = sa.exists().where(
        stack_dumps.c.request_id == stack_requests.c.id, stack_dumps.c.consumer == consumer
    )
    query = sa.select(stack_requests.c.id).where(
        stack_requests.c.requested_at > now - REQUEST_TTL, ~answered
    )
    return list(conn.execute(query).scalars())


def save_dump(conn: Connection, request_id: str, consumer: str, text: str, at: float) -> None:
    row = {"request_id": request_id, "consumer": consumer, "dumped_at": at, "dump_text": text}
    insert_ignore(conn, stack_dumps, row)


def answers(conn: Connection, request_id: str) -> dict[str, str]:
    query = sa.select(stack_dumps.c.consumer, stack_dumps.c.dump_text).where(
        stack_dumps.c.request_id == request_id
    )
    return {consumer: text for consumer, text in conn.execute(query)}


def forget_request(conn: Connection, request_id: str) -> None:
    conn.execute(sa.delete(stack_dumps).where(stack_dumps.c.request_id == request_id))
    conn.execute(sa.delete(stack_requests).where(stack_requests.c.id == request_id))


def prune_requests(conn: Connection, now: float) -> None:
    """Drop requests and answers that no command waits for any more."""
    cutoff = now - REQUEST_TTL
    conn.execute(sa.delete(stack_dumps).where(stack_dumps.c.dumped_at < cutoff))
    conn.execute(sa.delete(stack_requests).where(stack_requests.c.requested_at < cutoff))


@dataclass(frozen=True)
class StackReport:
    requested_at: float
    answers: dict[str, str]  # consumer → its dump
    missing: list[str]  # asked, but no answer before the timeout


def collect_stacks(engine: Engine, consumers: Sequence[str], timeout: float) -> StackReport:
    """Ask, then wait until each of `consumers` answered or `timeout` seconds passed; the
    request and its answers are removed from the database afterwards."""
    if not timeout > 0:
        raise ValueError(f"timeout must be > 0 seconds, not {timeout!r}")
    requested_at = time.time()
    with engine.begin() as conn:
        request_id = request_stacks(conn, requested_at)
    wanted = set(consumers)
    got: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    try:
        while True:
            with engine.connect() as conn:
                got = answers(conn, request_id)
            if wanted <= set(got) or time.monotonic() >= deadline:
                break
            time.sleep(0.1)
    finally:
        with engine.begin() as conn:
            forget_request(conn, request_id)
    return StackReport(requested_at, got, sorted(wanted - set(got)))
