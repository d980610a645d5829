"""The forum app on the offline web: crawl rate under Discourse's limits, what an incremental
crawl costs, analytics' incremental cost against a rebuild, and the API's latency.

    .venv/bin/python -m bench.forum [--posts 30000] [--ceiling-seconds 60]
        [--database postgresql|sqlite] [--write-results]

- ceiling: a crawl of an emulated Discourse with its real limits on (200 requests/min and
  50/10 s per address) for `--ceiling-seconds`, paced by `[forum] discourse_per_minute` (200):
  requests sent as a fraction of the ceiling, and the 429s the emulator refused;
- incremental: a forum of `--posts` posts crawled whole (limits off), then crawled again
  unchanged, then after its clock moved on (k topics bumped, m posts new): requests counted by
  the emulator, beside the issue's bound ceil(k/30) + k + ceil(m/20) + 1;
- analytics: the full rebuild's time, and an incremental pass after <= 1% new posts;
- API: every potstats2 endpoint over that forum, uncached (each answer computed) and cached,
  p50/p99 over `--rounds` rounds, a deep keyset page beside the first; and the invariants
  sum(daily) = COUNT(posts) = sum(weekday) = sum(year).
`--write-results` replaces the `## forum` section of bench/RESULTS.md.

At the issue's size (10M posts, 100k users, PostgreSQL) a crawl is too slow (about 170 posts/s):
`--bulk-posts N --users U` loads a generated forum in bulk instead and measures analytics and
the API over real HTTP (`bench/forum_big.py`, `bench/forum_bulk.py`); it prints its figures.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.index import machine, write_section
from sleuth.apps.forum.analytics import analyze, rebuild
from sleuth.apps.forum.api import CACHE_KEY
from sleuth.apps.forum.cache import LocalCache
from sleuth.apps.forum.crawl import crawl_discourse
from sleuth.apps.forum.models import forum_posts, forum_sites, forum_topics
from sleuth.config import Settings
from sleuth.emulator import EmulatorServer, create_imagehost_app
from sleuth.emulator.forums import Forum, Forums
from sleuth.net.fetcher import Fetcher
from sleuth.services import Services
from sleuth.sources.discourse import DiscourseClient, forum_base, profile
from sleuth.web.app import create_app
from tests.servers import scratch_database

SEED = 3
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


def _crawl(
    engine: sa.Engine, url: str, per_minute: float = 0.0, seconds: float | None = None
) -> None:
    async def go() -> None:
        async with Fetcher(allow_private=True) as fetcher:
            client = DiscourseClient(
                fetcher, forum_base(f"{url}/discourse/main/latest"), profile(per_minute)
            )
            await crawl_discourse(engine, client)

    async def bounded() -> None:
        with suppress(TimeoutError):  # the crawl is cut at `seconds`
            await asyncio.wait_for(go(), seconds)

    asyncio.run(bounded() if seconds is not None else go())


@contextmanager
def _services(database: str, data: Path) -> Iterator[Services]:
    settings = Settings(data_dir=data)
    if database == "sqlite":
        services = Services(settings)
        yield services
        services.close()
        return
    with scratch_database(database) as url:
        services = Services(dataclasses.replace(settings, database_url=url))
        yield services
        services.close()


def ceiling(seconds: float) -> dict[str, float]:
    forums = Forums({"main": Forum(SEED, 20_000)}, rate_limits=True)
    with (
        tempfile.TemporaryDirectory() as tmp,
        _services("sqlite", Path(tmp)) as services,
        EmulatorServer(create_imagehost_app(seed=0, forums=forums)) as url,
    ):
        started = time.monotonic()
        _crawl(services.engine, url, 200.0, seconds)
        elapsed = time.monotonic() - started
    sent = forums.requests[("discourse", "main")]
    refused = forums.requests[("discourse 429", "main")]
    return {
        "seconds": elapsed,
        "requests": sent,
        "refused": refused,
        "fraction": sent / (200.0 * elapsed / 60.0),
    }


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def big(posts: int, database: str, rounds: int) -> dict[str, Any]:
    forum = Forum(SEED, posts)
    forums = Forums({"main": forum}, rate_limits=False)
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, _services(database, Path(tmp)) as services:
        engine = services.engine
        with EmulatorServer(create_imagehost_app(seed=0, forums=forums)) as url:
            started = time.monotonic()
            _crawl(engine, url)
            out["crawl_s"] = time.monotonic() - started
            out["crawl_requests"] = forums.requests[("discourse", "main")]
            started = time.monotonic()
            first = analyze(engine)
            out["first_analytics_s"] = time.monotonic() - started
            with engine.connect() as conn:
                site = int(conn.execute(sa.select(forum_sites.c.id)).scalar_one())
                stored = int(
                    conn.execute(sa.select(sa.func.count()).select_from(forum_posts)).scalar_one()
                )
            out["posts"], out["first_keys"] = stored, first.keys
            started = time.monotonic()
            rebuild(engine, site)
            out["rebuild_s"] = time.monotonic() - started

            before = forums.requests[("discourse", "main")]
            _crawl(engine, url)
            out["unchanged_requests"] = forums.requests[("discourse", "main")] - before
            listed = {t.id: t.count for t in forum.topics_by_activity()}
            step = forum.topic_gap // 2
            forum.advance(step)
            while (
                sum(t.count for t in forum.topics_by_activity()) - sum(listed.values())
                < posts // 200
            ):
                forum.advance(step)
            now = {t.id: t.count for t in forum.topics_by_activity()}
            bumped = sum(1 for t, n in now.items() if listed.get(t) != n)
            new = sum(now.values()) - sum(listed.values())
            before = forums.requests[("discourse", "main")]
            _crawl(engine, url)
            out["k"], out["m"] = bumped, new
            out["incremental_requests"] = forums.requests[("discourse", "main")] - before
            out["bound"] = math.ceil(bumped / 30) + bumped + math.ceil(new / 20) + 1
            started = time.monotonic()
            later = analyze(engine)
            out["incremental_analytics_s"] = time.monotonic() - started
            out["incremental_keys"], out["new_share"] = later.keys, new / stored

        out |= _latency(services, rounds)
        out |= _invariants(services)
    return out


def _latency(services: Services, rounds: int) -> dict[str, Any]:
    app = create_app(services)
    app.extensions[CACHE_KEY] = LocalCache(0)  # keeps nothing: every answer computed
    client = app.test_client()
    uncached: dict[str, list[float]] = {e: [] for e in ENDPOINTS}
    cached: dict[str, list[float]] = {e: [] for e in ENDPOINTS}
    for _ in range(rounds):
        for endpoint in ENDPOINTS:
            started = time.perf_counter()
            response = client.get(f"/api/forum/{endpoint}")
            uncached[endpoint].append(time.perf_counter() - started)
            assert response.status_code == 200, response.get_data(as_text=True)
    app.extensions[CACHE_KEY] = LocalCache(256 * 1024 * 1024)
    for endpoint in ENDPOINTS:
        client.get(f"/api/forum/{endpoint}")
    for _ in range(rounds):
        for endpoint in ENDPOINTS:
            started = time.perf_counter()
            response = client.get(f"/api/forum/{endpoint}")
            cached[endpoint].append(time.perf_counter() - started)
            assert response.headers["X-Cache"] == "hit"
    app.extensions[CACHE_KEY] = LocalCache(0)
    page = client.get("/api/forum/poster-stats?limit=100").get_json()
    deep_after = None
    for _ in range(50):  # 50 pages down
        if page["next"] is None:
            break
        deep_after = page["next"]
        page = client.get(
            f"/api/forum/poster-stats?limit=100&following_ob={deep_after['following_ob']}"
            f"&following_uid={deep_after['following_uid']}"
        ).get_json()
    first, deep = [], []
    for _ in range(rounds):
        started = time.perf_counter()
        client.get("/api/forum/poster-stats?limit=100")
        first.append(time.perf_counter() - started)
        if deep_after is not None:
            started = time.perf_counter()
            client.get(
                f"/api/forum/poster-stats?limit=100&following_ob={deep_after['following_ob']}"
                f"&following_uid={deep_after['following_uid']}"
            )
            deep.append(time.perf_counter() - started)
    every_uncached = [v for vs in uncached.values() for v in vs]
    every_cached = [v for vs in cached.values() for v in vs]
    return {
        "uncached": {e: (statistics.median(v), _p(v, 0.99)) for e, v in uncached.items()},
        "uncached_p50": statistics.median(every_uncached),
        "uncached_p99": _p(every_uncached, 0.99),
        "cached_p50": statistics.median(every_cached),
        "cached_p99": _p(every_cached, 0.99),
        "first_page_p50": statistics.median(first),
        "deep_page_p50": statistics.median(deep) if deep else None,
    }


def _invariants(services: Services) -> dict[str, Any]:
    client = create_app(services).test_client()
    with services.engine.connect() as conn:
        posts = int(conn.execute(sa.select(sa.func.count()).select_from(forum_posts)).scalar_one())
        topics = int(
            conn.execute(sa.select(sa.func.count()).select_from(forum_topics)).scalar_one()
        )

    def total(endpoint: str) -> int:
        rows = client.get(f"/api/forum/{endpoint}").get_json()["rows"]
        return sum(v["post_count"] for v in rows.values())

    sums = {
        e: total(e)
        for e in ("daily-stats", "weekday-stats", "year-over-year-stats", "hourly-stats")
    }
    return {
        "count_posts": posts,
        "topics": topics,
        "sums": sums,
        "holds": set(sums.values()) == {posts},
    }


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"


def report(ceil: dict[str, float] | None, result: dict[str, Any], args: argparse.Namespace) -> str:
    lines = [
        "## forum",
        "",
        f"Command: `.venv/bin/python -m bench.forum --posts {args.posts} --ceiling-seconds "
        f"{args.ceiling_seconds} --database {args.database} --rounds {args.rounds}`",
        f"Machine: {machine(('sqlalchemy', 'psycopg', 'flask'))}",
        "",
    ]
    if ceil is not None:
        lines += [
            f"- Crawl under Discourse's limits ({ceil['seconds']:.0f} s, paced at 200/min): "
            f"{ceil['requests']} requests = {ceil['fraction']:.1%} of the ceiling, "
            f"{ceil['refused']} answered 429 (goal >= 90%, <= 1 per 10,000).",
        ]
    r = result
    lines += [
        f"- Forum: {r['posts']} posts, {r['topics']} topics ({args.database}); whole crawl "
        f"(limits off) {r['crawl_requests']} requests in {r['crawl_s']:.1f} s.",
        f"- Incremental crawl: unchanged {r['unchanged_requests']} requests (goal <= 2); after "
        f"k = {r['k']} topics bumped and m = {r['m']} new posts, {r['incremental_requests']} "
        f"requests (bound ceil(k/30) + k + ceil(m/20) + 1 = {r['bound']}).",
        f"- Analytics: first pass {r['first_analytics_s']:.1f} s ({r['first_keys']} keys); full "
        f"rebuild {r['rebuild_s']:.1f} s; after {r['new_share']:.2%} new posts, "
        f"{r['incremental_analytics_s']:.2f} s ({r['incremental_keys']} keys) = "
        f"{r['incremental_analytics_s'] / r['rebuild_s']:.2%} of the rebuild (goal <= 1%).",
        f"- API, every endpoint: uncached p50 {_ms(r['uncached_p50'])}, p99 "
        f"{_ms(r['uncached_p99'])} (goal 20 / 100 ms); cached p50 {_ms(r['cached_p50'])}, p99 "
        f"{_ms(r['cached_p99'])} (goal p50 2 ms); poster-stats first page p50 "
        f"{_ms(r['first_page_p50'])}, 50 pages deep {_ms(r['deep_page_p50'])}.",
        f"- Invariants: COUNT(posts) = {r['count_posts']}, sums {r['sums']}: "
        f"{'hold' if r['holds'] else 'BROKEN'}.",
        "",
        "| endpoint | uncached p50 | uncached p99 |",
        "|---|---|---|",
    ]
    uncached = r["uncached"]
    assert isinstance(uncached, dict)
    lines += [f"| {e} | {_ms(p50)} | {_ms(p99)} |" for e, (p50, p99) in uncached.items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--posts", type=int, default=30_000)
    parser.add_argument("--ceiling-seconds", type=float, default=60.0, help="0: skip")
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--write-results", action="store_true")
    parser.add_argument("--bulk-posts", type=int, help="a bulk-loaded forum of this many posts")
    parser.add_argument("--users", type=int, default=100_000, help="with --bulk-posts")
    parser.add_argument("--database-url", help="with --bulk-posts: this (empty) database")
    parser.add_argument("--rebuild", action="store_true", help="with --bulk-posts: time rebuild")
    args = parser.parse_args(argv)
    if args.bulk_posts:
        from bench import forum_big

        result = forum_big.run(
            args.bulk_posts, args.users, args.rounds, args.database_url, args.rebuild
        )
        command = " ".join(["python -m bench.forum", *(argv if argv is not None else sys.argv[1:])])
        print(forum_big.report(result, command, machine(("sqlalchemy", "psycopg", "flask"))))
        return 0 if result["invariants"]["holds"] else 1
    ceil = ceiling(args.ceiling_seconds) if args.ceiling_seconds > 0 else None
    result = big(args.posts, args.database, args.rounds)
    text = report(ceil, result, args)
    print(text)
    if args.write_results:
        write_section(Path(__file__).parent / "RESULTS.md", "forum", text)
    return 0 if result["holds"] else 1


if __name__ == "__main__":
    sys.exit(main())
