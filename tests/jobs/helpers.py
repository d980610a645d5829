"""Code that tests run in other processes (importable by name, so spawn can pickle it)."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from sleuth.jobs import open_queue
from sleuth.jobs.tasks import Task
from sleuth.jobs.urls import parse_redis_url
from sleuth.jobs.worker import JobContext, JobKind
from tests.patience import PATIENCE


@dataclass(frozen=True)
class X:
    x: int


@dataclass(frozen=True)
class Num:
    i: int


@dataclass(frozen=True)
class Sleep:
    name: str
    seconds: float


@dataclass(frozen=True)
class Logged:
    """A job that writes to the file `log`, and sleeps `seconds` first."""

    log: str
    i: int = 0
    seconds: float = 0.0


def drain(
    url: str,
    queue: str,
    consumer: str,
    out: str,
    start: threading.Barrier,
    took_first: threading.Barrier,
) -> None:
    """Reserve and ack until the queue is empty; write the ids taken, in order, to `out`.
    Every process waits for the others at `took_first` once it holds its first jobs, so all
    of them race for the rest however the machine schedules them."""
    backend = open_queue(url)
    taken: list[str] = []
    start.wait(PATIENCE)  # every process begins at once
    while True:
        jobs = backend.reserve([queue], 25, 60.0, consumer)
        if not jobs:
            if backend.pending([queue]) == 0:
                break
            continue
        if not taken:
            took_first.wait(PATIENCE)
        taken += [job.id for job in jobs]
        for job in jobs:
            backend.ack(job)
    backend.close()
    Path(out).write_text(json.dumps(taken))


def overwrite_payload(queue_url: str, job_id: str, text: str) -> None:
    """Write `text` as the stored payload of a job, behind the queue's back (as a person or
    a damaged disk might)."""
    if queue_url.startswith("sqlite:///"):
        conn = sqlite3.connect(queue_url.removeprefix("sqlite:///"))
        with conn:
            conn.execute("UPDATE jobs SET payload = ? WHERE id = ?", (text, int(job_id)))
        conn.close()
        return
    target = parse_redis_url(queue_url)
    client = redis.Redis(host=target.host, port=target.port, db=target.db)
    client.hset(f"{target.prefix}:q:j:{job_id}", "p", text)
    client.close()


def cpu_work(n: int) -> tuple[int, int]:
    """A CPU step: returns the pid it ran in and the sum of squares below n."""
    return os.getpid(), sum(i * i for i in range(n))


def append_line(path: str, line: str) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")


def read_lines(path: str | Path) -> list[list[str]]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return [line.split() for line in text.splitlines()]


async def record_job(payload: Logged, ctx: JobContext) -> None:
    """Log the job in the file its payload names (for spawn_workers tests)."""
    append_line(payload.log, f"{ctx.job.id} {os.getpid()}")


def record_kinds() -> list[JobKind[Any]]:
    return [JobKind(Task("record", Logged, lease=30.0), record_job)]


async def sleepy_job(payload: Logged, ctx: JobContext) -> None:
    """Log start, sleep `seconds` (renewing the lease meanwhile), log done."""
    job = ctx.job
    append_line(payload.log, f"start {job.id} {job.attempts} {os.getpid()}")
    await asyncio.sleep(payload.seconds)
    append_line(payload.log, f"done {job.id} {job.attempts} {os.getpid()}")
