"""The distributed queue backend: Redis 7 Streams with consumer groups, shared by workers on
many machines.

Layout (P is `<prefix>:q`, the prefix `sleuth` unless the URL's `?prefix=` says otherwise):

    P:seq              counter of job ids (a job keeps its id across retries)
    P:queues           set of queue names;  P:lv:<queue>  zset of its priority levels
    P:j:<id>           hash, the job body: q (queue), pr (priority), p (payload JSON),
                       a (attempts counted before the current stream entry), k (dedup key),
                       err (last error); once dead also why, ft (failed at), n (attempts)
    P:s:<queue>:<pri>  stream of ready and in-flight jobs, group `workers`; entries carry only
                       the job id, so a retry re-adds a small entry and the body is written
                       once; scripts pass payloads on as the text they are, never re-encoding
                       them (Lua numbers are doubles; a reserve only checks that each parses)
    P:l:<queue>:<pri>  zset: in-flight entry id -> lease deadline (µs)
    P:d:<queue>:<pri>  zset: delayed job id -> due time (µs)
    P:x:<queue>:<pri>  zset: dead job id -> failed-at time (µs)
    P:k:<queue>        hash: dedup key -> id of the unfinished job that holds it
    P:join:<key>       hash: part -> value of a fan-in group, expiring `join_ttl` after its
                       first part

A delivery is (stream entry id, delivery count), from the group's pending entries list; every
state change is one Lua script (`jobs/lua/*.lua`) that first checks the delivery is still the
pending one, so a stale worker's ack, retry or dead letter is a no-op. Leases are per delivery
and may be extended to any length, which XAUTOCLAIM's single min-idle-time cannot express, so
the lease deadlines live in a sorted set and a reserve XCLAIMs the entries whose deadline passed
(which, like XAUTOCLAIM, moves the entry to the new consumer and counts one more delivery).
Attempts are `a` plus the entry's delivery count. All times come from the Redis server's clock
(`TIME`), so workers on machines with skewed clocks agree on leases and delays.

Targets standalone Redis (scripts touch keys they compute, which Redis Cluster forbids).

Server settings the queue needs (docs/redis.md explains each; `check_server` reads them when a
process first opens a queue and logs a warning for each one that is wrong or cannot be read):

    appendonly yes               without AOF a Redis restart loses every queued job
    appendfsync everysec         a crash of the Redis host loses at most the last second
                                 (`always` is safer and slower; `no` may lose ~30 s)
    maxmemory-policy noeviction  a full Redis refuses writes (enqueue fails, loudly) instead of
                                 evicting job bodies, leases or dedup keys (silent loss)
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
import time
from collections.abc import Sequence
from typing import Any

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.commands.core import Script
from redis.retry import Retry

from sleuth.jobs.base import JSON, DeadJob, Job, LeaseLost, QueueBackend, QueueStats
from sleuth.jobs.checks import (
    check_dedup,
    check_enqueue,
    check_join,
    check_lease,
    check_queue,
    check_queues,
    check_reserve,
    check_retry_at,
    dump_payload,
    load_payload,
)
from sleuth.jobs.fanin import Entry, FanIn
from sleuth.jobs.scripts import lua
from sleuth.jobs.urls import RedisTarget, parse_redis_url

log = logging.getLogger(__name__)

_RECEIPT_RE = re.compile(r"(\d+)-(\d+)/(\d+)")
_MAX_PRIORITY = 2**53  # priorities pass through Lua, whose numbers are doubles
_BATCH = 1000  # jobs per enqueue_many script call: keeps each call short for other clients
_checked: set[RedisTarget] = set()  # queues whose persistence this process has checked
_SCRIPTS = (
    "enqueue",
    "reserve",
    "ack",
    "retry",
    "extend",
    "dead",
    "dead_letters",
    "redrive",
    "stats",
    "pending",
    "join",
)


def _args(strings: list[str]) -> str:
    """Many script arguments as one JSON array of strings (Lua's cjson decodes it)."""
    return json.dumps(strings, ensure_ascii=False)


def _check_priority(priority: int) -> None:
    if abs(priority) >= _MAX_PRIORITY:
        raise ValueError(f"priority must be between -2**53 and 2**53, not {priority!r}")


def _lease_us(lease: float) -> int:
    check_lease(lease)
    return max(1, round(lease * 1e6))


def _delivery(job: Job) -> list[str]:
    """[queue, priority, job id, entry id, deliveries] of a job reserved from a Redis queue."""
    match = _RECEIPT_RE.fullmatch(job.receipt)
    if match is None or not job.id.isdigit():
        raise ValueError(
            f"job {job.id!r} (receipt {job.receipt!r}) was not reserved from a Redis queue"
        )
    entry, deliveries = job.receipt.split("/")
    return [job.queue, str(job.priority), job.id, entry, deliveries]


def _server_settings(client: redis.Redis) -> tuple[dict[str, str], str]:
    """appendonly, appendfsync, maxmemory and maxmemory-policy as far as they can be read, and
    how: CONFIG GET, else (CONFIG renamed away or denied by an ACL) INFO, which tells whether
    AOF is on and the memory policy but not the fsync policy. Empty when neither answers."""
    names = ("appendonly", "appendfsync", "maxmemory", "maxmemory-policy")
    try:
        found = client.config_get(*names)
        return {name: str(found[name]) for name in names if name in found}, "CONFIG GET"
    except redis.ResponseError as exc:
        config_failed = f"CONFIG GET failed: {exc}"
    try:
        info = {**client.info("persistence"), **client.info("memory")}
    except redis.ResponseError as exc:
        return {}, f"{config_failed}; INFO failed: {exc}"
    settings = {"appendonly": "yes" if int(info.get("aof_enabled", 0)) else "no"}
    if "maxmemory" in info and "maxmemory_policy" in info:
        settings["maxmemory"] = str(info["maxmemory"])
        settings["maxmemory-policy"] = str(info["maxmemory_policy"])
    return settings, f"INFO ({config_failed})"


def check_server(client: redis.Redis) -> list[str]:
    """What is wrong with a Redis server as a durable queue, one sentence each (empty when
    nothing is): AOF off, fsync off, or keys that may be evicted when memory is full."""
    settings, source = _server_settings(client)
    if not settings:
        return [
            f"cannot be checked for the settings a durable queue needs ({source}); make sure it"
            " runs with appendonly yes, appendfsync everysec and maxmemory-policy noeviction,"
            " or a restart or a full memory loses queued jobs (see docs/redis.md)"
        ]
    problems = []
    if settings["appendonly"] != "yes":
        problems.append(
            f"runs with AOF off (appendonly {settings['appendonly']}, read by {source}): a Redis"
            " restart loses queued jobs; set appendonly yes for a durable queue"
        )
    elif settings.get("appendfsync") == "no":
        problems.append(
            "writes its AOF with appendfsync no: a crash of its host may lose the last ~30 s of"
            " queue changes; set appendfsync everysec"
        )
    policy = settings.get("maxmemory-policy", "noeviction")
    if settings.get("maxmemory", "0") != "0" and policy != "noeviction":
        problems.append(
            f"may evict keys when its memory is full (maxmemory-policy {policy}): evicted job"
            " bodies, leases or dedup keys are jobs silently lost or run twice; set"
            " maxmemory-policy noeviction"
        )
    return problems


class RedisQueue(QueueBackend):
    """A `QueueBackend` on a Redis 7 server (see the module docstring for the layout).

    Thread-safe and fork-safe (redis-py's pool opens new connections in a forked child). Each
    call survives a dropped connection or a Redis restart: it is retried `retries` times with
    exponential backoff (50 ms doubling, at most 2 s apart) before the error is raised. A
    retried call may have run already; that is harmless for ack, retry, extend and dead
    letters (they check the delivery), while an enqueue may add its job twice (use a dedup
    key where that matters) and a reserve may lease jobs nobody got (they come back when
    the lease runs out): the usual at-least-once trade.
    """

    def __init__(
        self,
        url: str,
        *,
        join_ttl: float = 86400.0,
        retries: int = 6,
        client_name: str = "sleuth-queue",
        socket_timeout: float = 30.0,
    ) -> None:
        self.target = parse_redis_url(url)
        if not math.isfinite(join_ttl) or join_ttl <= 0:
            raise ValueError(f"join_ttl must be a positive number of seconds, not {join_ttl!r}")
        self.join_ttl = join_ttl
        self.prefix = f"{self.target.prefix}:q"
        self.redis = redis.Redis(
            host=self.target.host,
            port=self.target.port,
            db=self.target.db,
            username=self.target.username,
            password=self.target.password,
            decode_responses=True,
            client_name=client_name,
            socket_connect_timeout=5.0,
            socket_timeout=socket_timeout,
            socket_keepalive=True,
            retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=2.0), retries),
            retry_on_error=[redis.ConnectionError, redis.TimeoutError],
        )
        self._closed = False
        # Every script starts with the shared prelude (ARGV[1] is the key prefix P).
        self._scripts: dict[str, Script] = {
            name: self.redis.register_script(lua("prelude") + lua(name)) for name in _SCRIPTS
        }
        self._fanin = RedisFanIn(self)
        self._check_persistence()

    def __repr__(self) -> str:
        return f"RedisQueue({self.target!r})"

    def _check_persistence(self) -> None:
        """Warn about server settings that can lose jobs; once per queue and process,
        however many handles the process opens on it."""
        if self.target in _checked:
            return
        _checked.add(self.target)
        where = f"Redis at {self.target.host}:{self.target.port}"
        for problem in check_server(self.redis):
            log.warning("%s %s", where, problem)

    def _client(self) -> redis.Redis:
        if self._closed:
            raise RuntimeError(f"{self!r} is closed")
        return self.redis

    def _run(self, name: str, *args: str | int) -> Any:
        """Run one of the queue's scripts with the key prefix as its first argument."""
        self._client()
        return self._scripts[name](args=[self.prefix, *args])

    def _run_many(self, name: str, calls: Sequence[tuple[str | int, ...]]) -> list[Any]:
        """Run one script once per argument tuple, in one round trip (a pipeline, not a
        transaction: each call is atomic, as `_run`'s is)."""
        if not calls:
            return []
        pipe = self._client().pipeline(transaction=False)
        script = self._scripts[name]
        for args in calls:
            script(args=[self.prefix, *args], client=pipe)
        return list(pipe.execute())

    # -- producing ---------------------------------------------------------------------------

    def enqueue(
        self,
        queue: str,
        payload: JSON,
        *,
        priority: int = 0,
        delay: float = 0.0,
        dedup_key: str | None = None,
    ) -> str | None:
        check_enqueue(queue, priority, delay, dedup_key)
        _check_priority(priority)
        jobs = _args([dump_payload(payload), dedup_key or ""])
        _, job_id = self._run("enqueue", queue, priority, round(delay * 1e6), jobs)
        return job_id or None

    def enqueue_many(
        self, queue: str, payloads: Sequence[tuple[JSON, str | None]], *, priority: int = 0
    ) -> int:
        check_enqueue(queue, priority, 0.0, None)
        _check_priority(priority)
        args: list[str] = []
        for i, (payload, dedup_key) in enumerate(payloads):
            check_dedup(dedup_key)
            args += [dump_payload(payload, f"payload #{i}"), dedup_key or ""]
        added = 0
        for start in range(0, len(args), 2 * _BATCH):
            chunk = _args(args[start : start + 2 * _BATCH])
            count, _ = self._run("enqueue", queue, priority, 0, chunk)
            added += count
        return added

    # -- consuming ---------------------------------------------------------------------------

    def reserve(self, queues: Sequence[str], n: int, lease: float, consumer: str) -> list[Job]:
        names = check_reserve(queues, n, lease, consumer)
        lease_us = _lease_us(lease)
        deadline, text = self._run("reserve", n, lease_us, consumer, *names)
        lease_until = int(deadline) / 1e6
        taken = []
        for queue, priority, job_id, entry, deliveries, before, payload, key in json.loads(text):
            ms, seq = entry.split("-")
            job = Job(
                id=job_id,
                queue=queue,
                payload=payload,
                priority=priority,
                attempts=before + deliveries,
                lease_until=lease_until,
                dedup_key=key,
                receipt=f"{entry}/{deliveries}",
            )
            taken.append(((-priority, int(ms), int(seq), int(job_id)), job))
        taken.sort(key=lambda pair: pair[0])
        return [job for _, job in taken]

    def ack(self, job: Job) -> None:
        self.ack_many([job])

    def ack_many(self, jobs: Sequence[Job]) -> None:
        # The dedup key rides along to save a lookup; the script releases it only if it is
        # still held by this job.
        args = [part for job in jobs for part in [*_delivery(job), job.dedup_key or ""]]
        if args:
            self._run("ack", _args(args))

    def retry(self, job: Job, at: float, error: str, *, count_attempt: bool = True) -> None:
        check_retry_at(at)
        # Relative to now, so that the delay runs on the server's clock like every other time.
        delay_us = round((at - time.time()) * 1e6)
        self._run("retry", *_delivery(job), delay_us, int(count_attempt), error)

    def extend_lease(self, job: Job, lease: float) -> Job:
        lease_us = _lease_us(lease)
        queue, priority, _, entry, deliveries = _delivery(job)
        deadline = int(self._run("extend", queue, priority, entry, deliveries, lease_us))
        if deadline < 0:
            raise LeaseLost(f"job {job.id} of queue {job.queue!r} is no longer held by this worker")
        return dataclasses.replace(job, lease_until=deadline / 1e6)

    # -- dead letters -----------------------------------------------------------------------

    def dead_letter(self, job: Job, reason: str) -> None:
        self._run("dead", *_delivery(job), reason)

    def dead_letters(self, queue: str | None = None, limit: int = 100) -> list[DeadJob]:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, not {limit!r}")
        if queue is not None:
            check_queue(queue)
        reply = self._run("dead_letters", limit, queue or "")
        return [
            DeadJob(
                id=job_id,
                queue=name,
                payload=load_payload(payload),
                attempts=int(attempts),
                reason=reason,
                failed_at=int(failed_at) / 1e6,
            )
            for job_id, name, payload, attempts, reason, failed_at in (
                reply[i : i + 6] for i in range(0, len(reply), 6)
            )
        ]

    def redrive(self, dead_ids: Sequence[str]) -> int:
        ids = [str(i) for i in dead_ids if str(i).isdigit()]
        return int(self._run("redrive", *ids)) if ids else 0

    # -- observing ---------------------------------------------------------------------------

    def stats(self) -> list[QueueStats]:
        reply = self._run("stats")
        now = int(reply[0])
        result = []
        for queue, priority, ready, delayed, in_flight, dead, oldest, consumers, due in reply[1:]:
            oldest_us, due_us = int(oldest), int(due)
            result.append(
                QueueStats(
                    queue=queue,
                    priority=int(priority),
                    ready=int(ready),
                    delayed=int(delayed),
                    in_flight=int(in_flight),
                    dead=int(dead),
                    oldest_ready_age=None if oldest_us < 0 else max(0, now - oldest_us) / 1e6,
                    in_flight_by_consumer={
                        consumers[i]: int(consumers[i + 1]) for i in range(0, len(consumers), 2)
                    },
                    next_due_in=None if due_us < 0 else max(0, due_us - now) / 1e6,
                )
            )
        result.sort(key=lambda s: (s.queue, -s.priority))
        return result

    def pending(self, queues: Sequence[str]) -> int:
        names = check_queues(queues)
        return int(self._run("pending", *names)) if names else 0

    # -- fan-in ------------------------------------------------------------------------------

    @property
    def fanin(self) -> RedisFanIn:
        return self._fanin

    def close(self) -> None:
        self._closed = True
        self.redis.close()


class RedisFanIn(FanIn):
    """Fan-in groups as hashes `P:join:<key>` beside a `RedisQueue`'s jobs, each expiring
    `join_ttl` seconds after its first part."""

    def __init__(self, queue: RedisQueue) -> None:
        self._queue = queue

    def join_many(
        self, entries: Sequence[Entry], parts: Sequence[str]
    ) -> list[dict[str, JSON] | None]:
        calls = []
        for key, part, value in entries:
            check_join(key, part, parts)
            calls.append((key, part, dump_payload(value, "join value")))
        ttl_ms = max(1, round(self._queue.join_ttl * 1000))
        replies = self._queue._run_many(
            "join", [(key, part, text, ttl_ms, *parts) for key, part, text in calls]
        )
        return [
            None
            if values is None
            else {p: json.loads(v) for p, v in zip(parts, values, strict=True)}
            for values in replies
        ]

    def forget_many(self, keys: Sequence[str]) -> None:
        if keys:
            self._queue._client().delete(*(f"{self._queue.prefix}:join:{key}" for key in keys))
