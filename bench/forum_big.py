"""The forum benchmark at the issue's size: a bulk-loaded forum (`forum_bulk.py`) on
PostgreSQL, the app's own analytics over it, and its API over real HTTP (`sleuth serve`).

    .venv/bin/python -m bench.forum --bulk-posts 10000000 --users 100000 [--rounds 20]
        [--database-url URL --keep] [--rebuild]

- load: the forum COPYed in (rows, seconds, the database's size);
- analytics: the first pass (`analyze`, what `sleuth forum analytics` runs) over every key,
  then about 1% new posts written by the crawler's own `save_topic` and the incremental pass
  after them; `--rebuild` also times `rebuild` (`--full`);
- API: `sleuth serve --no-workers` (gunicorn, one web worker) started twice, once with the
  answer cache off (`SLEUTH_FORUM_CACHE_BYTES=0`: every answer computed) and once with it on;
  each potstats2 endpoint `--rounds` times over one keep-alive connection: uncached p50/p99,
  cached p50/p99, and poster-stats 50 keyset pages deep beside the first page;
- invariants: sum(daily) = sum(weekday) = sum(year) = sum(hourly) = COUNT(posts) = the
  generator's count, and every day's, weekday's and year's posts and the first page's posters'
  posts are the generator's.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.forum_bulk import LoadReport, Spec, add_posts, load
from sleuth.apps.forum.analytics import analyze, rebuild
from sleuth.config import Settings
from sleuth.services import Services
from tests.servers import scratch_database

ENDPOINTS = (
    "boards",
    "poster-stats",
    "weekday-stats",
    "hourly-stats",
    "year-over-year-stats",
    "daily-stats",
    "poster-development?uid=1",
    "social-graph",
    "user-domains",
    "domains",
    "thread-stats",
)


def _load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _free_disk() -> str:
    usage = shutil.disk_usage("/")
    return f"{usage.free / 2**30:.1f} GiB free"


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@contextmanager
def _database(url: str | None) -> Iterator[str]:
    if url is not None:
        yield url
        return
    with scratch_database("postgresql") as scratch:
        yield scratch


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _serve(url: str, data: Path, cache_bytes: int | None) -> Iterator[int]:
    """`sleuth serve --no-workers` on this database; yields its port."""
    port = _free_port()
    env = os.environ | {"SLEUTH_DATABASE_URL": url, "SLEUTH_DATA_DIR": str(data)}
    if cache_bytes is not None:
        env["SLEUTH_FORUM_CACHE_BYTES"] = str(cache_bytes)
    sleuth = Path(sys.executable).parent / "sleuth"
    command = [str(sleuth), "serve", "--no-workers", "--web-workers", "1"]
    process = subprocess.Popen([*command, "--host", "127.0.0.1", "--port", str(port)], env=env)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("sleuth serve did not start")
            time.sleep(0.5)
        yield port
    finally:
        process.terminate()
        process.wait(30)


class Client:
    """GETs over one keep-alive HTTP connection, timed from request to the body's last byte."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def get(self, path: str) -> tuple[float, int, dict[str, str], bytes]:
        started = time.perf_counter()
        self.conn.request("GET", path)
        response = self.conn.getresponse()
        body = response.read()
        return time.perf_counter() - started, response.status, dict(response.headers), body

    def json(self, path: str) -> Any:
        _, status, _, body = self.get(path)
        assert status == 200, body[:500]
        return json.loads(body)


def _keyset(client: Client, pages: int) -> str | None:
    """The query of the page `pages` deep of poster-stats (100 a page)."""
    page = client.json("/api/forum/poster-stats?limit=100")
    query = None
    for _ in range(pages):
        after = page["next"]
        if after is None:
            break
        query = (
            f"/api/forum/poster-stats?limit=100&following_ob={after['following_ob']}"
            f"&following_uid={after['following_uid']}"
        )
        page = client.json(query)
    return query


def latency(url: str, data: Path, rounds: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    uncached: dict[str, list[float]] = {e: [] for e in ENDPOINTS}
    with _serve(url, data, 0) as port:
        client = Client(port)
        for endpoint in ENDPOINTS:  # the first answers: connections, plans, the OS's cache
            client.get(f"/api/forum/{endpoint}")
        for _ in range(rounds):
            for endpoint in ENDPOINTS:
                seconds, status, headers, body = client.get(f"/api/forum/{endpoint}")
                assert status == 200, body[:500]
                assert headers["X-Cache"] == "miss"
                uncached[endpoint].append(seconds)
        deep = _keyset(client, 50)
        first, deep_times = [], []
        for _ in range(rounds):
            first.append(client.get("/api/forum/poster-stats?limit=100")[0])
            if deep is not None:
                deep_times.append(client.get(deep)[0])
        out["sizes"] = {e: len(client.get(f"/api/forum/{e}")[3]) for e in ENDPOINTS}
    cached: dict[str, list[float]] = {e: [] for e in ENDPOINTS}
    with _serve(url, data, None) as port:
        client = Client(port)
        for endpoint in ENDPOINTS:
            client.get(f"/api/forum/{endpoint}")
        for _ in range(rounds):
            for endpoint in ENDPOINTS:
                seconds, status, headers, _ = client.get(f"/api/forum/{endpoint}")
                assert status == 200 and headers["X-Cache"] == "hit"
                cached[endpoint].append(seconds)
    every_uncached = [v for vs in uncached.values() for v in vs]
    every_cached = [v for vs in cached.values() for v in vs]
    out |= {
        "uncached": {e: (statistics.median(v), _p(v, 0.99)) for e, v in uncached.items()},
        "cached": {e: (statistics.median(v), _p(v, 0.99)) for e, v in cached.items()},
        "uncached_p50": statistics.median(every_uncached),
        "uncached_p99": _p(every_uncached, 0.99),
        "cached_p50": statistics.median(every_cached),
        "cached_p99": _p(every_cached, 0.99),
        "first_page_p50": statistics.median(first),
        "deep_page_p50": statistics.median(deep_times) if deep_times else None,
        "deep_page_p99": _p(deep_times, 0.99) if deep_times else None,
        "first_page_p99": _p(first, 0.99),
    }
    return out


def invariants(url: str, data: Path, engine: sa.Engine, loaded: LoadReport) -> dict[str, Any]:
    truth = loaded.truth
    with engine.connect() as conn:
        posts = int(conn.execute(sa.text("SELECT count(*) FROM forum_posts")).scalar_one())
    with _serve(url, data, 0) as port:
        client = Client(port)

        def rows(endpoint: str) -> dict[str, Any]:
            return dict(client.json(f"/api/forum/{endpoint}")["rows"])

        answers = {
            e: rows(e)
            for e in ("daily-stats", "weekday-stats", "year-over-year-stats", "hourly-stats")
        }
        top = client.json("/api/forum/poster-stats?limit=100")["rows"]
    sums = {e: sum(v["post_count"] for v in a.values()) for e, a in answers.items()}

    def counts(answer: dict[str, Any]) -> dict[str, int]:
        return {k: v["post_count"] for k, v in answer.items() if v["post_count"]}

    checks = {
        "sums = COUNT(posts)": set(sums.values()) == {posts},
        "COUNT(posts) = generated": posts == truth.posts,
        "days = generated": counts(answers["daily-stats"]) == truth.by_day(),
        "weekdays = generated": counts(answers["weekday-stats"]) == truth.by_weekday(),
        "years = generated": counts(answers["year-over-year-stats"]) == truth.by_year(),
        "top 100 posters = generated": all(
            r["post_count"] == int(truth.users[r["user"]["uid"]]) for r in top
        ),
    }
    return {"count_posts": posts, "sums": sums, "checks": checks, "holds": all(checks.values())}


def _vacuum(engine: sa.Engine) -> str:
    """VACUUM ANALYZE, as autovacuum would after a pass that filled the tables: where it is off
    (this benchmark's shared server), the planner would keep the counts of empty tables."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        setting = str(conn.execute(sa.text("SHOW autovacuum")).scalar_one())
        conn.execute(sa.text("VACUUM ANALYZE"))
    return setting


def _size(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(sa.text("SELECT pg_database_size(current_database())")).scalar_one()
        )


def run(posts: int, users: int, rounds: int, url: str | None, full: bool) -> dict[str, Any]:
    """Load, analyze, measure (see the module doc); `url`: a database to use (emptied by
    nobody: give it empty), else a scratch one, dropped after."""
    out: dict[str, Any] = {"load_start": _load_average(), "disk_before": _free_disk()}
    with tempfile.TemporaryDirectory() as tmp, _database(url) as db:
        services = Services(dataclasses.replace(Settings(data_dir=Path(tmp)), database_url=db))
        engine = services.engine  # the app's migrations make the schema
        started = time.monotonic()
        loaded = load(engine, Spec(posts, users))
        out["load_s"] = time.monotonic() - started
        out["load"] = loaded
        out["size_loaded"] = _size(engine)
        print(f"loaded {loaded.posts} posts in {out['load_s']:.0f} s", flush=True)
        with engine.connect() as conn:
            out["rows"] = {
                table: int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())
                for table in (
                    "forum_posts",
                    "forum_topics",
                    "forum_users",
                    "forum_boards",
                    "forum_quotes",
                    "forum_links",
                    "forum_edits",
                    "forum_dirty",
                )
            }
        first = analyze(engine)
        out["first"] = first
        print(f"first pass {first.seconds:.0f} s, {first.keys} keys {first.stages}", flush=True)
        out["autovacuum"] = _vacuum(engine)
        added, topics, seconds = add_posts(engine, loaded, max(1, posts // 100))
        out["added"] = (added, topics, seconds)
        later = analyze(engine)
        out["incremental"] = later
        print(f"incremental {later.seconds:.1f} s, {later.keys} keys {later.stages}", flush=True)
        if full:
            with engine.connect() as conn:
                site = int(conn.execute(sa.text("SELECT id FROM forum_sites")).scalar_one())
            out["rebuild"] = rebuild(engine, site)
            print(f"rebuild {out['rebuild'].seconds:.0f} s", flush=True)
        with engine.connect() as conn:
            out["analytics_rows"] = {
                table: int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())
                for table in (
                    "forum_activity",
                    "forum_pair_days",
                    "forum_link_days",
                    "forum_poster_totals",
                    "forum_day_totals",
                    "forum_topic_times",
                )
            }
        out["size_analyzed"] = _size(engine)
        out |= latency(db, Path(tmp), rounds)
        out["invariants"] = invariants(db, Path(tmp), engine, loaded)
        services.close()
    out["disk_after"] = _free_disk()
    out["load_end"] = _load_average()
    return out


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"


def report(r: dict[str, Any], command: str, machine: str) -> str:
    loaded: LoadReport = r["load"]
    first, later = r["first"], r["incremental"]
    added, topics, add_s = r["added"]
    share = added / loaded.posts
    lines = [
        f"Command: `{command}`",
        f"Machine: {machine}; load average (1/5/15 min) {r['load_start']} at the start, "
        f"{r['load_end']} at the end (shared with other engineers' work); disk "
        f"{r['disk_before']} before, {r['disk_after']} after (database dropped).",
        "",
        f"- Loaded: {loaded.posts:,} posts, {loaded.topics:,} topics, {loaded.users:,} users "
        f"in {r['load_s']:.0f} s ({', '.join(f'{k} {v:.0f} s' for k, v in loaded.stages.items())}"
        f"; quotes and links of {loaded.checked} sampled posts checked against "
        f"`read_bbcode`); rows {', '.join(f'{k} {v:,}' for k, v in r['rows'].items())}; "
        f"database {r['size_loaded'] / 2**30:.2f} GiB loaded, "
        f"{r['size_analyzed'] / 2**30:.2f} GiB analyzed.",
        f"- Analytics: first pass {first.seconds:.0f} s ({first.keys:,} keys, {first.days:,} "
        f"days, {first.topics:,} topics); {added:,} new posts ({share:.2%}) in {topics:,} "
        f"topics written by `save_topic` in {add_s:.0f} s, then the incremental pass "
        f"{later.seconds:.2f} s ({later.keys:,} keys) = {later.seconds / first.seconds:.2%} "
        "of the first pass (goal <= 1% of a rebuild)"
        + (f"; rebuild {r['rebuild'].seconds:.0f} s." if "rebuild" in r else "."),
        "- Analytics stages (days / topics' times / totals / thread totals): first pass "
        + " / ".join(f"{v:.1f}" for v in first.stages.values())
        + " s; incremental "
        + " / ".join(f"{v:.2f}" for v in later.stages.values())
        + " s.",
        f"- autovacuum is {r['autovacuum']} on this server: the bench runs VACUUM ANALYZE after "
        "the first pass, as autovacuum would.",
        f"- Analytics rows: {', '.join(f'{k} {v:,}' for k, v in r['analytics_rows'].items())}.",
        f"- API over HTTP, every endpoint: uncached p50 {_ms(r['uncached_p50'])}, p99 "
        f"{_ms(r['uncached_p99'])} (goal 20 / 100 ms); cached p50 {_ms(r['cached_p50'])}, "
        f"p99 {_ms(r['cached_p99'])} (goal p50 2 ms); poster-stats first page p50 "
        f"{_ms(r['first_page_p50'])} (p99 {_ms(r['first_page_p99'])}), 50 pages deep "
        f"{_ms(r['deep_page_p50'])} (p99 {_ms(r['deep_page_p99'])}).",
        f"- Invariants: COUNT(posts) = {r['invariants']['count_posts']:,}, sums "
        f"{r['invariants']['sums']}; "
        + ", ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in r["invariants"]["checks"].items())
        + ".",
        "",
        "| endpoint | answer | uncached p50 | uncached p99 | cached p50 | cached p99 |",
        "|---|---|---|---|---|---|",
    ]
    for e in ENDPOINTS:
        u50, u99 = r["uncached"][e]
        c50, c99 = r["cached"][e]
        size = r["sizes"][e]
        lines.append(
            f"| {e} | {size / 1024:.0f} kB | {_ms(u50)} | {_ms(u99)} | {_ms(c50)} | {_ms(c99)} |"
        )
    return "\n".join(lines) + "\n"
