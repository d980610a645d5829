"""Queue throughput: no-op jobs per second (enqueue + reserve + ack), SQLite and Redis backends,
and Dramatiq and Celery side by side on the same Redis.

    .venv/bin/python bench/queue.py [--jobs 20000] [--processes 1,2] [--dir /tmp]
        [--backends sqlite,redis] [--redis-url redis://127.0.0.1:6379/11]
        [--compare dramatiq,celery|none] [--repeat 1]

Measures, on a fresh queue (a new SQLite file, or a new key prefix on Redis) each time:
- enqueue: single `enqueue` calls, and `enqueue_many` batches;
- raw: P processes that `reserve(100)` + `ack_many` until the queue is empty (the backend alone);
- worker: P `spawn_workers` processes running a no-op handler (the whole runtime: reserve in
  batches, run, batched acks), started before the jobs are enqueued;
- call latency of reserve / ack_many / enqueue while 2 processes contend, which is why the
  worker runs backend calls in threads rather than on its event loop.

With Redis, a side-by-side table: N no-op jobs are enqueued first, one call per job (the
enqueue rate), then the workers start in their documented default setup, and the drain rate
is N over the time from the first job finished to the last (start-up excluded; the time
including start-up is shown too). Dramatiq and Celery run from their own virtualenvs under
bench/.venvs/ (created with pip on first use), each under a key prefix of its own.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named like the standard library's `queue`, which multiprocessing imports: take
# its folder off the import path before anything imports `queue`.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import multiprocessing  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from multiprocessing import queues as mp_queues  # noqa: E402

import redis  # noqa: E402

from sleuth.jobs import open_queue  # noqa: E402
from sleuth.jobs.base import QueueBackend  # noqa: E402
from sleuth.jobs.processes import queue_worker_main, spawn_workers  # noqa: E402
from sleuth.jobs.tasks import Task  # noqa: E402
from sleuth.jobs.worker import JobContext, JobKind  # noqa: E402

QUEUE = "bench"
VENVS = _HERE / ".venvs"
IMAGE_URL = "http://127.0.0.1:8000/img/{}.jpg"


@dataclass(frozen=True)
class Noop:
    i: int
    url: str = ""


async def noop(payload: Noop, ctx: JobContext) -> None:
    return None


WORKER_OPTIONS = {"concurrency": 64, "poll_interval": 0.05}


def noop_kinds() -> list[JobKind[Noop]]:
    return [JobKind(Task(QUEUE, Noop, lease=60.0), noop)]


@dataclass(frozen=True)
class Target:
    """Which backend to measure: `sqlite` (files in `folder`) or `redis` (at `redis_url`)."""

    backend: str
    folder: str | None
    redis_url: str

    @property
    def title(self) -> str:
        return "SQLite" if self.backend == "sqlite" else f"Redis ({self.redis_url})"


def delete_prefix(redis_url: str, prefix: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        for start in range(0, len(keys), 1000):
            client.unlink(*keys[start : start + 1000])
    finally:
        client.close()


@contextmanager
def fresh_queue(target: Target) -> Iterator[str]:
    """The URL of a new, empty queue: a file in the target's folder (default: the system's temp
    folder), or a key prefix of its own on the target's Redis, deleted afterwards."""
    if target.backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="sleuth-bench-", dir=target.folder) as tmp:
            yield f"sqlite:///{Path(tmp) / 'queue.db'}"
        return
    prefix = f"sleuth-bench-{uuid.uuid4().hex[:12]}"
    sep = "&" if "?" in target.redis_url else "?"
    try:
        yield f"{target.redis_url}{sep}prefix={prefix}"
    finally:
        delete_prefix(target.redis_url, f"{prefix}:")


def payloads(n: int) -> list[tuple[dict[str, object], str | None]]:
    return [({"i": i, "url": IMAGE_URL.format(i)}, None) for i in range(n)]


def quiet() -> None:
    """The Redis backend warns when AOF is off; the header says it once instead."""
    logging.getLogger("sleuth.jobs.redis").setLevel(logging.ERROR)


quiet()  # also in each spawned worker process, which imports this module before its queue


def persistence(redis_url: str) -> str:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        return "appendonly " + client.config_get("appendonly").get("appendonly", "?")
    except redis.ResponseError as exc:
        return f"persistence unknown ({exc})"
    finally:
        client.close()


def drain_raw(
    url: str, consumer: str, start: threading.Barrier, latencies: mp_queues.Queue | None
) -> None:
    quiet()
    backend = open_queue(url)
    start.wait()
    reserve_ms: list[float] = []
    ack_ms: list[float] = []
    while True:
        t0 = time.perf_counter()
        jobs = backend.reserve([QUEUE], 100, 60.0, consumer)
        t1 = time.perf_counter()
        if not jobs:
            if backend.pending([QUEUE]) == 0:
                break
            continue
        backend.ack_many(jobs)
        t2 = time.perf_counter()
        reserve_ms.append((t1 - t0) * 1000)
        ack_ms.append((t2 - t1) * 1000)
    if latencies is not None:
        latencies.put((reserve_ms, ack_ms))
    backend.close()


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench_enqueue(target: Target, n: int) -> None:
    with fresh_queue(target) as u:
        backend = open_queue(u)
        single = min(n, 5000)
        t = timed(lambda: [backend.enqueue(QUEUE, p) for p, _ in payloads(single)])
        print(f"enqueue (one call per job)        {single / t:10,.0f} jobs/s")
        t = timed(lambda: backend.enqueue_many(QUEUE, payloads(n)))
        print(f"enqueue_many ({n} in one call)   {n / t:10,.0f} jobs/s")
        backend.close()


def bench_raw(target: Target, n: int, procs: int) -> None:
    context = multiprocessing.get_context("spawn")
    with fresh_queue(target) as u:
        backend = open_queue(u)
        t_enqueue = timed(lambda: backend.enqueue_many(QUEUE, payloads(n)))
        start = context.Barrier(procs + 1)
        children = [
            context.Process(target=drain_raw, args=(u, f"raw{i}", start, None))
            for i in range(procs)
        ]
        for c in children:
            c.start()
        start.wait()
        t0 = time.perf_counter()
        for c in children:
            c.join()
        t_drain = time.perf_counter() - t0
        backend.close()
    print(
        f"raw reserve(100)+ack_many, {procs} proc   {n / t_drain:10,.0f} jobs/s"
        f"   (with enqueue: {n / (t_drain + t_enqueue):,.0f} jobs/s)"
    )


def bench_worker(target: Target, n: int, procs: int) -> None:
    with fresh_queue(target) as u:
        backend: QueueBackend = open_queue(u)
        group = spawn_workers(procs, queue_worker_main, (u, noop_kinds, WORKER_OPTIONS))
        try:
            backend.enqueue(QUEUE, {"warm": True})  # wait until every worker is polling
            while backend.pending([QUEUE]):
                time.sleep(0.05)
            time.sleep(0.5)
            t0 = time.perf_counter()
            backend.enqueue_many(QUEUE, payloads(n))
            t_enqueue = time.perf_counter() - t0
            while backend.pending([QUEUE]):
                time.sleep(0.005)
            total = time.perf_counter() - t0
        finally:
            group.stop()
        backend.close()
    print(
        f"worker runtime, {procs} proc, no-op jobs {n / total:10,.0f} jobs/s"
        f"   (enqueue {t_enqueue:.2f} s of {total:.2f} s)"
    )


def bench_latency(target: Target, n: int) -> None:
    context = multiprocessing.get_context("spawn")
    with fresh_queue(target) as u:
        backend = open_queue(u)
        backend.enqueue_many(QUEUE, payloads(n))
        start = context.Barrier(3)
        results = context.Queue()
        children = [
            context.Process(target=drain_raw, args=(u, f"lat{i}", start, results)) for i in range(2)
        ]
        for c in children:
            c.start()
        start.wait()
        enqueue_ms = []
        for i in range(500):
            t0 = time.perf_counter()
            backend.enqueue("other", {"i": i})
            enqueue_ms.append((time.perf_counter() - t0) * 1000)
        reserve_ms: list[float] = []
        ack_ms: list[float] = []
        for _ in children:
            r, a = results.get()
            reserve_ms += r
            ack_ms += a
        for c in children:
            c.join()
        backend.close()

    def summary(name: str, values: list[float]) -> None:
        q = statistics.quantiles(values, n=100)
        print(f"  {name:22} p50 {q[49]:6.2f} ms   p99 {q[98]:6.2f} ms   max {max(values):6.2f} ms")

    print("call latency while 2 processes drain the queue:")
    summary("reserve(100)", reserve_ms)
    summary("ack_many(100)", ack_ms)
    summary("enqueue (3rd process)", enqueue_ms)


# -- side by side on one Redis: sleuth, Dramatiq, Celery ------------------------------------------


@dataclass(frozen=True)
class DrainResult:
    """One run of "enqueue N jobs, then start the workers and wait until all are done"."""

    system: str
    setup: str
    enqueue_s: float
    drain_s: float  # from the first job done to the last
    total_s: float  # from starting the workers to the last job done

    def row(self, n: int) -> str:
        return (
            f"{self.system:18} {self.setup:36} {n / self.enqueue_s:10,.0f}"
            f" {n / self.drain_s:12,.0f} {n / self.total_s:14,.0f}"
        )


def wait_drained(
    remaining: Callable[[], int], n: int, started: float, limit: float
) -> tuple[float, float]:
    """Poll `remaining()` until it is 0; returns (time of the first progress, time done)."""
    first = None
    while True:
        left = remaining()
        now = time.perf_counter()
        if first is None and left < n:
            first = now
        if left == 0:
            return (now if first is None else first), now
        if now - started > limit:
            raise RuntimeError(f"{left} of {n} jobs still queued after {limit:.0f} s")
        time.sleep(0.005)


def drain_sleuth(redis_url: str, n: int, procs: int) -> DrainResult:
    target = Target("redis", None, redis_url)
    with fresh_queue(target) as u:
        backend = open_queue(u)
        t0 = time.perf_counter()
        for payload, _ in payloads(n):
            backend.enqueue(QUEUE, payload)
        enqueue_s = time.perf_counter() - t0
        started = time.perf_counter()
        group = spawn_workers(procs, queue_worker_main, (u, noop_kinds, WORKER_OPTIONS))
        try:
            first, done = wait_drained(lambda: backend.pending([QUEUE]), n, started, 600)
        finally:
            group.stop()
        backend.close()
    setup = f"spawn_workers({procs}), concurrency 64"
    return DrainResult("sleuth redis", setup, enqueue_s, done - first, done - started)


# The app modules and the driver run inside the other system's virtualenv. The driver enqueues
# N jobs (one call each, as an application would), starts the worker CLI with its defaults,
# polls the broker's own count of unfinished messages and prints its timings as JSON.
_DRAMATIQ_APP = """
import os, sys
import dramatiq
from dramatiq.brokers.redis import RedisBroker

broker = RedisBroker(url=os.environ["BENCH_REDIS_URL"], namespace=os.environ["BENCH_PREFIX"])
dramatiq.set_broker(broker)


@dramatiq.actor
def noop(i, url):
    return None


VERSION = f"dramatiq {dramatiq.__version__}"
SETUP = f"dramatiq CLI defaults: {os.cpu_count()} proc x 8 thr"
WORKER = [sys.executable, "-m", "dramatiq", "app"]


def send(i, url):
    noop.send(i, url)


def remaining():
    return broker.do_qsize("default")  # messages not acked yet, delayed ones included
"""

_CELERY_APP = """
import os, sys
import redis
from celery import Celery, __version__

PREFIX = os.environ["BENCH_PREFIX"] + ":"
app = Celery("app", broker=os.environ["BENCH_REDIS_URL"])
app.conf.broker_transport_options = {"global_keyprefix": PREFIX}
client = redis.Redis.from_url(os.environ["BENCH_REDIS_URL"])


@app.task
def noop(i, url):
    return None


VERSION = f"celery {__version__}"
SETUP = f"celery worker defaults: prefork x {os.cpu_count()}"
WORKER = [sys.executable, "-m", "celery", "-A", "app", "worker"]


def send(i, url):
    noop.delay(i, url)


def remaining():
    # Queued, plus delivered but not acked yet (Celery acks as a task starts, by default).
    return client.llen(PREFIX + "celery") + client.hlen(PREFIX + "unacked")
"""

_DRIVER = """
import json, signal, subprocess, sys, time
import app

n, url, limit = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
t0 = time.perf_counter()
for i in range(n):
    app.send(i, url.format(i))
enqueue_s = time.perf_counter() - t0
assert app.remaining() == n, app.remaining()
started = time.perf_counter()
with open("worker.log", "wb") as log:
    worker = subprocess.Popen(app.WORKER, stdout=log, stderr=subprocess.STDOUT)
    first = None
    try:
        while True:
            left = app.remaining()
            now = time.perf_counter()
            if first is None and left < n:
                first = now
            if left == 0:
                break
            if now - started > limit:
                raise SystemExit(f"{left} of {n} jobs still queued after {limit:.0f} s")
            time.sleep(0.005)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(60)
        except subprocess.TimeoutExpired:
            worker.kill()
print(json.dumps({"version": app.VERSION, "setup": app.SETUP, "enqueue_s": enqueue_s,
                  "drain_s": now - first, "total_s": now - started}))
"""

OTHERS = {"dramatiq": ("dramatiq[redis]", _DRAMATIQ_APP), "celery": ("celery[redis]", _CELERY_APP)}


def ensure_venv(name: str, requirement: str) -> Path:
    """bench/.venvs/<name>/bin/python, creating the virtualenv with pip on first use."""
    python = VENVS / name / "bin" / "python"
    if not python.exists():
        print(f"(creating {python.parent.parent} with {requirement})", flush=True)
        subprocess.run(["python3", "-m", "venv", str(VENVS / name)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", requirement], check=True)
    return python


def drain_other(name: str, redis_url: str, n: int) -> DrainResult:
    requirement, app = OTHERS[name]
    python = ensure_venv(name, requirement)
    prefix = f"sleuth-bench-{name}-{uuid.uuid4().hex[:12]}"
    with tempfile.TemporaryDirectory(prefix=f"sleuth-bench-{name}-") as tmp:
        Path(tmp, "app.py").write_text(app)
        Path(tmp, "driver.py").write_text(_DRIVER)
        env = {**os.environ, "BENCH_REDIS_URL": redis_url, "BENCH_PREFIX": prefix}
        env.pop("PYTHONPATH", None)
        try:
            run = subprocess.run(
                [str(python), "driver.py", str(n), IMAGE_URL, "600"],
                cwd=tmp,
                env=env,
                capture_output=True,
                text=True,
            )
        finally:
            delete_prefix(redis_url, prefix)
        if run.returncode != 0:
            log = Path(tmp, "worker.log")
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{name} run failed:\n{run.stderr[-2000:]}\n{tail}")
    result = json.loads(run.stdout.strip().splitlines()[-1])
    return DrainResult(
        result["version"],
        result["setup"],
        result["enqueue_s"],
        result["drain_s"],
        result["total_s"],
    )


def compare(redis_url: str, n: int, counts: list[int], others: list[str], repeat: int) -> None:
    runs: list[Callable[[], DrainResult]] = [
        lambda p=p: drain_sleuth(redis_url, n, p) for p in counts
    ]
    runs += [lambda o=o: drain_other(o, redis_url, n) for o in others]
    results: list[list[DrainResult]] = [[] for _ in runs]
    for _ in range(repeat):  # interleaved, so that a busy moment does not hit one system only
        for i, run in enumerate(runs):
            results[i].append(run())
    print(
        f"\nside by side on {redis_url}: {n} no-op jobs enqueued first, then drained"
        f" ({multiprocessing.cpu_count()} CPUs; median of {repeat})"
    )
    print(
        f"{'system':18} {'worker setup':36} {'enqueue/s':>10} {'drain jobs/s':>12}"
        f" {'incl. start-up':>14}"
    )
    for rows in results:
        best = sorted(rows, key=lambda r: r.drain_s)[len(rows) // 2]
        print(best.row(n))
    print("(enqueue: one call per job; drain: first job done to last; incl. start-up: from")
    print(" starting the workers to the last job done)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20000)
    parser.add_argument("--processes", default="1,2", help="worker process counts to try")
    parser.add_argument("--dir", default=None, help="folder for the queue files (default: temp)")
    parser.add_argument("--backends", default="sqlite,redis", help="sqlite, redis or both")
    parser.add_argument(
        "--redis-url", default="redis://127.0.0.1:6379/11", help="a database the tests do not use"
    )
    parser.add_argument(
        "--compare", default="dramatiq,celery", help="others to run on Redis too, or none"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs of the side-by-side table")
    args = parser.parse_args()
    counts = [int(p) for p in args.processes.split(",")]
    backends = [b for b in args.backends.split(",") if b]
    unknown = set(backends) - {"sqlite", "redis"}
    if unknown:
        parser.error(f"unknown backend(s) {sorted(unknown)}: use sqlite and/or redis")
    others = [] if args.compare == "none" else [o for o in args.compare.split(",") if o]
    if set(others) - set(OTHERS):
        parser.error(f"--compare takes {sorted(OTHERS)} or none, not {args.compare!r}")
    quiet()
    for backend in backends:
        target = Target(backend, args.dir, args.redis_url)
        title = target.title
        if backend == "redis":
            title += f" [{persistence(args.redis_url)}]"
        print(f"{title} queue, {args.jobs} no-op jobs, {multiprocessing.cpu_count()} CPUs")
        bench_enqueue(target, args.jobs)
        for procs in counts:
            bench_raw(target, args.jobs, procs)
        for procs in counts:
            bench_worker(target, args.jobs, procs)
        bench_latency(target, args.jobs)
    if "redis" in backends:
        compare(args.redis_url, args.jobs, counts, others, args.repeat)


if __name__ == "__main__":
    main()
