"""A parent of worker processes for the process-tree tests: `python -m tests.jobs.spawner_child
QUEUE_URL` starts one worker (with a CPU pool) through `spawn_workers`, prints the worker's pid,
and on SIGTERM/SIGINT/SIGHUP stops it and exits; killed with -9, it tells its worker nothing."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from dataclasses import dataclass

from sleuth.jobs.processes import queue_worker_main, spawn_workers
from sleuth.jobs.tasks import Task
from sleuth.jobs.worker import STOP_SIGNALS, JobContext, JobKind
from tests.jobs.helpers import append_line, cpu_work

GRACE = 2.0


@dataclass(frozen=True)
class Hold:
    log: str
    seconds: float


TREE = Task("tree", Hold, lease=30.0)


async def cpu_then_hold(payload: Hold, ctx: JobContext) -> None:
    """Run a CPU step (so the worker has its pool), log both pids, then hold the job."""
    cpu_pid, _ = await ctx.run_cpu(cpu_work, 1000)
    append_line(payload.log, f"start {ctx.job.id} {os.getpid()} {cpu_pid}")
    await asyncio.sleep(payload.seconds)


def tree_kinds() -> list[JobKind[Hold]]:
    return [JobKind(TREE, cpu_then_hold)]


def main() -> None:
    options = {"concurrency": 4, "processes": 1, "poll_interval": 0.05, "grace": GRACE}
    group = spawn_workers(1, queue_worker_main, (sys.argv[1], tree_kinds, options), grace=GRACE)

    def stop(_signum: int, _frame: object) -> None:
        group.stop()
        sys.exit(0)

    for sig in STOP_SIGNALS:
        signal.signal(sig, stop)
    print(" ".join(map(str, group.pids)), flush=True)
    while True:
        signal.pause()


if __name__ == "__main__":
    main()
