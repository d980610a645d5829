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
                       once; scripts treat payloads as opaque text, never decoding them (Lua
                       numbers are doubles)
    P:l:<queue>:<pri>  zset: in-flight entry id -> lease deadline (µs)
    P:d:<queue>:<pri>  zset: delayed job id -> due time (µs)
    P:x:<queue>:<pri>  zset: dead job id -> failed-at time (µs)
    P:k:<queue>        hash: dedup key -> id of the unfinished job that holds it
    P:join:<key>       hash: part -> value of a fan-in group, expiring `join_ttl` after its
                       first part

A delivery is (stream entry id, delivery count), from the group's pending entries list; every
state change is one Lua script that first checks the delivery is still the pending one, so a
stale worker's ack, retry or dead letter is a no-op. Leases are per delivery and may be
extended to any length, which XAUTOCLAIM's single min-idle-time cannot express, so the lease
deadlines live in a sorted set and a reserve XCLAIMs the entries whose deadline passed (which,
like XAUTOCLAIM, moves the entry to the new consumer and counts one more delivery). Attempts are
`a` plus the entry's delivery count. All times come from the Redis server's clock (`TIME`),
so workers on machines with skewed clocks agree on leases and delays.

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
from urllib.parse import parse_qs, unquote, urlsplit

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
)

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "sleuth"
_PREFIX_RE = re.compile(r"[A-Za-z0-9_.:-]+")
_RECEIPT_RE = re.compile(r"(\d+)-(\d+)/(\d+)")
_MAX_PRIORITY = 2**53  # priorities pass through Lua, whose numbers are doubles
_BATCH = 1000  # jobs per enqueue_many script call: keeps each call short for other clients
_checked: set[RedisTarget] = set()  # queues whose persistence this process has checked

# Shared by every script: ARGV[1] is the key prefix P.
_PRELUDE = """
local P = ARGV[1]
local G = 'workers'
local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local function itoa(x) return string.format('%.0f', x) end  -- exact up to 2^53
local function lkey(kind, q, p) return P .. ':' .. kind .. ':' .. q .. ':' .. p end
local function ensure_level(q, p)
  local s = lkey('s', q, p)
  if redis.call('EXISTS', s) == 0 then
    redis.call('XGROUP', 'CREATE', s, G, '0', 'MKSTREAM')
    redis.call('ZADD', P .. ':lv:' .. q, tonumber(p), p)
    redis.call('SADD', P .. ':queues', q)
  end
  return s
end
local function levels_of(q)
  local out = {}
  for _, p in ipairs(redis.call('ZRANGE', P .. ':lv:' .. q, 0, -1)) do
    out[#out + 1] = {tonumber(p), q, p}
  end
  return out
end
-- The owner of pending entry e when it has had exactly n deliveries, else nil.
local function holder(s, e, n)
  if redis.call('EXISTS', s) == 0 then return nil end
  local r = redis.call('XPENDING', s, G, e, e, 1)[1]
  if r and tonumber(r[4]) == tonumber(n) then return r[2] end
  return nil
end
local function settle(q, p, e)
  local s = lkey('s', q, p)
  redis.call('XACK', s, G, e)
  redis.call('XDEL', s, e)
  redis.call('ZREM', lkey('l', q, p), e)
end
local function release_key(q, id, k)
  local kh = P .. ':k:' .. q
  if k and redis.call('HGET', kh, k) == id then redis.call('HDEL', kh, k) end
end
"""

# ARGV: P, queue, priority, delay µs, JSON array of [payload text, dedup key or '', ...]
# (one argument, not thousands: that is what costs most in a client). Returns {how many were
# added, the id of the last one added or ''}: jobs whose dedup key is held are skipped.
_ENQUEUE = """
local q, p, delay = ARGV[2], ARGV[3], tonumber(ARGV[4])
local jobs = cjson.decode(ARGV[5])
local s = ensure_level(q, p)
local kh = P .. ':k:' .. q
local due = itoa(now_us() + delay)
local added, last = 0, ''
for i = 1, #jobs, 2 do
  local payload, k = jobs[i], jobs[i + 1]
  if k == '' or redis.call('HEXISTS', kh, k) == 0 then
    local id = itoa(redis.call('INCR', P .. ':seq'))
    local j = P .. ':j:' .. id
    if k == '' then
      redis.call('HSET', j, 'q', q, 'pr', p, 'p', payload, 'a', '0')
    else
      redis.call('HSET', j, 'q', q, 'pr', p, 'p', payload, 'a', '0', 'k', k)
      redis.call('HSET', kh, k, id)
    end
    if delay > 0 then
      redis.call('ZADD', lkey('d', q, p), due, id)
    else
      redis.call('XADD', s, '*', 'j', id)
    end
    added, last = added + 1, id
  end
end
return {added, last}
"""

# ARGV: P, n, lease µs, consumer, queues... Returns {deadline µs, JSON text of a list of
# [queue, priority, job id, entry id, deliveries, attempts before the entry, payload, dedup key
# or null]}: one string with the payloads spliced in as they are, which the client parses in
# one call instead of 8 reply elements and a payload parse per job.
_RESERVE = """
local want, lease, consumer = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local now = now_us()
local deadline = now + lease
local out = {}

local score = itoa(deadline)
local leased = {}  -- lease zset key -> {score, entry id, ...}, added at the end in bulk

local function take(q, p, e, id, n)
  local f = redis.call('HMGET', P .. ':j:' .. id, 'a', 'p', 'k')
  if not f[2] then  -- an entry whose job body is gone: drop it rather than fail every reserve
    settle(q, p, e)
    return
  end
  local l = lkey('l', q, p)
  local pairs_ = leased[l]
  if not pairs_ then
    pairs_ = {}
    leased[l] = pairs_
  end
  pairs_[#pairs_ + 1] = score
  pairs_[#pairs_ + 1] = e
  local k = f[3] and cjson.encode(f[3]) or 'null'
  out[#out + 1] = '[' .. cjson.encode(q) .. ',' .. p .. ',"' .. id .. '","' .. e .. '",'
    .. tostring(n) .. ',' .. f[1] .. ',' .. f[2] .. ',' .. k .. ']'
  want = want - 1
end

-- Due delayed jobs join the end of their stream.
local function promote(q, p)
  local d = lkey('d', q, p)
  local due = redis.call('ZRANGEBYSCORE', d, '-inf', itoa(now), 'LIMIT', 0, 1000)
  if #due > 0 then
    local s = lkey('s', q, p)
    for _, id in ipairs(due) do redis.call('XADD', s, '*', 'j', id) end
    redis.call('ZREM', d, unpack(due))
  end
end

-- Deliveries whose lease ran out go to this consumer, one more delivery each.
local function reclaim(q, p)
  local l, s = lkey('l', q, p), lkey('s', q, p)
  for _, e in ipairs(redis.call('ZRANGEBYSCORE', l, '-inf', itoa(now), 'LIMIT', 0, want)) do
    local got = redis.call('XCLAIM', s, G, consumer, 0, e)
    if got[1] then
      local n = redis.call('XPENDING', s, G, e, e, 1)[1][4]
      take(q, p, e, got[1][2][2], n)
    else
      redis.call('ZREM', l, e)  -- no longer pending: nothing to take back
    end
  end
end

local function read(q, p, count)
  local r = redis.call('XREADGROUP', 'GROUP', G, consumer, 'COUNT', count,
                       'STREAMS', lkey('s', q, p), '>')
  if r then
    for _, entry in ipairs(r[1][2]) do take(q, p, entry[1], entry[2][2], 1) end
  end
end

local function after(a, b)  -- stream ids "ms-seq": is a later than b?
  local am, as = string.match(a, '(%d+)-(%d+)')
  local bm, bs = string.match(b, '(%d+)-(%d+)')
  am, bm = tonumber(am), tonumber(bm)
  if am ~= bm then return am > bm end
  return tonumber(as) > tonumber(bs)
end

local function last_delivered(s)
  local g = redis.call('XINFO', 'GROUPS', s)[1]
  for i = 1, #g, 2 do
    if g[i] == 'last-delivered-id' then return g[i + 1] end
  end
end

local levels = {}
for i = 5, #ARGV do
  for _, level in ipairs(levels_of(ARGV[i])) do levels[#levels + 1] = level end
end
table.sort(levels, function(x, y) return x[1] > y[1] end)

local i = 1
while i <= #levels and want > 0 do
  local j = i
  while j < #levels and levels[j + 1][1] == levels[i][1] do j = j + 1 end
  for k = i, j do promote(levels[k][2], levels[k][3]) end
  for k = i, j do
    if want > 0 then reclaim(levels[k][2], levels[k][3]) end
  end
  if want > 0 and i == j then
    read(levels[i][2], levels[i][3], want)
  elseif want > 0 then
    -- Several queues at this priority: peek at the next entries of each and read the
    -- oldest `want` of them all, so that no queue is served out of age order.
    local next_ids = {}
    for k = i, j do
      local s = lkey('s', levels[k][2], levels[k][3])
      local ids = redis.call('XRANGE', s, '(' .. last_delivered(s), '+', 'COUNT', want)
      for _, entry in ipairs(ids) do next_ids[#next_ids + 1] = {entry[1], k} end
    end
    table.sort(next_ids, function(x, y) return after(y[1], x[1]) end)
    local counts = {}
    for m = 1, math.min(want, #next_ids) do
      local k = next_ids[m][2]
      counts[k] = (counts[k] or 0) + 1
    end
    for k = i, j do
      if counts[k] then read(levels[k][2], levels[k][3], counts[k]) end
    end
  end
  i = j + 1
end
for l, args in pairs(leased) do
  for start = 1, #args, 1000 do
    redis.call('ZADD', l, unpack(args, start, math.min(start + 999, #args)))
  end
end
return {score, '[' .. table.concat(out, ',') .. ']'}
"""

# ARGV: P, JSON array of [queue, priority, job id, entry id, deliveries, dedup key or '', ...].
_ACK = """
local jobs = cjson.decode(ARGV[2])
local done = {}  -- level -> {queue, priority, entry ids, job keys}
for i = 1, #jobs, 6 do
  local q, p, id, e, n, k = jobs[i], jobs[i + 1], jobs[i + 2], jobs[i + 3], jobs[i + 4], jobs[i + 5]
  if holder(lkey('s', q, p), e, n) then
    local level = lkey('s', q, p)
    local d = done[level]
    if not d then
      d = {q, p, {}, {}}
      done[level] = d
    end
    d[3][#d[3] + 1] = e
    d[4][#d[4] + 1] = P .. ':j:' .. id
    if k ~= '' then release_key(q, id, k) end
  end
end
for s, d in pairs(done) do
  for start = 1, #d[3], 1000 do
    local stop = math.min(start + 999, #d[3])
    redis.call('XACK', s, G, unpack(d[3], start, stop))
    redis.call('XDEL', s, unpack(d[3], start, stop))
    redis.call('ZREM', lkey('l', d[1], d[2]), unpack(d[3], start, stop))
    redis.call('DEL', unpack(d[4], start, stop))
  end
end
return 0
"""

# ARGV: P, queue, priority, job id, entry id, deliveries, delay µs, count attempt (1/0), error.
_RETRY = """
local q, p, id, e, n = ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])
local delay, count, err = tonumber(ARGV[7]), ARGV[8], ARGV[9]
if not holder(lkey('s', q, p), e, n) then return 0 end
settle(q, p, e)
local j = P .. ':j:' .. id
-- The new entry starts at one delivery: fold this entry's deliveries into `a`.
if count == '1' then
  redis.call('HINCRBY', j, 'a', n)
else
  redis.call('HINCRBY', j, 'a', n - 1)
end
redis.call('HSET', j, 'err', err)
if delay > 0 then
  redis.call('ZADD', lkey('d', q, p), itoa(now_us() + delay), id)
else
  redis.call('XADD', lkey('s', q, p), '*', 'j', id)
end
return 1
"""

# ARGV: P, queue, priority, entry id, deliveries, lease µs. Returns the new deadline, or -1
# when the delivery is no longer held.
_EXTEND = """
local q, p, e, n, lease = ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])
local s = lkey('s', q, p)
local owner = holder(s, e, n)
if not owner then return -1 end
redis.call('XCLAIM', s, G, owner, 0, e, 'JUSTID')  -- resets the idle time, not the count
local deadline = now_us() + lease
redis.call('ZADD', lkey('l', q, p), itoa(deadline), e)
return itoa(deadline)
"""

# ARGV: P, queue, priority, job id, entry id, deliveries, reason.
_DEAD = """
local q, p, id, e, n, reason = ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6]), ARGV[7]
if not holder(lkey('s', q, p), e, n) then return 0 end
settle(q, p, e)
local j = P .. ':j:' .. id
local now = now_us()
local attempts = tonumber(redis.call('HGET', j, 'a')) + n
redis.call('HSET', j, 'why', reason, 'ft', itoa(now), 'n', attempts)
release_key(q, id, redis.call('HGET', j, 'k'))
redis.call('ZADD', lkey('x', q, p), itoa(now), id)
return 1
"""

# ARGV: P, limit, queue or ''. Returns per dead job, newest first: id, queue, payload,
# attempts, reason, failed-at µs.
_DEAD_LETTERS = """
local limit, queue = tonumber(ARGV[2]), ARGV[3]
local queues = queue ~= '' and {queue} or redis.call('SMEMBERS', P .. ':queues')
local found = {}
for _, q in ipairs(queues) do
  for _, level in ipairs(levels_of(q)) do
    local r = redis.call('ZREVRANGE', lkey('x', q, level[3]), 0, limit - 1, 'WITHSCORES')
    for i = 1, #r, 2 do found[#found + 1] = {r[i], tonumber(r[i + 1])} end
  end
end
table.sort(found, function(x, y)
  if x[2] ~= y[2] then return x[2] > y[2] end
  return tonumber(x[1]) > tonumber(y[1])
end)
local out = {}
for m = 1, math.min(limit, #found) do
  local id = found[m][1]
  local f = redis.call('HMGET', P .. ':j:' .. id, 'q', 'p', 'n', 'why', 'ft')
  if f[1] then
    for _, v in ipairs({id, f[1], f[2], f[3], f[4], f[5]}) do out[#out + 1] = v end
  end
end
return out
"""

# ARGV: P, dead job ids... Returns how many moved back.
_REDRIVE = """
local moved = 0
for i = 2, #ARGV do
  local old = P .. ':j:' .. ARGV[i]
  local f = redis.call('HMGET', old, 'q', 'pr', 'p', 'k')
  local q, p, k = f[1], f[2], f[4]
  if q and redis.call('ZSCORE', lkey('x', q, p), ARGV[i]) then
    local kh = P .. ':k:' .. q
    if not k or redis.call('HEXISTS', kh, k) == 0 then
      local id = itoa(redis.call('INCR', P .. ':seq'))
      local j = P .. ':j:' .. id
      redis.call('HSET', j, 'q', q, 'pr', p, 'p', f[3], 'a', 0)
      if k then
        redis.call('HSET', j, 'k', k)
        redis.call('HSET', kh, k, id)
      end
      redis.call('XADD', ensure_level(q, p), '*', 'j', id)
      redis.call('ZREM', lkey('x', q, p), ARGV[i])
      redis.call('DEL', old)
      moved = moved + 1
    end
  end
end
return moved
"""

# ARGV: P. Returns {now µs, then per level: {queue, priority, ready, delayed, in flight, dead,
# oldest ready µs or -1, {consumer, count, ...}}}.
_STATS = """
local now = now_us()
local out = {itoa(now)}
for _, q in ipairs(redis.call('SMEMBERS', P .. ':queues')) do
  for _, level in ipairs(levels_of(q)) do
    local p = level[3]
    local s, d = lkey('s', q, p), lkey('d', q, p)
    local summary = redis.call('XPENDING', s, G)
    local in_flight = tonumber(summary[1])
    local due = redis.call('ZCOUNT', d, '-inf', itoa(now))
    local ready = redis.call('XLEN', s) - in_flight + due
    local delayed = redis.call('ZCARD', d) - due
    local oldest = -1
    local g = redis.call('XINFO', 'GROUPS', s)[1]
    for i = 1, #g, 2 do
      if g[i] == 'last-delivered-id' then
        local first = redis.call('XRANGE', s, '(' .. g[i + 1], '+', 'COUNT', 1)[1]
        if first then
          oldest = tonumber(string.match(first[1], '(%d+)-')) * 1000
        end
      end
    end
    local soonest = redis.call('ZRANGEBYSCORE', d, '-inf', itoa(now), 'LIMIT', 0, 1, 'WITHSCORES')
    if soonest[2] and (oldest < 0 or tonumber(soonest[2]) < oldest) then
      oldest = tonumber(soonest[2])
    end
    local consumers = {}
    for _, c in ipairs(summary[4] or {}) do
      consumers[#consumers + 1] = c[1]
      consumers[#consumers + 1] = tonumber(c[2])
    end
    out[#out + 1] = {q, p, ready, delayed, in_flight, redis.call('ZCARD', lkey('x', q, p)),
                     itoa(oldest), consumers}
  end
end
return out
"""

# ARGV: P, queues... Returns the number of unfinished jobs.
_PENDING = """
local total = 0
for i = 2, #ARGV do
  for _, level in ipairs(levels_of(ARGV[i])) do
    total = total + redis.call('XLEN', lkey('s', ARGV[i], level[3]))
      + redis.call('ZCARD', lkey('d', ARGV[i], level[3]))
  end
end
return total
"""

# ARGV: P, group key, part, value, ttl ms, parts... Returns every part's value once all are
# present, else false.
_JOIN = """
local h = P .. ':join:' .. ARGV[2]
redis.call('HSET', h, ARGV[3], ARGV[4])
redis.call('PEXPIRE', h, ARGV[5], 'NX')  -- counted from the group's first part
local values = redis.call('HMGET', h, unpack(ARGV, 6))
for i = 1, #ARGV - 5 do
  if not values[i] then return false end
end
return values
"""


def _args(strings: list[str]) -> str:
    """Many script arguments as one JSON array of strings (Lua's cjson decodes it)."""
    return json.dumps(strings, ensure_ascii=False)


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


@dataclasses.dataclass(frozen=True)
class RedisTarget:
    """Where a `redis://` queue URL points."""

    host: str
    port: int
    db: int
    prefix: str
    username: str | None = None
    password: str | None = None

    def __repr__(self) -> str:
        auth = "***@" if self.password else ""
        return f"redis://{auth}{self.host}:{self.port}/{self.db}?prefix={self.prefix}"


def parse_redis_url(url: str) -> RedisTarget:
    """`redis://[[user]:password@]host[:port][/db][?prefix=name]`; db 0 and prefix `sleuth`
    by default. Raises ValueError, with the reason, for anything else."""
    parts = urlsplit(url)
    if parts.scheme != "redis":
        raise ValueError(f"queue URL {url!r}: expected the scheme redis://")
    if not parts.hostname:
        raise ValueError(f"queue URL {url!r} names no host; write redis://host:port/db")
    try:
        port = parts.port or 6379
    except ValueError:
        raise ValueError(f"queue URL {url!r}: the port is not a number from 1 to 65535") from None
    path = parts.path.strip("/")
    if path and not path.isdigit():
        raise ValueError(f"queue URL {url!r}: the path must be a database number, not {path!r}")
    if parts.fragment:
        raise ValueError(f"queue URL {url!r}: a Redis queue URL has no #fragment")
    try:
        options = parse_qs(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        raise ValueError(f"queue URL {url!r}: cannot read the options {parts.query!r}") from None
    unknown = sorted(set(options) - {"prefix"})
    if unknown:
        raise ValueError(f"queue URL {url!r}: unknown option(s) {unknown}; only prefix is known")
    prefixes = options.get("prefix", [DEFAULT_PREFIX])
    if len(prefixes) != 1 or not _PREFIX_RE.fullmatch(prefixes[0]):
        raise ValueError(
            f"queue URL {url!r}: prefix must be one name of letters, digits and _ . : -"
            " (so that its keys can be matched literally)"
        )
    return RedisTarget(
        host=parts.hostname,
        port=port,
        db=int(path or 0),
        prefix=prefixes[0],
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


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
        self._scripts: dict[str, Script] = {
            name: self.redis.register_script(_PRELUDE + body)
            for name, body in {
                "enqueue": _ENQUEUE,
                "reserve": _RESERVE,
                "ack": _ACK,
                "retry": _RETRY,
                "extend": _EXTEND,
                "dead": _DEAD,
                "dead_letters": _DEAD_LETTERS,
                "redrive": _REDRIVE,
                "stats": _STATS,
                "pending": _PENDING,
                "join": _JOIN,
            }.items()
        }
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

    def _run(self, name: str, *args: object) -> Any:
        if self._closed:
            raise RuntimeError(f"{self!r} is closed")
        return self._scripts[name](args=[self.prefix, *args])

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
        if abs(priority) >= _MAX_PRIORITY:
            raise ValueError(f"priority must be between -2**53 and 2**53, not {priority!r}")
        jobs = _args([dump_payload(payload), dedup_key or ""])
        _, job_id = self._run("enqueue", queue, priority, round(delay * 1e6), jobs)
        return job_id or None

    def enqueue_many(self, queue: str, payloads: Sequence[tuple[JSON, str | None]]) -> int:
        check_queue(queue)
        args: list[str] = []
        for i, (payload, dedup_key) in enumerate(payloads):
            check_dedup(dedup_key)
            args += [dump_payload(payload, f"payload #{i}"), dedup_key or ""]
        added = 0
        for start in range(0, len(args), 2 * _BATCH):
            count, _ = self._run("enqueue", queue, 0, 0, _args(args[start : start + 2 * _BATCH]))
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
                payload=json.loads(payload),
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
        for queue, priority, ready, delayed, in_flight, dead, oldest, consumers in reply[1:]:
            oldest_us = int(oldest)
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
                )
            )
        result.sort(key=lambda s: (s.queue, -s.priority))
        return result

    def pending(self, queues: Sequence[str]) -> int:
        names = check_queues(queues)
        return int(self._run("pending", *names)) if names else 0

    # -- fan-in ------------------------------------------------------------------------------

    def join(
        self, key: str, part: str, value: JSON, parts: Sequence[str]
    ) -> dict[str, JSON] | None:
        check_join(key, part, parts)
        text = dump_payload(value, "join value")
        ttl_ms = max(1, round(self.join_ttl * 1000))
        values = self._run("join", key, part, text, ttl_ms, *parts)
        if values is None:
            return None
        return {p: json.loads(v) for p, v in zip(parts, values, strict=True)}

    def forget_join(self, key: str) -> None:
        if self._closed:
            raise RuntimeError(f"{self!r} is closed")
        self.redis.delete(f"{self.prefix}:join:{key}")

    def close(self) -> None:
        self._closed = True
        self.redis.close()
