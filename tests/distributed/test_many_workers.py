"""Many machines, one crawl: `sleuth worker` processes that share only Redis, PostgreSQL and a
blob folder crawl one list together, queued by `sleuth images crawl --workers 0`, and leave
exactly what one worker leaves; `sleuth worker --queues` serves the chosen stages only."""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.distributed.cluster import (
    Cluster,
    Snapshot,
    expected_snapshot,
    live_workers,
    migrate_when_released,
    queue_stats,
    resolved_lines,
    small_urls,
    snapshot,
    write_list,
)
from tests.patience import PATIENCE, wait_for
from tests.servers import scratch_database

STARTERS = 6  # machines migrating a fresh database at the same moment


def summary(expected: Snapshot) -> str:
    """The counts in the crawl command's last line for a correct crawl."""
    counts = dict(expected.outcomes)
    return (
        f"{counts.get('success', 0)} stored, {counts.get('duplicate', 0)} duplicates, "
        f"{counts.get('error', 0)} errors."
    )


def crawl_with(cluster: Cluster, list_file: Path, machines: int, timeout: float = 180) -> str:
    """Crawl the list with `machines` workers to its end; returns the crawl command's output."""
    crawl = cluster.start_crawl(list_file, machines)
    code = crawl.wait(timeout)
    output = cluster.crawl_output()
    assert code == 0, output + cluster.logs()
    cluster.stop()
    return output


@pytest.mark.slow
def test_three_machines_leave_what_one_worker_leaves(
    tmp_path: Path,
    image_host: str,
    queue_url: str,
    postgres_url: str,
    make_cluster: Callable[..., Cluster],
) -> None:
    lines = small_urls(image_host, 300)
    list_file = write_list(tmp_path / "urls.txt", lines)
    expected = expected_snapshot(lines)
    assert dict(expected.outcomes) == {"success": 270, "duplicate": 15, "error": 15}

    with scratch_database("postgresql") as single_url:
        alone = make_cluster(single_url, f"{queue_url}:single")
        output = crawl_with(alone, list_file, machines=1)
        assert "300 of 300 lines in" in output and summary(expected) in output, output
        single = snapshot(single_url)

    together = make_cluster(postgres_url, queue_url)
    output = crawl_with(together, list_file, machines=3)
    assert "Queueing only: `sleuth worker` processes on redis://" in output
    assert "300 of 300 lines in" in output and summary(expected) in output, output
    shared = snapshot(postgres_url)

    assert shared.problems() == []
    assert shared == single == expected
    # Every machine took part, and every gray copy is in the one shared blob folder.
    stages = json.loads(together.sleuth("metrics", "--json").stdout)
    assert {s["queue"]: s["workers"] for s in stages}["images.fetch"] == 3
    for row in shared.images:
        gray_key = row[4]
        assert (together.blob_dir / gray_key[:2] / gray_key[2:4] / f"{gray_key}.gray").is_file()
    for machine in together.machines:
        assert not list(machine.root.rglob("*.gray"))


def test_a_worker_serves_only_the_queues_it_is_given(
    tmp_path: Path,
    image_host: str,
    queue_url: str,
    postgres_url: str,
    make_cluster: Callable[..., Cluster],
) -> None:
    lines = small_urls(image_host, 40)
    list_file = write_list(tmp_path / "urls.txt", lines)
    expected = expected_snapshot(lines)
    errors = dict(expected.outcomes)["error"]
    image_lines = len(lines) - errors
    cluster = make_cluster(postgres_url, queue_url)

    refused = cluster.sleuth("worker", "--queues", "images.nope", check=False)
    assert refused.returncode == 2 and "unknown queue(s) ['images.nope']" in refused.stderr

    cluster.add(queues="images.fetch,images.md5,images.store")
    wait_for(lambda: live_workers(postgres_url), "the first worker registered")
    crawl = cluster.crawl(list_file)

    def waiting_for_grayscale() -> bool:
        stats = queue_stats(queue_url)
        if "images.grayscale" not in stats or "images.fetch" not in stats:
            return False
        fetch, gray = stats["images.fetch"], stats["images.grayscale"]
        return fetch.ready + fetch.in_flight == 0 and gray.ready == image_lines

    # Everything but grayscale is done: errors resolved, every image waits for its gray copy.
    wait_for(waiting_for_grayscale, "every fetched image waiting for grayscale")
    assert resolved_lines(postgres_url) == errors
    assert queue_stats(queue_url)["images.grayscale"].in_flight == 0

    cluster.add(queues="images.grayscale")
    assert crawl.wait(120) == 0, cluster.crawl_output() + cluster.logs()
    cluster.stop()
    assert snapshot(postgres_url) == expected
    served = {
        tuple(w["queues"]) for w in json.loads(cluster.sleuth("workers", "--all", "--json").stdout)
    }
    assert served == {("images.fetch", "images.md5", "images.store"), ("images.grayscale",)}
    stages = json.loads(cluster.sleuth("metrics", "--json").stdout)
    assert {s["queue"]: s["workers"] for s in stages}["images.grayscale"] == 1


def test_machines_starting_together_on_a_fresh_database_all_start(database_url: str) -> None:
    """Workers started at once on a new database migrate it in turn; none fails creating a
    table another has just created."""
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(STARTERS)
    starters = [
        context.Process(target=migrate_when_released, args=(database_url, start))
        for _ in range(STARTERS)
    ]
    for process in starters:
        process.start()
    for process in starters:
        process.join(PATIENCE)
    assert [p.exitcode for p in starters] == [0] * STARTERS
    engine = sa.create_engine(database_url)
    try:
        tables = set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {"images", "image_sources", "crawl_run_items", "workers", "alembic_version"} <= tables
