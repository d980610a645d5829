"""The graph crawler against its ceilings and its failures, on the offline web.

    .venv/bin/python -m bench.graph [--parts ceiling,kill,export] [--seconds 90]
        [--window-scale 0.05] [--quota-scale 0.02] [--ceiling-accounts 20000]
        [--kill-accounts 3000] [--depth 6] [--worker-kills 20] [--stack-kills 3]
        [--every 2] [--edges 1000000] [--format csv] [--write-results]

Parts:
- ceiling: `sleuth graph crawl -F` from a SocialWorld's most followed Bluesky account, bound to
  1, 2 and 4 loopback source addresses (127.0.0.2...), against the emulated AppView's
  `RateLimit-*` budget per address with its windows and counts scaled (printed); for
  `--seconds` each. From the emulator's own counts, over the whole windows inside the run:
  requests per address per window as a fraction of the ceiling, 429s per window, and the
  requests/s of 2 and 4 addresses over 1.
- kill: the same crawl (rate limits off) from a Bluesky and a Mastodon seed to `--depth`, on a
  private Redis (AOF) and PostgreSQL with two `sleuth worker` machines, once undisturbed and
  once with `--worker-kills` kill -9 of a random machine and `--stack-kills` kill -9 of
  everything (Redis, PostgreSQL in immediate mode, the machines and the crawl command, all
  started again; the crawl command resumes); node and edge counts against the undisturbed run
  and the world's ground truth, follower pages answered more than once (the emulator's
  count), items without an outcome and jobs left; then the same command again adds 0 edges.
- export: `--edges` power-law edges written straight into a fresh SQLite graph, then
  `sleuth graph export --format` in a child process: its peak RSS (wait4) and time.
`--write-results` replaces the `## graph` section of bench/RESULTS.md (appended if missing).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import random
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import redis
import sqlalchemy as sa

from bench.index import machine, write_section
from sleuth.apps.graph.models import FOLLOW, SELECTED, graph_edges, graph_nodes
from sleuth.config import Settings
from sleuth.crawl.models import crawl_run_items
from sleuth.emulator import EmulatorServer, create_imagehost_app
from sleuth.emulator.artworld import MASTODON_SERVERS, Account
from sleuth.emulator.bluesky import LIMIT as BLUESKY_LIMIT
from sleuth.emulator.cli import emulator_sources
from sleuth.emulator.imagehost import SOCIAL
from sleuth.emulator.mastodon import LIMIT as MASTODON_LIMIT
from sleuth.emulator.ratelimits import Limit, Limiter
from sleuth.emulator.socialworld import SocialWorld
from sleuth.services import Services
from tests.apps.graph.truth import follower_graph, followers
from tests.distributed.cluster import (
    SLEUTH,
    Cluster,
    PostgresServer,
    RedisServer,
    clean_environ,
    jobs_left,
    live_workers,
    private_postgres,
    private_redis,
)
from tests.patience import wait_for

SEED = 7
PARTS = ("ceiling", "kill", "export")
ADDRESS_COUNTS = (1, 2, 4)
FOLLOWER_PATHS = ("/followers", "app.bsky.graph.getFollowers")
CEILINGS = {
    "bluesky": (BLUESKY_LIMIT, ("appview",)),
    "mastodon": (MASTODON_LIMIT, MASTODON_SERVERS),
}
"""Per network: the real whole-API limit per address, and the emulator's buckets of it (each
emulated Mastodon instance has its own, and the client a budget for each: `api:<server>`)."""


def emulator_env(url: str) -> dict[str, str]:
    """The `SLEUTH_SOURCES_*` that route every connector to the emulator at `url`."""
    return {f"SLEUTH_SOURCES_{k.upper()}": v for k, v in emulator_sources(url).items()}


def most_followed(world: SocialWorld, network: str) -> Account:
    """The account of `network` with the most listed followers (the preferential
    attachment's first comers), where a breadth-first crawl meets the whole power law."""
    return max(
        (a for a in world.accounts if a.network == network and followers(world, a)),
        key=lambda a: len(followers(world, a)),
    )


def killpg(process: subprocess.Popen[bytes]) -> None:
    """kill -9 a process started in a session of its own, and its children."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


class PageCounter:
    """WSGI middleware counting the follower pages answered, by URL (path and query)."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app
        self.answered: Counter[str] = Counter()
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ["PATH_INFO"]
        if path.endswith(FOLLOWER_PATHS):
            with self.lock:
                self.answered[path + "?" + environ.get("QUERY_STRING", "")] += 1
        return self.app(environ, start_response)

    def snapshot(self) -> Counter[str]:
        with self.lock:
            return Counter(self.answered)


# -- ceiling ---------------------------------------------------------------------------------


@dataclasses.dataclass
class CeilingRun:
    addresses: int
    limit: Limit
    windows: int
    buckets: int  # the emulator's ceilings per address: one per Mastodon instance
    served: list[int]  # per (address, bucket, whole window)
    refused: list[int]
    seconds: float  # the whole windows' span

    @property
    def fraction(self) -> float:
        return sum(self.served) / (len(self.served) * self.limit.requests) if self.served else 0.0

    @property
    def rate(self) -> float:
        return sum(self.served) / self.seconds if self.seconds else 0.0


def whole_windows(
    limiter: Limiter, buckets: tuple[str, ...], limit: Limit, ended: float
) -> tuple[dict[float, Counter[str]], dict[float, Counter[str]]]:
    """Served and refused per window start and (client, bucket), for the windows that ended
    before `ended` but the first with any request (the crawl's start-up: budgets not known
    yet). Each bucket is a ceiling of its own: one per emulated Mastodon instance."""
    starts = [start for (name, _c, start) in limiter.served() if name in buckets]
    first = min(starts, default=ended)
    served: dict[float, Counter[tuple[str, str]]] = {}
    refused: dict[float, Counter[tuple[str, str]]] = {}
    for counts, into in ((limiter.served(), served), (limiter.refused(), refused)):
        for (name, client, start), n in counts.items():
            if name in buckets and first < start and start + limit.window <= ended:
                into.setdefault(start, Counter())[client, name] += n
    return served, refused


def ceiling_run(
    world: SocialWorld, seed: Account, root: Path, addresses: int, args: argparse.Namespace
) -> CeilingRun:
    app = create_imagehost_app(
        SEED, world=world, window_scale=args.window_scale, quota_scale=args.quota_scale
    )
    real, buckets = CEILINGS[args.network]
    limit = real.scaled(args.window_scale, args.quota_scale)
    sources = tuple(f"127.0.0.{2 + i}" for i in range(addresses))
    seeds = root / "seeds.txt"
    seeds.write_text((seed.acct if args.network == "mastodon" else seed.id) + "\n")
    home = root / f"{args.network}-addresses-{addresses}"
    with EmulatorServer(app) as url:
        env = {
            **clean_environ(),
            **emulator_env(url),
            "SLEUTH_DATA_DIR": str(home),
            "SLEUTH_NET_ALLOW_PRIVATE": "1",
            "SLEUTH_NET_SOURCE_ADDRESSES": ",".join(sources),
            "SLEUTH_WORKER_PROCESSES": "1",
        }
        command = [*SLEUTH, "graph", "crawl", "--seeds", str(seeds), "-F", "--depth", "50"]
        home.mkdir(parents=True)
        with (home / "crawl.log").open("wb") as log:
            crawl = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
            time.sleep(args.seconds)
            ended = time.time()
            finished = crawl.poll() is not None
            killpg(crawl)
        if finished:
            print(f"  warning: the crawl ended before {args.seconds} s: give a larger world")
        limiter = app.extensions[SOCIAL][args.network].limiter
        served, refused = whole_windows(limiter, buckets, limit, ended)
    cells = [(w, s, b) for w in sorted(served) for s in sources for b in buckets]
    per_cell = [served[w][s, b] for w, s, b in cells]
    refusals = [refused.get(w, Counter())[s, b] for w, s, b in cells]
    return CeilingRun(
        addresses, limit, len(served), len(buckets), per_cell, refusals, len(served) * limit.window
    )


def ceiling(args: argparse.Namespace, root: Path) -> list[str]:
    world = SocialWorld(SEED, accounts=args.ceiling_accounts)
    real, _buckets = CEILINGS[args.network]
    limit = real.scaled(args.window_scale, args.quota_scale)
    seed = most_followed(world, args.network)  # slow on Mastodon: once for the three runs
    where = (
        "Bluesky AppView"
        if args.network == "bluesky"
        else "Mastodon, both instances (each its own ceiling: the figures are per address and"
        " instance)"
    )
    lines = [
        f"Ceiling: SocialWorld({SEED}, accounts={args.ceiling_accounts}) {where}; "
        f"its {real.requests} requests / {real.window:g} s per address scaled "
        f"(windows x{args.window_scale:g}, counts x{args.quota_scale:g}) to {limit.requests} / "
        f"{limit.window:g} s = {limit.requests * 3600 / limit.window:.0f} requests/h per "
        f"address (the real ceiling: {real.requests * 3600 / real.window:.0f}/h); "
        "`graph crawl -F` for "
        f"{args.seconds:g} s per run, counted over the whole windows after the first that "
        "saw a request.",
        "",
        "| addresses | windows | requests/h per address | of the ceiling | min window | "
        "429s per window (max) | requests/s | vs 1 address |",
        "|---|---|---|---|---|---|---|---|",
    ]
    print("\n".join(lines), flush=True)
    base = None
    runs: list[CeilingRun] = []
    for n in ADDRESS_COUNTS:
        run = ceiling_run(world, seed, root, n, args)
        runs.append(run)
        base = base or run.rate
        per_hour = run.rate / (n * run.buckets) * 3600
        low = min(run.served) / limit.requests if run.served else 0.0
        row = (
            f"| {n} | {run.windows} | {per_hour:.0f} | {run.fraction:.1%} | {low:.0%} | "
            f"{max(run.refused, default=0)} | {run.rate:.2f} | {run.rate / base:.2f}x |"
        )
        print(row, flush=True)
        lines.append(row)
    share = min(r.fraction for r in runs)
    worst = max(max(r.refused, default=0) for r in runs)
    scaling = runs[-1].rate / base if base else 0.0
    verdict = (
        f"Targets: >= 70% of the ceiling per address: {'met' if share >= 0.7 else 'MISSED'} "
        f"({share:.1%} at worst); <= 1 HTTP 429 per window: {'met' if worst <= 1 else 'MISSED'} "
        f"({worst}); >= 3.6x at 4 addresses: {'met' if scaling >= 3.6 else 'MISSED'} "
        f"({scaling:.2f}x)."
    )
    print(verdict, flush=True)
    return [*lines, "", verdict]


# -- kill ------------------------------------------------------------------------------------


@dataclasses.dataclass
class Stack:
    """A private Redis and PostgreSQL, worker machines and the crawl command on them."""

    root: Path
    redis: RedisServer
    postgres: PostgresServer
    cluster: Cluster
    seeds: Path
    depth: int
    crawl: subprocess.Popen[bytes] | None = None
    crawls: int = 0

    def command(self) -> list[str]:
        depth = ["--depth", str(self.depth), "--workers", "0"]
        return [*SLEUTH, "graph", "crawl", "--seeds", str(self.seeds), "-F", *depth]

    def start_crawl(self) -> subprocess.Popen[bytes]:
        """The crawl command on the console machine (it queues and follows; the machines
        work); started again, it resumes."""
        home = self.root / "console"
        home.mkdir(parents=True, exist_ok=True)
        self.crawls += 1
        with (home / f"crawl-{self.crawls}.log").open("wb") as log:
            self.crawl = subprocess.Popen(
                self.command(),
                env=self.cluster.environ(home / "data"),
                cwd=home,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self.crawl

    def kill_everything(self) -> None:
        """kill -9 of the whole stack, then everything started again."""
        for m in self.cluster.machines:
            m.kill()
        if self.crawl is not None:
            killpg(self.crawl)
        if self.redis.process is not None:
            self.redis.process.kill()
            self.redis.process.wait()
        self.postgres.stop("immediate")
        self.postgres.start()
        self.redis.start()
        for m in self.cluster.machines:
            m.start()
        self.start_crawl()


def graph_counts(database_url: str) -> tuple[int, int, int]:
    """Nodes, edges, and crawl items without an outcome."""
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            nodes = conn.execute(sa.select(sa.func.count()).select_from(graph_nodes)).scalar()
            edges = conn.execute(sa.select(sa.func.count()).select_from(graph_edges)).scalar()
            open_items = conn.execute(
                sa.select(sa.func.count())
                .select_from(crawl_run_items)
                .where(crawl_run_items.c.outcome.is_(None))
            ).scalar()
        return int(nodes or 0), int(edges or 0), int(open_items or 0)
    finally:
        engine.dispose()


class RedisSampler:
    """Redis memory and the jobs queued, every half second while a crawl runs: the cost of
    the frontier (queued jobs) in Redis memory."""

    def __init__(self, redis_url: str) -> None:
        self.client = redis.Redis.from_url(redis_url)
        self.base = int(self.client.info("memory")["used_memory"])
        self.samples: list[tuple[int, int]] = []  # (jobs queued, bytes used)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(redis_url,), daemon=True)
        self.thread.start()

    def _run(self, redis_url: str) -> None:
        while not self.stop.wait(0.5):
            with contextlib.suppress(redis.RedisError):
                held = sum(sum(v[:3]) for v in jobs_left(redis_url).values())
                self.samples.append((held, int(self.client.info("memory")["used_memory"])))

    def per_job(self) -> tuple[int, float]:
        """The most jobs seen queued at once, and Redis's bytes over its start per job then."""
        self.stop.set()
        self.thread.join()
        self.client.close()
        jobs, used = max(self.samples, default=(0, self.base))
        return jobs, (used - self.base) / jobs if jobs else 0.0


TABLES = ("graph_nodes", "graph_edges", "graph_cursors", "crawl_run_items", "crawl_failures")


def table_bytes(database_url: str) -> dict[str, int]:
    """PostgreSQL's size of each graph and crawl table, indexes and TOAST included."""
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            return {
                t: int(conn.execute(sa.text(f"SELECT pg_total_relation_size('{t}')")).scalar_one())
                for t in TABLES
            }
    finally:
        engine.dispose()


@dataclasses.dataclass
class KillRun:
    seconds: float
    counts: tuple[int, int, int]
    pages: Counter[str]
    worker_kills: int
    stack_kills: int
    crawl_starts: int
    jobs_left: dict[str, tuple[int, int, int, int]]
    rerun_edges: int
    rerun_pages: int
    frontier: tuple[int, float]  # most jobs queued at once, Redis bytes per job then
    tables: dict[str, int]


@contextlib.contextmanager
def stack(root: Path, url: str, seeds: Path, depth: int) -> Iterator[Stack]:
    with private_redis() as redis_server, private_postgres() as postgres_server:
        settings = {**emulator_env(url), "SLEUTH_WORKER_LEASE_SECONDS": "3"}
        with Cluster(root, postgres_server.url, redis_server.url, settings) as cluster:
            yield Stack(root, redis_server, postgres_server, cluster, seeds, depth)


def kill_run(
    counter: PageCounter,
    url: str,
    root: Path,
    seeds: Path,
    args: argparse.Namespace,
    events: list[str],
) -> KillRun:
    """One crawl on a fresh stack with two machines, `events` ("worker" or "stack") one
    every `--every` seconds while it runs; then the same command once more."""
    rng = random.Random(SEED)
    counter.answered.clear()
    with stack(root, url, seeds, args.depth) as s:
        for _ in range(2):
            s.cluster.add()
        wait_for(lambda: len(live_workers(s.postgres.url)) >= 2, "workers registered")
        sampler = RedisSampler(s.redis.url) if not events else None
        began = time.monotonic()
        crawl = s.start_crawl()
        done = {"worker": 0, "stack": 0}
        next_event = time.monotonic() + args.every
        while True:
            code = crawl.poll()
            if code == 0:
                break
            if code is not None:  # the crawl command died with the stack: resume it
                crawl = s.start_crawl()
            if events and time.monotonic() >= next_event:
                event = events.pop(0)
                if event == "worker":
                    victim = rng.choice(s.cluster.machines)
                    victim.kill()
                    victim.start()
                else:
                    s.kill_everything()
                    crawl = s.crawl or crawl
                done[event] += 1
                next_event = time.monotonic() + args.every
            time.sleep(0.05)
        seconds = time.monotonic() - began
        frontier = sampler.per_job() if sampler is not None else (0, 0.0)
        tables = table_bytes(s.postgres.url)
        counts = graph_counts(s.postgres.url)
        left = jobs_left(s.redis.url)
        pages = counter.snapshot()
        again = s.start_crawl()
        again.wait()
        rerun_edges = graph_counts(s.postgres.url)[1] - counts[1]
        rerun_pages = sum(counter.snapshot().values()) - sum(pages.values())
        s.cluster.stop()
    return KillRun(
        seconds,
        counts,
        pages,
        done["worker"],
        done["stack"],
        s.crawls - 1,
        left,
        rerun_edges,
        rerun_pages,
        frontier,
        tables,
    )


def kill(args: argparse.Namespace, root: Path) -> list[str]:
    world = SocialWorld(SEED, accounts=args.kill_accounts)
    seeded = [most_followed(world, "bluesky"), most_followed(world, "mastodon")]
    seeds = root / "kill-seeds.txt"
    seeds.write_text("".join(f"{a.id if a.network == 'bluesky' else a.acct}\n" for a in seeded))
    truth_nodes, truth_edges = follower_graph(world, seeded, args.depth)
    counter = PageCounter(create_imagehost_app(SEED, world=world, rate_limits=False))
    events = ["worker"] * args.worker_kills + ["stack"] * args.stack_kills
    random.Random(SEED).shuffle(events)
    with EmulatorServer(counter) as url:
        calm = kill_run(counter, url, root / "calm", seeds, args, [])
        print(f"  undisturbed: {calm.counts[:2]} in {calm.seconds:.1f} s", flush=True)
        hurt = kill_run(counter, url, root / "killed", seeds, args, list(events))
    pages = sum(calm.pages.values())
    twice = sum(n - 1 for n in hurt.pages.values() if n > 1)
    most = max(hurt.pages.values(), default=0)
    kills = hurt.worker_kills + hurt.stack_kills
    same = hurt.counts[:2] == calm.counts[:2]
    truth = calm.counts[:2] == (len(truth_nodes), len(truth_edges))
    lines = [
        f"Kill: SocialWorld({SEED}, accounts={args.kill_accounts}), `graph crawl -F --depth "
        f"{args.depth}` from its most followed Bluesky and Mastodon accounts, rate limits off; "
        "private Redis (AOF everysec) + PostgreSQL, 2 `sleuth worker` machines (1 process, "
        "concurrency 64, lease 3 s), the crawl command on a console machine.",
        "",
        "| run | seconds | nodes | edges | follower pages answered | answered again | "
        "items without outcome | jobs left | crawl command starts |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| undisturbed | {calm.seconds:.1f} | {calm.counts[0]} | {calm.counts[1]} | {pages} | "
        f"{sum(n - 1 for n in calm.pages.values() if n > 1)} | {calm.counts[2]} | "
        f"{sum(sum(v) for v in calm.jobs_left.values())} | 1 |",
        f"| {hurt.worker_kills} worker + {hurt.stack_kills} stack kill -9 | {hurt.seconds:.1f} | "
        f"{hurt.counts[0]} | {hurt.counts[1]} | {sum(hurt.pages.values())} | {twice} | "
        f"{hurt.counts[2]} | {sum(sum(v) for v in hurt.jobs_left.values())} | "
        f"{hurt.crawl_starts + 1} |",
        "",
        f"Ground truth: {len(truth_nodes)} nodes, {len(truth_edges)} edges; the undisturbed run "
        f"{'matches' if truth else 'DIFFERS'}; the killed run has "
        f"{'the same' if same else 'DIFFERENT'} counts. Pages answered again per kill: "
        f"{twice / kills if kills else 0:.1f} (target <= 1); the most answers of any one page: "
        f"{most} (each job a kill interrupted asks again for at most the one page it had in "
        "flight; a worker runs up to 64 jobs at once). The same command again: "
        f"{hurt.rerun_edges} edges added, {hurt.rerun_pages} follower pages asked.",
    ]
    nodes, edges = calm.counts[:2]
    sizes = ", ".join(f"{t} {n / 2**10:.0f} KiB" for t, n in calm.tables.items())
    per_edge = calm.tables["graph_edges"] / edges if edges else 0.0
    per_node = sum(calm.tables[t] for t in TABLES if t != "graph_edges") / nodes if nodes else 0
    jobs, per_job = calm.frontier
    lines += [
        "",
        f"Costs measured on the undisturbed run: {calm.seconds / pages * 1000:.1f} ms of crawl "
        f"per follower page ({pages / calm.seconds:.1f} pages/s, "
        f"{edges / calm.seconds:.0f} edges/s, 2 machines on the 2 cores); PostgreSQL: {sizes}; "
        f"{per_edge:.0f} bytes per edge, {per_node:.0f} bytes per node (nodes, cursors, crawl "
        f"items and failures); Redis: {per_job:.0f} bytes per queued job (at the most queued "
        f"at once, {jobs}).",
    ]
    for line in lines:
        print(line, flush=True)
    return lines


# -- export ----------------------------------------------------------------------------------


def power_law_edges(nodes: int, edges: int, rng: random.Random) -> Iterator[tuple[int, int]]:
    """`edges` distinct follows among `nodes` accounts by preferential attachment."""
    seen: set[tuple[int, int]] = set()
    weighted = [0, 1]
    follows = max(1, edges // nodes + 1)
    for follower in range(2, nodes):
        for _ in range(follows):
            followed = weighted[rng.randrange(len(weighted))]
            if followed != follower and (follower, followed) not in seen:
                seen.add((follower, followed))
                weighted.append(followed)
                yield follower, followed
                if len(seen) >= edges:
                    return
        weighted.append(follower)


def batched(rows: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def export(args: argparse.Namespace, root: Path) -> list[str]:
    data = root / "export"
    services = Services(Settings(data_dir=data))
    nodes = max(3, args.edges // 10)
    now = time.time()
    started = time.monotonic()
    with services.engine.begin() as conn:
        for batch in batched(
            (
                {
                    "network": "bluesky",
                    "account_id": f"did:plc:{i:024d}",
                    "handle": f"user{i}.bsky.social",
                    "depth": 1,
                    "state": SELECTED,
                    "first_seen": now,
                    "updated_at": now,
                }
                for i in range(nodes)
            ),
            10_000,
        ):
            conn.execute(graph_nodes.insert(), batch)
        for batch in batched(
            (
                {
                    "network": "bluesky",
                    "src": f"did:plc:{a:024d}",
                    "dst": f"did:plc:{b:024d}",
                    "kind": FOLLOW,
                    "seen_at": now,
                }
                for a, b in power_law_edges(nodes, args.edges, random.Random(SEED))
            ),
            10_000,
        ):
            conn.execute(graph_edges.insert(), batch)
    build = time.monotonic() - started
    database = services.settings.effective_database_url
    services.close()
    out = root / ("graph-export" + ("" if args.format in ("csv", "parquet") else f".{args.format}"))
    env = {**clean_environ(), "SLEUTH_DATA_DIR": str(data), "SLEUTH_DATABASE_URL": database}
    command = [*SLEUTH, "graph", "export", "--format", args.format, "--out", str(out)]
    started = time.monotonic()
    child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    _pid, status, usage = os.wait4(child.pid, 0)
    seconds = time.monotonic() - started
    said = child.stdout.read().decode().strip() if child.stdout else ""
    said = said.split(" written to ")[0]  # not the temporary folder
    peak = usage.ru_maxrss * 1024 / 2**20  # kB on Linux
    size = sum(p.stat().st_size for p in ([out] if out.is_file() else out.rglob("*")))
    lines = [
        f"Export: {args.edges} power-law edges among {nodes} nodes written straight into SQLite "
        f"({build:.1f} s), then `sleuth graph export --format {args.format}` in a child process "
        f"(exit {os.waitstatus_to_exitcode(status)}: {said!r}): {seconds:.1f} s, peak RSS "
        f"{peak:.0f} MB (target <= 500 MB), {size / 2**20:.0f} MB written.",
    ]
    print(lines[0], flush=True)
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default=",".join(PARTS), help=f"any of {', '.join(PARTS)}")
    parser.add_argument("--seconds", type=float, default=90.0, help="ceiling: each run's length")
    parser.add_argument("--window-scale", type=float, default=0.05)
    parser.add_argument("--quota-scale", type=float, default=0.02)
    parser.add_argument("--ceiling-accounts", type=int, default=20_000)
    parser.add_argument("--network", choices=sorted(CEILINGS), default="bluesky", help="ceiling")
    parser.add_argument("--kill-accounts", type=int, default=3_000)
    parser.add_argument("--depth", type=int, default=6, help="kill: hops from the seeds")
    parser.add_argument("--worker-kills", type=int, default=20)
    parser.add_argument("--stack-kills", type=int, default=3)
    parser.add_argument("--every", type=float, default=2.0, help="kill: seconds between kills")
    parser.add_argument("--edges", type=int, default=1_000_000, help="export: edges")
    parser.add_argument("--format", default="csv", help="export: csv, graphml, gexf, parquet")
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args()
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}; the parts are {', '.join(PARTS)}")
    command = shlex.join([".venv/bin/python", "-m", "bench.graph", *sys.argv[1:]])
    load = os.getloadavg()
    about = machine(("sqlalchemy", "redis", "psycopg"))
    head = [
        f"`{command}`",
        "",
        f"{about}; load average {load[0]:.1f} at the start (the 2 cores shared with other "
        "engineers and CI: busy).",
    ]
    print("\n".join(head), flush=True)
    root = Path(tempfile.mkdtemp(prefix="sleuth-bench-graph-"))
    body = list(head)
    try:
        for part in parts:
            body += ["", *{"ceiling": ceiling, "kill": kill, "export": export}[part](args, root)]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if args.write_results:
        write_section(
            Path(__file__).with_name("RESULTS.md"), "graph", "## graph\n\n" + "\n".join(body)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
