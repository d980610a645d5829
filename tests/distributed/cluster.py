"""Several sleuth "machines" on one host: the distributed tests and `bench/chaos.py` use it.

A machine is a `sleuth worker` process in a session of its own (so killing it kills its CPU
pool too, as a crashed host would), with its own data folder; machines share only what a real
deployment shares: the Redis queue, the PostgreSQL database and a blob folder. Private Redis
and PostgreSQL servers (own port, own folder) can be restarted mid-crawl without disturbing
anyone else using the machine's usual servers.
"""

from __future__ import annotations

import contextlib
import glob
import inspect
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

import redis
import sqlalchemy as sa

from sleuth.app import migration_dirs
from sleuth.apps.images.models import image_sources, images
from sleuth.apps.images.records import url_key
from sleuth.config import ImagingSettings
from sleuth.crawl.models import FAILED, QUEUED, crawl_failures, crawl_run_items
from sleuth.emulator.imagehost import ImageHost, InvalidImageRequest, parse_image_path
from sleuth.imaging.hashes import md5_hex, phash_to_db
from sleuth.imaging.process import process_image
from sleuth.jobs import open_queue
from sleuth.jobs.base import QueueStats
from sleuth.jobs.worker import Worker
from sleuth.observe.counters import outcome_counts
from sleuth.observe.registry import live_consumers
from sleuth.store.db import make_engine, migrate
from tests.patience import PATIENCE, wait_for

SLEUTH = [sys.executable, "-m", "sleuth.cli"]
"""The `sleuth` command of this interpreter's install."""

GRACE = inspect.signature(Worker).parameters["grace"].default
"""Seconds a stopping worker gives its running jobs before handing them back."""

SMALL = (64, 48)
"""Width and height of the photos in test lists: tiny, so a list of thousands is quick."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def gone(pid: int) -> bool:
    """Whether process `pid` has exited (a zombie nobody reaped yet counts as exited)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status


# -- URL lists --------------------------------------------------------------------------------


def small_urls(base_url: str, count: int, seed: int = 0) -> list[str]:
    """`count` lines against the image host, shuffled: distinct 64x48 photos, with about 3%
    repeated lines, 2% `.jpg` aliases (another URL, the same bytes: a duplicate image with two
    sources), 3% 404 pages and 2% oversized requests (400)."""
    rng = random.Random(seed)
    root = base_url.rstrip("/")
    repeats, aliases, missing, oversized = (max(1, count * p // 100) for p in (3, 2, 3, 2))
    distinct = count - repeats - aliases - missing - oversized
    if distinct < 1:
        raise ValueError(f"count must be at least 10, not {count}")
    width, height = SMALL
    photos = [f"{root}/id/{n}/{width}/{height}" for n in range(distinct)]
    lines = (
        photos
        + rng.choices(photos, k=repeats)
        + [f"{url}.jpg" for url in rng.sample(photos, aliases)]
        + [f"{root}/error/404"] * missing
        + [f"{root}/{6000 + n}/{height}" for n in range(oversized)]
    )
    rng.shuffle(lines)
    return lines


def write_list(path: Path, lines: Sequence[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# -- what a crawl left in the database --------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """The images app's tables, in the form two correct runs of one list agree on: rows
    sorted, timestamps and crawl ids left out, and which of the lines with the same bytes
    counts as `success` (the first one stored, which depends on timing) left open: each such
    group has exactly one, which `problems` checks."""

    images: tuple[tuple, ...]
    sources: tuple[tuple, ...]
    lines: tuple[tuple, ...]  # (line, url, "image" or "error", reason, http status, md5)
    outcomes: tuple[tuple[str, int], ...]  # lines per outcome
    counted: tuple[tuple[str, int], ...]  # the per-minute counters' totals per outcome
    first_stored: tuple[tuple[str, int], ...]  # md5 -> its lines counted `success`

    def problems(self) -> list[str]:
        """Ways the tables contradict themselves (empty for a correct crawl)."""
        found = []
        if self.counted != self.outcomes:
            found.append(f"counters {dict(self.counted)} != line outcomes {dict(self.outcomes)}")
        unresolved = [line for line in self.lines if line[2] is None]
        if unresolved:
            found.append(f"{len(unresolved)} lines without an outcome, e.g. {unresolved[:3]}")
        stored = {row[0] for row in self.images}
        wrong = {md5: n for md5, n in self.first_stored if n != 1}
        wrong |= {md5: 0 for md5 in stored - {md5 for md5, _ in self.first_stored}}
        if wrong:
            found.append(f"images not counted `success` exactly once: {sorted(wrong.items())[:5]}")
        return found


def snapshot(database_url: str) -> Snapshot:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            image_rows = conn.execute(
                sa.select(
                    images.c.md5,
                    images.c.width,
                    images.c.height,
                    images.c.phash,
                    images.c.gray_key,
                    images.c.format,
                    images.c.mode,
                    images.c.bytes,
                )
            ).all()
            source_rows = conn.execute(
                sa.select(image_sources.c.md5, image_sources.c.url_key, image_sources.c.url)
            ).all()
            items, failures = crawl_run_items.c, crawl_failures.c
            failed = sa.and_(
                items.state == FAILED,
                failures.run_id == items.run_id,
                failures.item_key == items.item_key,
            )
            item_rows = [
                (int(key), url, None if state == QUEUED else outcome, reason, status, md5)
                for key, url, state, outcome, reason, status, md5 in conn.execute(
                    sa.select(
                        items.item_key,
                        items.target,
                        items.state,
                        items.outcome,
                        failures.reason,
                        failures.http_status,
                        items.result,
                    ).select_from(crawl_run_items.outerjoin(crawl_failures, failed))
                )
            ]
            counter_rows = conn.execute(
                sa.select(outcome_counts.c.outcome, sa.func.sum(outcome_counts.c.count))
                .where(outcome_counts.c.app == "images")
                .group_by(outcome_counts.c.outcome)
            ).all()
    finally:
        engine.dispose()
    kinds = {"success": "image", "duplicate": "image", "error": "error", None: None}
    lines = sorted(
        (
            (line, url, kinds[outcome], reason, status, md5)
            for line, url, outcome, reason, status, md5 in item_rows
        ),
        key=lambda row: (row[0], row[1]),
    )
    outcomes = Counter(outcome for _, _, outcome, *_ in item_rows)
    firsts = Counter(md5 for _, _, outcome, _, _, md5 in item_rows if outcome == "success")
    return Snapshot(
        images=tuple(sorted(tuple(row) for row in image_rows)),
        sources=tuple(sorted(tuple(row) for row in source_rows)),
        lines=tuple(lines),
        outcomes=tuple(sorted((str(k), n) for k, n in outcomes.items())),
        counted=tuple(sorted((k, int(n)) for k, n in counter_rows if n)),
        first_stored=tuple(sorted(firsts.items())),
    )


def resolved_lines(database_url: str, distinct_urls: bool = False) -> int:
    """Lines of every crawl that have their outcome, or the distinct URLs among them (0 while
    the tables do not exist yet)."""
    engine = sa.create_engine(database_url)
    counted = (
        sa.func.count(sa.distinct(crawl_run_items.c.target)) if distinct_urls else sa.func.count()
    )
    try:
        with engine.connect() as conn:
            return conn.execute(
                sa.select(counted)
                .select_from(crawl_run_items)
                .where(crawl_run_items.c.state != QUEUED)
            ).scalar_one()
    except sa.exc.DBAPIError:
        return 0
    finally:
        engine.dispose()


def live_workers(database_url: str) -> list[str]:
    """Consumer names of the workers whose heartbeat is fresh (none before the tables exist)."""
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            return live_consumers(conn)
    except sa.exc.DBAPIError:
        return []
    finally:
        engine.dispose()


def queue_stats(queue_url: str) -> dict[str, QueueStats]:
    """The queue's counts by queue name (one priority per stage in the images app)."""
    backend = open_queue(queue_url)
    try:
        return {s.queue: s for s in backend.stats()}
    finally:
        backend.close()


def jobs_left(queue_url: str) -> dict[str, tuple[int, int, int, int]]:
    """(ready, delayed, in flight, dead) of every queue that still holds a job."""
    counts = {
        name: (s.ready, s.delayed, s.in_flight, s.dead)
        for name, s in queue_stats(queue_url).items()
    }
    return {name: held for name, held in counts.items() if any(held)}


def migrate_when_released(database_url: str, start: threading.Barrier) -> None:
    """A machine starting: migrate the database at the same moment as the others."""
    engine = make_engine(database_url)
    try:
        start.wait(PATIENCE)
        migrate(engine, migration_dirs())
    finally:
        engine.dispose()


def expected_snapshot(lines: Sequence[str], seed: int = 0) -> Snapshot:
    """What a correct crawl of `lines` (numbered from 1, no blank lines) against the image
    host of world `seed` leaves, computed here from the host's bytes and the imaging kernel
    without any queue, worker or database: the reference a run is compared with. Lines may
    be photos, refused paths and `/hostile/slow/<w>/<h>` (slowly served `/<w>/<h>`)."""
    host = ImageHost(seed)
    max_pixels = ImagingSettings().max_pixels
    rows: dict[str, tuple] = {}
    sources: set[tuple] = set()
    items = []
    for number, url in enumerate(lines, start=1):
        path = urlsplit(url).path.removeprefix("/hostile/slow")  # the bytes of /<w>/<h>
        try:
            request = parse_image_path(path)
        except InvalidImageRequest as refused:
            items.append((number, url, "error", "http_status", refused.status, None))
            continue
        data = host.image_bytes(request)
        md5 = md5_hex(data)
        if md5 not in rows:
            image = process_image(data, max_pixels)
            rows[md5] = (
                md5,
                image.width,
                image.height,
                phash_to_db(image.phash),
                image.gray_digest,
                image.format,
                image.mode,
                len(data),
            )
        sources.add((md5, url_key(url), url))
        items.append((number, url, "image", None, None, md5))
    images_lines = sum(1 for item in items if item[2] == "image")
    outcomes = {"success": len(rows), "duplicate": images_lines - len(rows)}
    outcomes["error"] = len(items) - images_lines
    counts = tuple(sorted((k, n) for k, n in outcomes.items() if n))
    return Snapshot(
        images=tuple(sorted(rows.values())),
        sources=tuple(sorted(sources)),
        lines=tuple(sorted(items, key=lambda row: (row[0], row[1]))),
        outcomes=counts,
        counted=counts,
        first_stored=tuple(sorted((md5, 1) for md5 in rows)),
    )


# -- private servers --------------------------------------------------------------------------


def _private_dir(prefix: str) -> Path:
    """A folder outside pytest's tmp_path (which is private to root): servers that refuse to
    run as root run as the `postgres` user and must reach it."""
    return Path(tempfile.mkdtemp(prefix=prefix))


class RedisServer:
    """A private redis-server with AOF on, in its own folder, on a free port."""

    def __init__(self) -> None:
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            raise FileNotFoundError("redis-server is not installed (apt-get install redis-server)")
        self.root = _private_dir("sleuth-redis-")
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary or "redis-server",
                *("--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.root)),
                *("--appendonly", "yes", "--appendfsync", "everysec", "--save", ""),
                *("--logfile", str(self.root / "redis.log")),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=PATIENCE)

        def answers() -> bool:
            try:
                return bool(client.ping())
            except redis.ConnectionError:  # BusyLoadingError (reading the AOF) is one too
                return False

        try:
            wait_for(answers, f"redis-server on port {self.port}")
        finally:
            client.close()

    def stop(self) -> None:
        """SIGTERM, as a service manager stops it: Redis flushes its AOF and exits."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(PATIENCE)
        self.process = None

    def restart(self, down_for: float = 1.0) -> None:
        self.stop()
        time.sleep(down_for)
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def postgres_bindir() -> Path:
    """The newest installed PostgreSQL's programs (initdb, pg_ctl)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parent.parent.name),
    )
    if not found:
        raise FileNotFoundError("PostgreSQL server programs not found under /usr/lib/postgresql")
    return Path(found[-1]).parent


class PostgresServer:
    """A private PostgreSQL cluster (initdb) in its own folder, on a free port. PostgreSQL
    refuses to run as root, so as root it runs as the `postgres` user."""

    def __init__(self) -> None:
        self.bindir = postgres_bindir()
        self.root = _private_dir("sleuth-pg-")
        self.data = self.root / "data"
        self.port = free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            self.as_user = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.root, "postgres", "postgres")
        self._pg(
            "initdb",
            *("-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"),
            "--no-sync",
        )

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _pg(self, program: str, *args: str) -> None:
        done = subprocess.run(
            [*self.as_user, str(self.bindir / program), *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            cwd=self.root,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{program} {' '.join(args)} failed: {done.stderr or done.stdout}")

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root}"
            " -c max_connections=200"
        )
        log = str(self.root / "postgres.log")
        self._pg(
            "pg_ctl", "-D", str(self.data), "-l", log, "-o", options, "-w", "-t", "60", "start"
        )

    def stop(self, mode: str = "fast") -> None:
        """`fast`: a clean shutdown; `immediate`: every server process quits at once, like a
        crash (the next start recovers from the WAL)."""
        self._pg("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def restart(self, down_for: float = 1.0, mode: str = "immediate") -> None:
        self.stop(mode)
        time.sleep(down_for)
        self.start()

    def close(self) -> None:
        with contextlib.suppress(RuntimeError):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


# -- machines ---------------------------------------------------------------------------------


def clean_environ() -> dict[str, str]:
    """This process's environment without any SLEUTH_ setting that could leak into a machine."""
    return {k: v for k, v in os.environ.items() if not k.startswith("SLEUTH_")}


@dataclass
class Machine:
    """One `sleuth worker` in a session of its own: `kill` takes its CPU pool down with it."""

    name: str
    root: Path
    env: dict[str, str]
    queues: str | None = None
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.root / "worker.log"

    def start(self) -> Machine:
        self.root.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        args = [*SLEUTH, "worker", *(["--queues", self.queues] if self.queues else [])]
        self.process = subprocess.Popen(
            args,
            env=self.env,
            cwd=self.root,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """kill -9 the worker and every process of its session, as a crashed machine."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self._close_log()

    def terminate(self) -> None:
        """SIGTERM to the worker, as `systemctl stop` or Ctrl-C would send."""
        if self.alive():
            assert self.process is not None
            self.process.terminate()

    def wait(self, timeout: float) -> int:
        assert self.process is not None
        code = self.process.wait(timeout)
        self._close_log()
        return code

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""


@dataclass
class Cluster:
    """Machines that share one database, one queue and one blob folder under `root`."""

    root: Path
    database_url: str
    queue_url: str
    settings: dict[str, str] = field(default_factory=dict)  # extra SLEUTH_* for every machine
    machines: list[Machine] = field(default_factory=list)
    _names: int = 0

    @property
    def blob_dir(self) -> Path:
        return self.root / "shared-blobs"

    def environ(self, data_dir: Path) -> dict[str, str]:
        """The environment of a machine whose own data folder is `data_dir`."""
        return {
            **clean_environ(),
            "SLEUTH_DATA_DIR": str(data_dir),
            "SLEUTH_DATABASE_URL": self.database_url,
            "SLEUTH_QUEUE_URL": self.queue_url,
            "SLEUTH_BLOB_DIR": str(self.blob_dir),
            "SLEUTH_NET_ALLOW_PRIVATE": "1",
            "SLEUTH_WORKER_PROCESSES": "1",
            **self.settings,
        }

    def add(self, queues: str | None = None) -> Machine:
        """Start a worker on a new machine."""
        self._names += 1
        root = self.root / f"machine-{self._names}"
        machine = Machine(f"machine-{self._names}", root, self.environ(root / "data"), queues)
        self.machines.append(machine.start())
        return machine

    def alive(self) -> list[Machine]:
        return [m for m in self.machines if m.alive()]

    def sleuth(
        self, *args: str, timeout: float = PATIENCE, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run a `sleuth` command on a machine of its own (a console, an operator's laptop)."""
        home = self.root / "console"
        home.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [*SLEUTH, *args],
            env=self.environ(home / "data"),
            cwd=home,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"sleuth {' '.join(args)} exited {done.returncode}:\n{done}")
        return done

    def start_crawl(self, list_file: Path, machines: int) -> subprocess.Popen[bytes]:
        """Start `machines` workers, wait until all are registered (so that each takes part
        from the first job), then queue the list from the console with `crawl`."""
        for _ in range(machines):
            self.add()
        wait_for(lambda: len(live_workers(self.database_url)) >= machines, "workers registered")
        return self.crawl(list_file)

    @property
    def crawl_log(self) -> Path:
        return self.root / "console" / "crawl.log"

    def crawl(self, list_file: Path) -> subprocess.Popen[bytes]:
        """`sleuth images crawl LIST --workers 0` from the console machine: it queues the
        list and follows progress (into `crawl_log`) while the machines do the work."""
        home = self.root / "console"
        home.mkdir(parents=True, exist_ok=True)
        with self.crawl_log.open("wb") as log:
            return subprocess.Popen(
                [*SLEUTH, "images", "crawl", str(list_file), "--workers", "0"],
                env=self.environ(home / "data"),
                cwd=home,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def crawl_output(self) -> str:
        return self.crawl_log.read_text(errors="replace")

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM every machine still running, then kill what has not stopped in time."""
        for machine in self.alive():
            machine.terminate()
        deadline = time.monotonic() + timeout
        for machine in self.machines:
            if machine.process is None:
                continue
            try:
                machine.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                machine.kill()

    def logs(self) -> str:
        """Every machine's log tail, for an assertion message."""
        return "\n".join(f"--- {m.name}:\n{m.log_tail()}" for m in self.machines)

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        for machine in self.machines:
            if machine.alive():
                machine.kill()


def kill_randomly(
    cluster: Cluster,
    crawl: subprocess.Popen[bytes],
    *,
    every: float,
    rng: random.Random,
    timeout: float,
) -> int:
    """Until the crawl ends: every `every` seconds kill -9 a random machine and start it
    again at once (a crashed host coming back). Returns how many kills there were."""
    kills = 0
    deadline = time.monotonic() + timeout
    next_kill = time.monotonic() + every
    while crawl.poll() is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the crawl did not end within {timeout:g} s ({kills} kills)")
        if time.monotonic() < next_kill:
            time.sleep(0.05)
            continue
        next_kill += every
        victim = rng.choice(cluster.machines)
        victim.kill()
        victim.start()
        kills += 1
    return kills


@contextlib.contextmanager
def private_redis() -> Iterator[RedisServer]:
    server = RedisServer()
    try:
        server.start()
        yield server
    finally:
        server.close()


@contextlib.contextmanager
def private_postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.close()
