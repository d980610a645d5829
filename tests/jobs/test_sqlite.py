"""What only the SQLite backend has: its URL, its file, threads and forks sharing one instance."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from sleuth.jobs import open_queue
from sleuth.jobs.sqlite import SqliteQueue


def test_url_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    absolute = open_queue(f"sqlite:///{tmp_path / 'a' / 'q.db'}")  # sqlite:////tmp/...
    assert isinstance(absolute, SqliteQueue) and absolute.path == tmp_path / "a" / "q.db"
    assert absolute.path.exists()
    absolute.close()
    monkeypatch.chdir(tmp_path)
    relative = open_queue("sqlite:///rel/q.db")
    assert isinstance(relative, SqliteQueue)
    assert relative.path.resolve() == tmp_path / "rel" / "q.db"
    relative.close()


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("redis2://127.0.0.1/0", "unknown scheme"),
        ("/tmp/q.db", "no scheme"),
        ("sqlite://host/q.db", "no host"),
        ("sqlite:///q.db?mode=ro", "no options"),
        ("sqlite:///", "names no file"),
        ("sqlite:///:memory:", "not durable"),
    ],
)
def test_bad_urls_are_refused_with_a_reason(url: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        open_queue(url)


def test_file_is_wal_with_the_expected_tables(tmp_path: Path) -> None:
    queue = SqliteQueue(tmp_path / "q.db")
    queue.enqueue("q", {"x": 1})
    again = SqliteQueue(tmp_path / "q.db")  # creating the schema twice is harmless
    assert again.pending(["q"]) == 1
    conn = sqlite3.connect(tmp_path / "q.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"jobs", "dead", "queues", "joins"} <= tables
    plan = conn.execute(
        "EXPLAIN QUERY PLAN SELECT id FROM jobs WHERE queue = 'q' AND state = 'ready'"
        " ORDER BY priority DESC, available_at, id LIMIT 5"
    ).fetchall()
    assert "jobs_ready" in str(plan) and "TEMP B-TREE" not in str(plan)
    conn.close()
    queue.close()
    again.close()
    with pytest.raises(RuntimeError, match="closed"):
        queue.pending(["q"])


def test_one_instance_shared_by_threads(tmp_path: Path) -> None:
    queue = SqliteQueue(tmp_path / "q.db")
    queue.enqueue_many("q", [({"i": i}, None) for i in range(800)])
    taken: list[list[str]] = [[] for _ in range(4)]

    def work(slot: int) -> None:
        while jobs := queue.reserve(["q"], 10, 30, f"t{slot}"):
            taken[slot] += [job.id for job in jobs]
            queue.ack_many(jobs)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    everything = [i for ids in taken for i in ids]
    assert len(everything) == len(set(everything)) == 800
    assert queue.pending(["q"]) == 0
    queue.close()


def _enqueue_in_child(queue: SqliteQueue) -> None:
    queue.enqueue("q", {"from": "child"})
    queue.close()


def test_forked_child_gets_its_own_connection(tmp_path: Path) -> None:
    queue = SqliteQueue(tmp_path / "q.db")
    queue.enqueue("q", {"from": "parent"})
    child = multiprocessing.get_context("fork").Process(target=_enqueue_in_child, args=(queue,))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    assert sorted(j.payload["from"] for j in queue.reserve(["q"], 5, 30, "c")) == [
        "child",
        "parent",
    ]
    queue.close()


def test_unfinished_join_groups_are_pruned(tmp_path: Path) -> None:
    queue = SqliteQueue(tmp_path / "q.db", join_ttl=0.2)
    assert queue.fanin.join("old", "a", {"v": 1}, ["a", "b"]) is None
    time.sleep(0.3)
    assert queue.fanin.join("new", "a", {"v": 2}, ["a", "b"]) is None  # prunes "old"
    assert queue.fanin.join("old", "b", {"v": 3}, ["a", "b"]) is None  # "a" is gone
    assert queue.fanin.join("new", "b", {"v": 4}, ["a", "b"]) == {"a": {"v": 2}, "b": {"v": 4}}
    queue.close()


def test_job_from_another_backend_is_refused(tmp_path: Path) -> None:
    from sleuth.jobs.base import Job

    queue = SqliteQueue(tmp_path / "q.db")
    foreign = Job(id="1700000000000-0", queue="q", payload={}, priority=0, attempts=1,
                  lease_until=0.0, receipt="x")  # fmt: skip
    with pytest.raises(ValueError, match="not reserved from a SQLite queue"):
        queue.ack(foreign)
    queue.close()
