"""Faults during a distributed crawl: machines killed with SIGKILL again and again, Redis and
PostgreSQL restarted mid-crawl, a worker stopped with SIGTERM. Each time the database ends up
exactly as a clean run leaves it: the same rows, no duplicate, no lost line, every outcome
counted once; and no job is lost or left dead in the queue."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.distributed.cluster import (
    GRACE,
    Cluster,
    PostgresServer,
    RedisServer,
    expected_snapshot,
    jobs_left,
    kill_randomly,
    queue_stats,
    resolved_lines,
    small_urls,
    snapshot,
    write_list,
)
from tests.patience import PATIENCE, wait_for

LEASE = "5"  # seconds: a killed machine's jobs are taken over this long after its death
KILL_EVERY = 4.0  # seconds between two kills in the kill -9 test
# Lines of that crawl: enough for 10 kills or more now that the stages run in batches.
KILL_LINES = 8000
SLOW_BPS = 80  # bytes/s of the slow photos: ~21 s each, longer than the grace period


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_kill_9_machines_again_and_again_loses_and_repeats_nothing(
    tmp_path: Path,
    image_host: str,
    redis_server: RedisServer,
    postgres_url: str,
    make_cluster: Callable[..., Cluster],
) -> None:
    lines = small_urls(image_host, KILL_LINES)
    list_file = write_list(tmp_path / "urls.txt", lines)
    queue_url = redis_server.url
    cluster = make_cluster(postgres_url, queue_url, SLEUTH_WORKER_LEASE_SECONDS=LEASE)
    crawl = cluster.start_crawl(list_file, 3)
    kills = kill_randomly(cluster, crawl, every=KILL_EVERY, rng=random.Random(5), timeout=800)
    assert crawl.returncode == 0, cluster.crawl_output() + cluster.logs()
    # Every line is done, but a machine killed after a job's work and before its ack left
    # that job leased: the live ones take it back once its lease runs out and run it again,
    # which must change nothing (the snapshot below).
    wait_for(lambda: jobs_left(queue_url) == {}, "the leases of killed machines taken back")
    cluster.stop()
    assert kills >= 10, f"only {kills} kills: the crawl ended too soon to prove anything"

    found = snapshot(postgres_url)
    assert found.problems() == []
    assert found == expected_snapshot(lines)
    assert jobs_left(queue_url) == {}
    assert f"{KILL_LINES} of {KILL_LINES} lines in" in cluster.crawl_output()


def test_redis_restart_mid_crawl_loses_nothing(
    tmp_path: Path,
    image_host: str,
    redis_server: RedisServer,
    postgres_url: str,
    make_cluster: Callable[..., Cluster],
) -> None:
    lines = small_urls(image_host, 600)
    list_file = write_list(tmp_path / "urls.txt", lines)
    queue_url = redis_server.url
    cluster = make_cluster(postgres_url, queue_url, SLEUTH_WORKER_LEASE_SECONDS=LEASE)
    crawl = cluster.start_crawl(list_file, 2)
    wait_for(lambda: resolved_lines(postgres_url) >= 150, "a quarter of the list done")
    redis_server.restart(down_for=5.0)  # SIGTERM (AOF flushed), 5 s down, start from the AOF
    assert resolved_lines(postgres_url) < len(lines), "the restart came too late to matter"

    assert crawl.wait(240) == 0, cluster.crawl_output() + cluster.logs()
    # A job whose ack the outage lost runs again, and may send a stage's job after the line
    # was resolved (its dedup key already freed): the workers drain that harmless repeat.
    wait_for(lambda: jobs_left(queue_url) == {}, "the jobs repeated after the outage run")
    cluster.stop()
    # A handler whose lease ran out during the outage was cancelled once its worker learnt
    # so, but a send already in a backend thread still lands, even after the drain above
    # (seen: one `images.grayscale` job ready after the stop). With every process stopped
    # nothing sends any more: a worker started again drains such late repeats, and the
    # snapshot below shows they changed nothing.
    if jobs_left(queue_url):
        cluster.add()
        wait_for(lambda: jobs_left(queue_url) == {}, "the late repeats run")
        cluster.stop()
    assert all(m.process is not None and m.process.returncode == 0 for m in cluster.machines)
    found = snapshot(postgres_url)
    assert found.problems() == []
    assert found == expected_snapshot(lines)
    assert jobs_left(queue_url) == {}


def test_postgres_restart_mid_crawl_loses_nothing(
    tmp_path: Path,
    image_host: str,
    redis_server: RedisServer,
    postgres_server: PostgresServer,
    make_cluster: Callable[..., Cluster],
) -> None:
    lines = small_urls(image_host, 600)
    list_file = write_list(tmp_path / "urls.txt", lines)
    queue_url, database_url = redis_server.url, postgres_server.url
    cluster = make_cluster(database_url, queue_url, SLEUTH_WORKER_LEASE_SECONDS=LEASE)
    crawl = cluster.start_crawl(list_file, 2)
    wait_for(lambda: resolved_lines(database_url) >= 150, "a quarter of the list done")
    # Every server process dies at once, as in a crash; 10 s later it starts and recovers
    # from its WAL. Longer than the jobs' own retries last: the workers must wait for it.
    postgres_server.restart(down_for=10.0, mode="immediate")
    assert resolved_lines(database_url) < len(lines), "the restart came too late to matter"

    assert crawl.wait(240) == 0, cluster.crawl_output() + cluster.logs()
    # A job whose ack the outage lost runs again, and may send a stage's job after the line
    # was resolved (its dedup key already freed): the workers drain that harmless repeat.
    wait_for(lambda: jobs_left(queue_url) == {}, "the jobs repeated after the outage run")
    cluster.stop()
    assert all(m.process is not None and m.process.returncode == 0 for m in cluster.machines)
    found = snapshot(database_url)
    assert found.problems() == []
    assert found == expected_snapshot(lines)
    assert jobs_left(queue_url) == {}
    assert "database reachable again" in cluster.logs()


@pytest.mark.slow
def test_sigterm_finishes_or_hands_back_in_flight_jobs_within_the_grace_period(
    tmp_path: Path,
    image_host: str,
    queue_url: str,
    postgres_url: str,
    make_cluster: Callable[..., Cluster],
) -> None:
    slow = [f"{image_host}/hostile/slow/64/{48 - n}?bps={SLOW_BPS}" for n in range(4)]
    lines = slow + small_urls(image_host, 60)
    list_file = write_list(tmp_path / "urls.txt", lines)
    # A lease far longer than the test: a job still leased after the stop was not handed back.
    cluster = make_cluster(postgres_url, queue_url, SLEUTH_WORKER_LEASE_SECONDS="600")
    crawl = cluster.start_crawl(list_file, 1)
    (machine,) = cluster.machines
    wait_for(lambda: resolved_lines(postgres_url) >= 30, "30 quick lines done")

    machine.terminate()
    assert machine.wait(GRACE + PATIENCE) == 0, machine.log_tail()
    stats = queue_stats(queue_url)
    assert {name: s.in_flight for name, s in stats.items() if s.in_flight} == {}
    # The slow fetches could not finish within the grace period: they were handed back.
    assert stats["images.fetch"].ready >= len(slow)
    assert resolved_lines(postgres_url) <= len(lines) - len(slow)

    cluster.add()  # another machine takes the handed-back jobs and the rest
    assert crawl.wait(120) == 0, cluster.crawl_output() + cluster.logs()
    cluster.stop()
    found = snapshot(postgres_url)
    assert found.problems() == []
    assert found == expected_snapshot(lines)
    assert jobs_left(queue_url) == {}
