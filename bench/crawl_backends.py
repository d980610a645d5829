"""`sleuth images crawl` throughput on its embedded default and on Redis + PostgreSQL with 1 and
2 `sleuth worker` processes, on one corpus, in one run.

    .venv/bin/python -m bench.crawl_backends [--count 1500] [--repeat 1]
        [--redis-url redis://127.0.0.1:6379/12]
        [--postgres-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

The list and the loopback server are those of `bench/images.py` (`bench/serve_corpus.py`: real
photos, distinct bytes per URL). Contenders, each on fresh storage:

- embedded: `sleuth images crawl FILE` (SQLite data and queue, local workers), as bench.images;
- redis+pg, N workers: N `sleuth worker` machines (tests/distributed/cluster.py: own data
  folders, a shared blob folder, the deployment's default settings) on the Redis database
  `--redis-url` names (it must be empty: it is flushed after each run, and nothing else) and
  on a PostgreSQL database created for the run and dropped after it; once every worker has
  registered, `sleuth images crawl FILE --workers 0` queues the list and follows it.

img/s wall is stored images over the crawl command's wall time (for the distributed runs the
workers are already up; their start-up is shown apart). CPU ms/img is the crawl command's
whole process tree plus, for the distributed runs, the workers' trees; the CPU of the
PostgreSQL backends serving the run's database and of the Redis server (shared with anyone
else using it) is shown apart. Every run must leave the same rows (`snapshot`).
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this folder would come first on the import path and its `queue.py` would
# shadow the standard library's; import the bench modules from the repository root instead.
_HERE = Path(__file__).resolve().parent
_ROOT = _HERE.parent
sys.path[:] = [str(_ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import os  # noqa: E402
import shlex  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402

import redis  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from bench.images import CorpusServer, Result, _sample, _tree, machine, run_sleuth  # noqa: E402
from tests.distributed.cluster import (  # noqa: E402
    Cluster,
    Snapshot,
    live_workers,
    snapshot,
)
from tests.patience import wait_for  # noqa: E402

SAMPLE = 0.5  # seconds between CPU samples


class CpuWatch(threading.Thread):
    """CPU seconds used since it started by the processes each group's finder names, sampled
    every SAMPLE seconds (a process that exits between two samples loses at most one)."""

    def __init__(self, groups: dict[str, Callable[[], list[int]]]) -> None:
        super().__init__(name="cpu-watch", daemon=True)
        self.groups = groups
        self.base: dict[int, float] = {}
        self.last: dict[int, tuple[str, float]] = {}
        self._done = threading.Event()
        self._scan(into_base=True)

    def _scan(self, into_base: bool = False) -> None:
        for group, finder in self.groups.items():
            for pid in finder():
                sample = _sample(pid)
                if sample is None:
                    continue
                if into_base:
                    self.base[pid] = sample[2]
                self.last[pid] = (group, sample[2])

    def run(self) -> None:
        while not self._done.wait(SAMPLE):
            self._scan()

    def stop(self) -> dict[str, float]:
        self._done.set()
        self.join()
        self._scan()
        used = dict.fromkeys(self.groups, 0.0)
        for pid, (group, cpu) in self.last.items():
            used[group] += cpu - self.base.get(pid, 0.0)
        return used


def backends_of(database: str) -> list[int]:
    """PostgreSQL backend processes connected to `database` (their title names it)."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/cmdline", "rb") as fh:
                    title = fh.read()
            except OSError:
                continue
            if title.startswith(b"postgres: ") and f" {database} ".encode() in title:
                found.append(int(entry.name))
    return found


@contextmanager
def fresh_postgres(admin_url: str) -> Iterator[tuple[str, str]]:
    """A new, empty PostgreSQL database, dropped afterwards: yields (its URL, its name)."""
    name = f"sleuth_bench_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
        url = sa.engine.make_url(admin_url).set(database=name)
        yield url.render_as_string(hide_password=False), name
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


@contextmanager
def dedicated_redis(url: str) -> Iterator[redis.Redis]:
    """The Redis database at `url`, which must be empty; flushed (that database only) after."""
    client = redis.Redis.from_url(url)
    keys = client.dbsize()
    if keys:
        client.close()
        raise SystemExit(f"{url} holds {keys} keys: give --redis-url an empty database")
    try:
        yield client
    finally:
        client.flushdb()
        client.close()


@dataclasses.dataclass
class Run:
    """One contender's crawl, with what the distributed runs add to bench.images's Result."""

    result: Result
    rows: dict[str, int]
    same: bool | None = None  # rows identical to the first run's
    startup: float | None = None  # seconds until every worker had registered
    servers: dict[str, float] = dataclasses.field(default_factory=dict)  # CPU s per server


def counts(found: Snapshot) -> dict[str, int]:
    return {"images": len(found.images), "sources": len(found.sources), "lines": len(found.lines)}


def run_embedded(server: CorpusServer, urls: Path, work: Path, count: int) -> tuple[Run, Snapshot]:
    result = run_sleuth(server, urls, work, count, SAMPLE, None, None, None, {})
    found = snapshot(f"sqlite:///{work / 'sleuth-data' / 'sleuth.db'}")
    return Run(dataclasses.replace(result, name="embedded (SQLite)"), counts(found)), found


def run_distributed(
    server: CorpusServer,
    urls: Path,
    work: Path,
    count: int,
    workers: int,
    redis_url: str,
    postgres_admin: str,
) -> tuple[Run, Snapshot]:
    with dedicated_redis(redis_url) as client, fresh_postgres(postgres_admin) as (db_url, db):
        redis_pid = int(client.info("server")["process_id"])
        default = {"SLEUTH_WORKER_PROCESSES": "0"}  # the deployment's, not the tests' 1
        with Cluster(work / "cluster", db_url, redis_url, default) as cluster:
            t0 = time.monotonic()
            for _ in range(workers):
                cluster.add()
            wait_for(lambda: len(live_workers(db_url)) >= workers, "workers registered")
            startup = time.monotonic() - t0
            roots = [m.process.pid for m in cluster.machines if m.process is not None]
            watch = CpuWatch(
                {
                    "workers": lambda: [p for r in roots for p in _tree(r)],
                    "postgres": lambda: backends_of(db),
                    "redis": lambda: [redis_pid],
                }
            )
            watch.start()
            shared = {
                "SLEUTH_DATABASE_URL": db_url,
                "SLEUTH_QUEUE_URL": redis_url,
                "SLEUTH_BLOB_DIR": str(cluster.blob_dir),
            }
            try:
                result = run_sleuth(server, urls, work, count, SAMPLE, 0, None, None, shared)
            finally:
                used = watch.stop()
                cluster.stop()
        found = snapshot(db_url)
    name = f"redis+pg, {workers} worker{'s' if workers > 1 else ''}"
    result = dataclasses.replace(result, name=name, cpu=result.cpu + used["workers"])
    servers = {k: used[k] for k in ("postgres", "redis")}
    return Run(result, counts(found), startup=startup, servers=servers), found


def server_versions(redis_url: str, postgres_admin: str) -> str:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        info = client.info("server")
        persistence = client.config_get("appendonly").get("appendonly", "?")
    finally:
        client.close()
    engine = sa.create_engine(postgres_admin)
    try:
        with engine.connect() as conn:
            pg = conn.execute(sa.text("show server_version")).scalar_one()
    finally:
        engine.dispose()
    return f"redis-server {info['redis_version']} (appendonly {persistence}), PostgreSQL {pg}"


def table(runs: list[Run]) -> list[str]:
    lines = [
        "| contender | stored / URLs | errors | wall s | img/s wall | CPU ms/img "
        "| workers' start-up s | PG backends CPU ms/img | Redis CPU ms/img | rows (images / "
        "sources / lines) | same rows | load before |",
        "|" + "---|" * 12,
    ]
    for run in runs:
        r = run.result
        per = {k: f"{1000 * v / r.stored:.1f}" if r.stored else "—" for k, v in run.servers.items()}
        startup = f"{run.startup:.1f}" if run.startup is not None else "—"
        rows = " / ".join(str(n) for n in run.rows.values())
        same = {None: "(reference)", True: "yes", False: "NO"}[run.same]
        lines.append(
            f"| {r.name} | {r.stored} / {r.urls} | {r.errors} | {r.wall:.1f} | "
            f"{r.rate_wall:.1f} | {r.cpu_ms or 0:.0f} | {startup} | {per.get('postgres', '—')} | "
            f"{per.get('redis', '—')} | {rows} | {same} | {r.load:.2f} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1500, help="URLs in the list")
    parser.add_argument("--repeat", type=int, default=1, help="rounds, contenders in turn")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12")
    parser.add_argument(
        "--postgres-url",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
        help="a database to connect to for CREATE/DROP DATABASE",
    )
    parser.add_argument("--dir", type=Path, default=None, help="work folder (default: temp)")
    args = parser.parse_args()
    if args.count < 1 or args.repeat < 1:
        parser.error("--count and --repeat must be at least 1")
    print(f"$ {shlex.join(['.venv/bin/python', '-m', 'bench.crawl_backends', *sys.argv[1:]])}")
    print(f"{machine()}; {server_versions(args.redis_url, args.postgres_url)}", flush=True)
    contenders: list[Callable[..., tuple[Run, Snapshot]]] = [
        run_embedded,
        lambda *a: run_distributed(*a, 1, args.redis_url, args.postgres_url),
        lambda *a: run_distributed(*a, 2, args.redis_url, args.postgres_url),
    ]
    runs: list[Run] = []
    reference = None
    with tempfile.TemporaryDirectory(prefix="sleuth-bench-backends-", dir=args.dir) as tmp:
        server = CorpusServer(args.count, False, 100)
        try:
            urls = Path(tmp) / "urls.txt"
            urls.write_text("".join(f"{server.url}/img/{n}.jpg\n" for n in range(args.count)))
            for round_no in range(args.repeat):
                for i, contender in enumerate(contenders):
                    work = Path(tmp) / f"round{round_no}-{i}"
                    work.mkdir()
                    load = os.getloadavg()[0]
                    run, found = contender(server, urls, work, args.count)
                    run.result.load = load
                    if reference is None:
                        reference = found
                    else:
                        run.same = found == reference
                    runs.append(run)
                    r = run.result
                    print(
                        f"{r.name}: {r.stored}/{r.urls} in {r.wall:.1f} s = {r.rate_wall:.1f} "
                        f"img/s, {r.cpu_ms or 0:.0f} CPU ms/img, rows {run.rows}, load "
                        f"{load:.2f} {r.note}",
                        flush=True,
                    )
                    shutil.rmtree(work)
        finally:
            server.close()
    print("\n".join(["", *table(runs)]))
    print("commands:\n" + "\n".join(dict.fromkeys(f"  {run.result.command}" for run in runs)))
    if any(run.same is False for run in runs) or any(not run.result.stored for run in runs):
        sys.exit(1)


if __name__ == "__main__":
    main()
