"""The long chaos run: a list of tens of thousands of URLs crawled by several worker machines
while one of them, chosen at random, is killed with SIGKILL every few seconds (and started
again at once, as a crashed host that reboots); then the database is compared with what a
clean run leaves, computed independently from the image host's bytes.

    .venv/bin/python -m bench.chaos [--urls 20000] [--machines 3] [--every 3] [--lease 5]
        [--min-kills 100] [--seed 0]

Machines are `sleuth worker` processes with their own data folders (tests/distributed/
cluster.py), sharing a private Redis (AOF on) and a private PostgreSQL cluster started for the
run, and a blob folder; the list is queued by `sleuth images crawl --workers 0`. Photos are
64x48, so the run measures the queue and the recovery, not the imaging kernel. Prints its
figures; exits 1 when the database differs from a clean run, a job is left in the queue, or
there were fewer than --min-kills kills.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

from sleuth.emulator.imagehost import create_imagehost_app
from sleuth.emulator.server import EmulatorServer
from tests.distributed.cluster import (
    Cluster,
    expected_snapshot,
    jobs_left,
    kill_randomly,
    private_postgres,
    private_redis,
    small_urls,
    snapshot,
    write_list,
)


def machine_line() -> str:
    cpu = "unknown CPU"
    with open("/proc/cpuinfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{cpu}, {os.cpu_count()} CPUs, {memory:.1f} GiB RAM, Linux {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--urls", type=int, default=20_000, help="lines in the list")
    parser.add_argument("--machines", type=int, default=3, help="worker machines alive at once")
    parser.add_argument("--every", type=float, default=3.0, help="seconds between kills")
    parser.add_argument("--lease", type=float, default=5.0, help="job lease, seconds")
    parser.add_argument("--min-kills", type=int, default=100, help="fewer kills is a failure")
    parser.add_argument("--seed", type=int, default=0, help="list order and kill choices")
    parser.add_argument("--timeout", type=float, default=3600.0, help="give up after, seconds")
    args = parser.parse_args()

    print(f"$ {shlex.join([Path(sys.executable).name, '-m', 'bench.chaos', *sys.argv[1:]])}")
    print(f"machine: {machine_line()}")
    root = Path(tempfile.mkdtemp(prefix="sleuth-chaos-"))
    with (
        EmulatorServer(create_imagehost_app(seed=0)) as base_url,
        private_redis() as redis_server,
        private_postgres() as postgres_server,
    ):
        lines = small_urls(base_url, args.urls, seed=args.seed)
        list_file = write_list(root / "urls.txt", lines)
        queue_url, database_url = redis_server.url, postgres_server.url
        with Cluster(
            root, database_url, queue_url, {"SLEUTH_WORKER_LEASE_SECONDS": str(args.lease)}
        ) as cluster:
            started = time.monotonic()
            crawl = cluster.start_crawl(list_file, args.machines)
            kills = kill_randomly(
                cluster,
                crawl,
                every=args.every,
                rng=random.Random(args.seed),
                timeout=args.timeout,
            )
            duration = time.monotonic() - started
            cluster.stop()
            output = cluster.crawl_output().splitlines()
            summary = next((line for line in output if " lines in " in line), "no summary")
        found = snapshot(database_url)
        left = jobs_left(queue_url)
    reference_started = time.monotonic()
    expected = expected_snapshot(lines)
    reference = time.monotonic() - reference_started
    identical = found == expected
    problems = found.problems()

    print(f"urls: {len(lines)}, machines: {args.machines}, kill every {args.every:g} s")
    print(f"lease: {args.lease:g} s (a killed machine's jobs are taken over after it)")
    print(f"crawl command exit code: {crawl.returncode}; its summary: {summary!r}")
    rate = len(lines) / duration
    print(f"duration: {duration:.1f} s (queueing, crawl and kills), {rate:.1f} URLs/s")
    print(f"kills: {kills} (SIGKILL to a machine's whole process group, restarted at once)")
    print(f"outcomes: {dict(found.outcomes)}; counted per minute: {dict(found.counted)}")
    print(
        f"rows: {len(found.images)} images, {len(found.sources)} sources, {len(found.lines)} lines"
    )
    print(f"identical to a clean run: {identical} (reference computed in {reference:.1f} s)")
    print(f"consistency problems: {problems or 'none'}")
    print(f"jobs left in the queue (ready, delayed, in flight, dead): {left or 'none'}")
    ok = crawl.returncode == 0 and identical and not problems and not left
    ok = ok and kills >= args.min_kills
    print(f"result: {'PASS' if ok else 'FAIL'}")
    if ok:
        shutil.rmtree(root)
    else:
        print(f"logs of the machines and the crawl kept in {root}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
