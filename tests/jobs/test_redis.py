"""What only the Redis backend has: its URL, the check of the server's settings,
reconnecting after a dropped connection, key prefixes, its key layout."""

from __future__ import annotations

import asyncio
import logging
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis

from sleuth.jobs import open_queue
from sleuth.jobs.base import Job
from sleuth.jobs.redis import RedisQueue, check_server
from sleuth.jobs.tasks import Task
from sleuth.jobs.urls import RedisTarget, parse_redis_url
from sleuth.jobs.worker import JobContext, JobKind, Worker
from tests.jobs.conftest import delete_prefix
from tests.jobs.helpers import Num
from tests.patience import wait_for
from tests.servers import REDIS_URL, in_ci, require


@pytest.fixture
def admin() -> Iterator[redis.Redis]:
    """A plain connection to the test Redis, for looking behind the backend's back."""
    require("redis", REDIS_URL)
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def prefix() -> Iterator[str]:
    name = f"sleuth-test-{uuid.uuid4().hex[:12]}"
    yield name
    delete_prefix(name)


def url_with(prefix: str) -> str:
    return f"{REDIS_URL}{'&' if '?' in REDIS_URL else '?'}prefix={prefix}"


def test_url_forms() -> None:
    assert parse_redis_url("redis://127.0.0.1") == RedisTarget("127.0.0.1", 6379, 0, "sleuth")
    target = parse_redis_url("redis://u%40x:p%2Fw@localhost:6380/15?prefix=crawl:a")
    assert target == RedisTarget("localhost", 6380, 15, "crawl:a", "u@x", "p/w")
    assert "p/w" not in repr(target) and "***@" in repr(target)
    assert parse_redis_url("redis://:secret@127.0.0.1/").password == "secret"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("redis:///0", "names no host"),
        ("redis://127.0.0.1:99999/0", "port"),
        ("redis://127.0.0.1/db1", "database number"),
        ("redis://127.0.0.1/0?db=2", "unknown option"),
        ("redis://127.0.0.1/0?prefix=", "prefix must be"),
        ("redis://127.0.0.1/0?prefix=a*b", "prefix must be"),
        ("redis://127.0.0.1/0?prefix=a&prefix=b", "prefix must be"),
        ("redis://127.0.0.1/0#x", "fragment"),
    ],
)
def test_bad_urls_are_refused_with_a_reason(url: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        open_queue(url)


def test_persistence_warning_says_whether_a_restart_loses_jobs(
    admin: redis.Redis, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="sleuth.jobs.redis"):
        queue = RedisQueue(url_with(prefix))
    queue.close()
    warned = [r.getMessage() for r in caplog.records if "restart loses" in r.getMessage()]
    if admin.config_get("appendonly")["appendonly"] == "yes":
        assert warned == []
    else:
        assert len(warned) == 1 and "AOF off (appendonly no, read by CONFIG GET)" in warned[0]


@contextmanager
def limited_user(admin: redis.Redis, prefix: str, *denied: str) -> Iterator[str]:
    """The URL of a queue under `prefix` as a user who may not run the `denied` commands."""
    user = f"sleuth-test-{uuid.uuid4().hex[:12]}"
    admin.acl_setuser(
        user,
        enabled=True,
        nopass=True,
        keys=["*"],
        channels=["*"],
        commands=["+@all", *(f"-{c}" for c in denied)],
    )
    try:
        server = urlsplit(REDIS_URL)
        netloc = f"{user}:x@{server.hostname}:{server.port or 6379}"
        yield f"redis://{netloc}{server.path}?prefix={prefix}"
    finally:
        admin.acl_deluser(user)


def test_without_config_the_check_reads_info(
    admin: redis.Redis, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    aof_on = admin.config_get("appendonly")["appendonly"] == "yes"
    with limited_user(admin, prefix, "config") as url:
        with caplog.at_level(logging.WARNING, logger="sleuth.jobs.redis"):
            queue = RedisQueue(url)
        queue.enqueue("q", {"x": 1})  # the queue itself works without CONFIG
        assert queue.pending(["q"]) == 1
        queue.close()
    messages = [r.getMessage() for r in caplog.records if r.name == "sleuth.jobs.redis"]
    if aof_on:
        assert messages == []
    else:
        [message] = messages
        assert "AOF off (appendonly no, read by INFO (CONFIG GET failed:" in message


def test_without_config_and_info_the_warning_says_it_cannot_check(
    admin: redis.Redis, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    with limited_user(admin, prefix, "config", "info") as url:
        with caplog.at_level(logging.WARNING, logger="sleuth.jobs.redis"):
            queue = RedisQueue(url)
        queue.close()
    [message] = [r.getMessage() for r in caplog.records if r.name == "sleuth.jobs.redis"]
    assert "cannot be checked" in message and "appendonly yes" in message
    assert "CONFIG GET failed" in message and "INFO failed" in message


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[redis.Redis]:
    """A redis-server of this test's own, configured as docs/redis.md says, so the test can
    change its settings without disturbing anyone sharing the usual server."""
    binary = shutil.which("redis-server")
    if binary is None:
        message = "redis-server is not installed (apt-get install redis-server)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [str(binary), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path),
         "--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
         "--maxmemory-policy", "noeviction"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    client = redis.Redis(port=port, decode_responses=True, socket_connect_timeout=1)
    try:

        def answers() -> bool:
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

        wait_for(answers, timeout=15)
        yield client
    finally:
        client.close()
        server.terminate()
        server.wait(15)


def test_each_setting_that_can_lose_jobs_is_named(private_redis: redis.Redis) -> None:
    assert check_server(private_redis) == []
    private_redis.config_set("maxmemory", "100mb")
    assert check_server(private_redis) == []  # a memory limit is fine without eviction
    private_redis.config_set("maxmemory-policy", "allkeys-lru")
    [evicts] = check_server(private_redis)
    assert "maxmemory-policy allkeys-lru" in evicts and "noeviction" in evicts
    private_redis.config_set("maxmemory", "0")  # no limit: nothing is ever evicted
    assert check_server(private_redis) == []
    private_redis.config_set("appendfsync", "no")
    [fsync] = check_server(private_redis)
    assert "appendfsync no" in fsync and "appendfsync everysec" in fsync
    private_redis.config_set("appendonly", "no")
    [aof] = check_server(private_redis)  # AOF off says it all: fsync no longer matters
    assert "AOF off (appendonly no" in aof


@pytest.mark.parametrize("retries", [0, 2])
def test_a_server_that_drops_every_connection_is_retried_then_reported(retries: int) -> None:
    """A loopback listener that accepts and at once closes every connection: the backend
    tries `retries` more times on fresh connections, then raises the connection error."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    accepted: list[int] = []
    over = threading.Event()

    def accept_and_close() -> None:
        while not over.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            accepted.append(1)
            conn.close()

    thread = threading.Thread(target=accept_and_close, daemon=True)
    thread.start()
    port = listener.getsockname()[1]
    try:
        with pytest.raises(redis.ConnectionError):
            RedisQueue(f"redis://127.0.0.1:{port}/0", retries=retries)
    finally:
        over.set()
        thread.join(5)
        listener.close()
    assert len(accepted) == retries + 1


def kill_connections(admin: redis.Redis, name: str) -> int:
    """Drop every connection whose client name is `name`, as a Redis restart or a network
    blip would; returns how many."""
    killed = 0
    for client in admin.client_list():
        if client["name"] == name:
            killed += admin.client_kill_filter(_id=client["id"])
    return killed


@pytest.mark.parametrize("retries", [0, 6])
def test_a_call_whose_connection_drops_mid_command_is_retried(
    admin: redis.Redis, prefix: str, retries: int
) -> None:
    """Writes are paused on the server so that the enqueue is in flight when its connection is
    killed: with retries it goes through on a new connection, without it fails."""
    name = f"sleuth-test-{uuid.uuid4().hex[:8]}"
    queue = RedisQueue(url_with(prefix), client_name=name, retries=retries)
    outcome: list[object] = []

    def enqueue() -> None:
        try:
            outcome.append(queue.enqueue("q", {"x": 1}))
        except redis.ConnectionError as exc:
            outcome.append(exc)

    admin.client_pause(2000, all=False)  # writes only; CLIENT KILL still runs
    try:
        thread = threading.Thread(target=enqueue)
        thread.start()
        wait_for(lambda: any(c["name"] == name and c["cmd"] == "evalsha"
                             for c in admin.client_list()))  # fmt: skip
        assert kill_connections(admin, name) == 1
    finally:
        admin.client_unpause()
    thread.join(30)
    if retries:
        assert isinstance(outcome[0], str) and queue.pending(["q"]) == 1
    else:
        assert isinstance(outcome[0], redis.ConnectionError) and queue.pending(["q"]) == 0
    queue.close()


def test_worker_survives_connections_dropped_mid_run(admin: redis.Redis, prefix: str) -> None:
    """A worker keeps working while its connections are killed again and again: every job
    runs, none is lost or dead (a reserve whose reply was lost comes back after its lease)."""
    name = f"sleuth-test-{uuid.uuid4().hex[:8]}"
    queue = RedisQueue(url_with(prefix), client_name=name)
    seen: set[int] = set()

    async def handler(payload: Num, ctx: JobContext) -> None:
        await asyncio.sleep(0.005)
        seen.add(payload.i)

    queue.enqueue_many("q", [({"i": i}, None) for i in range(300)])
    worker = Worker(
        queue, [JobKind(Task("q", Num, lease=1.0), handler)], concurrency=8, poll_interval=0.02,
        handle_signals=False,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    thread = threading.Thread(
        target=worker.run_sync,
        kwargs={"until": lambda: worker.drained() or time.monotonic() > deadline},
    )
    thread.start()
    killed = 0
    while thread.is_alive() and killed < 10:
        time.sleep(0.05)
        killed += kill_connections(admin, name)
    thread.join(70)
    assert not thread.is_alive()
    assert killed >= 3, "the test should have dropped connections while the worker ran"
    assert seen == set(range(300))
    assert queue.pending(["q"]) == 0 and queue.dead_letters() == []
    queue.close()


def test_prefixes_keep_queues_apart(admin: redis.Redis, prefix: str) -> None:
    other_prefix = f"{prefix}-other"
    mine, other = RedisQueue(url_with(prefix)), RedisQueue(url_with(other_prefix))
    try:
        mine.enqueue("q", {"x": 1}, dedup_key="k")
        mine.enqueue("q", {"x": 2}, delay=60)
        assert mine.fanin.join("g", "a", {"v": 1}, ["a", "b"]) is None
        assert other.pending(["q"]) == 0
        assert other.reserve(["q"], 10, 30, "c") == []
        assert other.stats() == []
        assert other.enqueue("q", {"x": 3}, dedup_key="k") is not None
        assert other.fanin.join("g", "b", {"v": 2}, ["a", "b"]) is None
        assert mine.pending(["q"]) == 2
        assert {s.queue for s in mine.stats()} == {"q"}
        keys = set(admin.scan_iter(match=f"{prefix}*"))
        assert keys and all(k.startswith((f"{prefix}:q:", f"{other_prefix}:q:")) for k in keys)
    finally:
        mine.close()
        other.close()
        delete_prefix(other_prefix)


def test_streams_carry_ids_and_attempts_follow_the_delivery_count(
    admin: redis.Redis, prefix: str
) -> None:
    queue = RedisQueue(url_with(prefix))
    job_id = queue.enqueue("q", {"big": "x" * 1000}, priority=2)
    stream = f"{prefix}:q:s:q:2"
    [(entry_id, fields)] = admin.xrange(stream)
    assert fields == {"j": job_id}  # the payload stays in the job's hash
    queue.reserve(["q"], 1, 0.1, "first")
    time.sleep(0.15)
    [job] = queue.reserve(["q"], 1, 30, "second")
    [pending] = admin.xpending_range(stream, "workers", "-", "+", 10)
    assert (pending["consumer"], pending["times_delivered"], job.attempts) == ("second", 2, 2)
    queue.retry(job, time.time(), "again", count_attempt=False)
    [job] = queue.reserve(["q"], 1, 30, "third")
    assert job.attempts == 2
    [(new_entry, _)] = admin.xrange(stream)
    assert new_entry != entry_id  # a retry is a new entry of the same job
    queue.close()


def test_unfinished_join_groups_expire(admin: redis.Redis, prefix: str) -> None:
    queue = RedisQueue(url_with(prefix), join_ttl=0.3)
    assert queue.fanin.join("img", "a", {"v": 1}, ["a", "b"]) is None
    time.sleep(0.2)
    assert queue.fanin.join("img", "a", {"v": 1}, ["a", "b"]) is None  # does not renew the TTL
    wait_for(lambda: not admin.exists(f"{prefix}:q:join:img"), timeout=5)
    assert queue.fanin.join("img", "b", {"v": 2}, ["a", "b"]) is None  # "a" is gone with it
    queue.close()


def test_job_from_another_backend_is_refused(prefix: str) -> None:
    queue = RedisQueue(url_with(prefix))
    foreign = Job(id="1", queue="q", payload={}, priority=0, attempts=1, lease_until=0.0,
                  receipt="1")  # fmt: skip
    with pytest.raises(ValueError, match="not reserved from a Redis queue"):
        queue.ack(foreign)
    queue.close()
    with pytest.raises(RuntimeError, match="closed"):
        queue.pending(["q"])
