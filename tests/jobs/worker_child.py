"""A real worker process for the kill -9 and SIGTERM tests: `python -m tests.jobs.worker_child
QUEUE_URL LEASE GRACE` runs `sleepy_job` on the queue "slow" until it is signalled."""

from __future__ import annotations

import sys

from sleuth.jobs import open_queue
from sleuth.jobs.tasks import Task
from sleuth.jobs.worker import JobKind, Worker
from tests.jobs.helpers import Logged, sleepy_job


def main() -> None:
    url, lease, grace = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    backend = open_queue(url)
    kind = JobKind(Task("slow", Logged, lease=lease, max_attempts=5), sleepy_job)
    Worker(backend, [kind], concurrency=4, poll_interval=0.05, grace=grace).run_sync()
    backend.close()


if __name__ == "__main__":
    main()
