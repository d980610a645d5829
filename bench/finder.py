"""The finder's quality and speed on the offline web, against the world's ground truth.

    .venv/bin/python -m bench.finder [--artists 50] [--artworks 4] [--posts 20]
        [--big 1000] [--write-results]

One ArtWorld (`--artists` x `--artworks` artworks, >= 200 by default; the first artist's
accounts have `--big` posts), served by the emulator with its rate limits off. Each artwork's
page is queried in process, as `sleuth finder query` would, until END. Then:
- quality: from the hashes stored for the request's accounts, each image's distance to the
  artwork (sleuth: the better of direct and mirrored; AOTF: direct only, <= 6 bits) gives the
  predicted posts per threshold 4..14, scored against the ground truth (posts by
  (network, post id, image position)); the finder's own results at the default
  `max_distance` are checked to be that threshold's prediction;
- time from query to END: the big artist's first scan (its post images rendered by the
  emulators beforehand: rendering them on request took more CPU than the scan on the same
  cores), and warm queries (the artist's accounts already indexed; the artwork's picture
  downloaded once before, for the same reason) as p50;
- scan throughput: images indexed per second during the big artist's first scan, beside
  `sleuth images crawl` of the same image URLs in the same run, with the same worker settings.
`--write-results` replaces the `## finder` section of bench/RESULTS.md (appended if missing).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from bench.index import machine, write_section
from sleuth.apps.finder import requests as reqs
from sleuth.apps.finder.cli import run_query
from sleuth.apps.finder.firstimage import fetch_first_image
from sleuth.apps.finder.linkfinder import LinkFinder
from sleuth.apps.finder.matching import distances
from sleuth.apps.finder.models import images, posts
from sleuth.apps.finder.settings import NAME, FinderSettings
from sleuth.apps.images.cli import crawl_list
from sleuth.config import Settings, SourcesSettings, WorkerSettings
from sleuth.emulator import EmulatorServer, create_imagehost_app
from sleuth.emulator.artworld import MASTODON_SERVERS, ArtWorld
from sleuth.emulator.cli import SOURCE_PREFIXES, emulator_sources
from sleuth.emulator.imagehost import SOCIAL
from sleuth.emulator.ratelimits import Limit
from sleuth.imaging.hashes import phash_from_db
from sleuth.net.fetcher import Fetcher
from sleuth.services import Services
from sleuth.sources.profiles import AccountRef

SEED = 11
THRESHOLDS = range(4, 15)
AOTF_DISTANCE = 6  # AOTF's threshold: direct pHash only, no mirror
GOAL_RECALL, GOAL_PRECISION = 0.98, 0.99

Key = tuple[str, str, str]  # network, post id, "position/count"


@dataclasses.dataclass
class Outcome:
    """One artwork's query: what the truth holds, each candidate image's distances."""

    truth: set[Key]
    found: set[Key]  # the finder's own results (default max_distance)
    keys: list[Key]  # candidate images of the artist's accounts
    direct: np.ndarray
    best: np.ndarray  # min(direct, mirrored)
    seconds: float
    first_scan: bool
    artist: int
    request: reqs.FinderRequest


def services_for(data_dir: Path, url: str, sources: dict[str, str] | None = None) -> Services:
    """The finder's services on the emulator at `url` (or at the given `sources`)."""
    base = Settings(data_dir=data_dir)
    return Services(
        dataclasses.replace(
            base,
            net=dataclasses.replace(base.net, allow_private=True, retries=0),
            sources=SourcesSettings(**(sources or emulator_sources(url))),
            worker=WorkerSettings(concurrency=16, processes=1),
            apps={**base.apps, NAME: FinderSettings()},
        )
    )


def prerender(app: Any, world: ArtWorld, artist: int) -> int:
    """Render the artist's post images in the emulators' caches before a timed query, so
    that its scan time is sleuth's: rendering them on request shared the same 2 cores (60% of
    the bench process's samples in a py-spy profile of a first scan). Returns their bytes."""
    return sum(
        app.extensions[SOCIAL][account.network].files.keep(
            image for post in world.posts(account) for image in post.images
        )
        for account in world.artists[artist].accounts
    )


async def _render_picture(services: Services, url: str) -> None:
    fetcher = Fetcher(services.settings.net)

    async def nobody(ref: AccountRef) -> bool:
        return False

    async with fetcher:
        page = await LinkFinder(fetcher, services.settings.sources, nobody).page(url)
        await fetch_first_image(fetcher, page.image_urls, headers=page.image_headers)


def render_picture(services: Services, url: str) -> None:
    """Download the artwork's picture once before its timed query, so that the art sites'
    emulator has rendered it (a real site serves it from its storage): the warm query's time
    is then sleuth's (rendering took about 200 ms of a 340 ms warm query when timed)."""
    asyncio.run(_render_picture(services, url))


def timed_query(services: Services, url: str) -> tuple[reqs.FinderRequest, float]:
    """Ask for `url`, run the finder's workers until the request ends: (request, seconds)."""
    start = time.perf_counter()
    done = run_query(services, url, quiet=True, handle_signals=False)
    return done, time.perf_counter() - start


def candidates(services: Services, request: reqs.FinderRequest) -> tuple[list[Key], np.ndarray]:
    """Every indexed image of the request's accounts and its stored (signed) pHash."""
    accounts = [(a["network"], a["account_id"]) for a in request.accounts]
    if not accounts:
        return [], np.zeros(0, dtype=np.int64)
    stmt = (
        sa.select(
            images.c.network,
            images.c.post_id,
            images.c.position,
            images.c.phash,
            posts.c.images_count,
        )
        .join(
            posts,
            sa.and_(posts.c.network == images.c.network, posts.c.post_id == images.c.post_id),
        )
        .where(
            images.c.state == "indexed",
            sa.tuple_(images.c.network, images.c.account_id).in_(accounts),
        )
    )
    with services.engine.connect() as conn:
        rows = conn.execute(stmt).all()
    keys = [(r.network, r.post_id, f"{r.position}/{r.images_count}") for r in rows]
    return keys, np.array([r.phash for r in rows], dtype=np.int64)


def media_urls(services: Services, request: reqs.FinderRequest) -> list[str]:
    """The URLs of the request's accounts' indexed images."""
    accounts = [(a["network"], a["account_id"]) for a in request.accounts]
    stmt = sa.select(images.c.media_url).where(
        images.c.state == "indexed", sa.tuple_(images.c.network, images.c.account_id).in_(accounts)
    )
    with services.engine.connect() as conn:
        return list(conn.execute(stmt).scalars())


def images_rate(data_dir: Path, url: str, urls: list[str]) -> tuple[int, float]:
    """`sleuth images crawl` of `urls` (in process, the finder's worker settings): (images
    stored, seconds)."""
    data_dir.mkdir(parents=True)
    listing = data_dir / "urls.txt"
    listing.write_text("".join(u + "\n" for u in urls))
    services = services_for(data_dir / "data", url)
    try:
        started = time.perf_counter()
        with listing.open(encoding="utf-8") as stream:
            final = crawl_list(services, "bench", stream)
        seconds = time.perf_counter() - started
    finally:
        services.close()
    return final.count("success") + final.count("duplicate"), seconds


# The settings served apart in the rate-limited run, each from a server (host and port) of its
# own, as the real networks are: a budget is per host, so one server for all would pace every
# network by the budget the first one announced.
APART = ("x_api_url", "mastodon_url", "bluesky_appview_url", "bluesky_pds_url")


def _limits_of(app: Any) -> dict[tuple[str, str], Limit]:
    """Each emulated social API bucket's limit, by (network, the bucket's limiter name)."""
    social = app.extensions[SOCIAL]
    found = {("x", bucket): limit for bucket, limit in social["x"].limits.items()}
    everything, paging = social["mastodon"].limits
    for server in MASTODON_SERVERS:
        found["mastodon", server] = everything
        found["mastodon", server + " paging"] = paging
    for bucket in ("appview", "pds"):
        found["bluesky", bucket] = social["bluesky"].limit
    return found


def limited_scan(world: ArtWorld, data_dir: Path, window: float, quota: float) -> dict[str, Any]:
    """The big artist's first scan under the emulators' real limits, windows and counts
    scaled: its seconds, and per bucket that was busy for whole windows (those after the
    first with a request and before the last), what each window served and refused."""
    app = create_imagehost_app(SEED, world=world, window_scale=window, quota_scale=quota)
    prerender(app, world, 0)
    artwork = world.artworks[world.artists[0].artworks[0]]
    page = world.page_url(artwork, sorted(artwork.pages)[0])
    with contextlib.ExitStack() as servers:
        base, *apart = (servers.enter_context(EmulatorServer(app)) for _ in range(5))
        sources = emulator_sources(base)
        for name, url in zip(APART, apart, strict=True):
            sources[name] = url + SOURCE_PREFIXES[name]
        services = services_for(data_dir, base, sources)
        try:
            render_picture(services, page)
            done, seconds = timed_query(services, page)
        finally:
            services.close()
    if done.error is not None:
        raise RuntimeError(f"{page}: {done.error}")
    buckets = []
    for (network, bucket), limit in sorted(_limits_of(app).items()):
        limiter = app.extensions[SOCIAL][network].limiter
        served: Counter[float] = Counter()
        refused: Counter[float] = Counter()
        for counts, into in ((limiter.served(), served), (limiter.refused(), refused)):
            for (name, _client, start), n in counts.items():
                if name == bucket:
                    into[start] += n
        whole = sorted(served)[1:-1]
        if whole:
            buckets.append(
                (network, bucket, limit, [served[w] for w in whole], [refused[w] for w in whole])
            )
    return {"seconds": seconds, "buckets": buckets, "window": window, "quota": quota}


def score(outcomes: list[Outcome], predicted: Any) -> tuple[float, float, int, int]:
    """(recall, precision, true positives, false positives) of `predicted(outcome) -> mask`."""
    tp = fp = wanted = 0
    for o in outcomes:
        hit = {k for k, m in zip(o.keys, predicted(o).tolist(), strict=True) if m}
        tp += len(hit & o.truth)
        fp += len(hit - o.truth)
        wanted += len(o.truth)
    recall = tp / wanted if wanted else 1.0
    precision = tp / (tp + fp) if tp + fp else 1.0
    return recall, precision, tp, fp


def measure(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    world = ArtWorld(
        seed=SEED,
        artists=args.artists,
        artworks_per_artist=args.artworks,
        posts_per_account=args.posts,
        big_account_posts=args.big,
    )
    truth = {e["artwork"]: e for e in world.ground_truth()}
    default = FinderSettings().max_distance
    outcomes: list[Outcome] = []
    app = create_imagehost_app(SEED, world=world, rate_limits=False)
    started = time.perf_counter()
    rendered = prerender(app, world, 0)
    render_seconds = time.perf_counter() - started
    with EmulatorServer(app) as url, tempfile.TemporaryDirectory() as tmp:
        services = services_for(Path(tmp) / "data", url)
        try:
            for number, artwork_id in enumerate(sorted(world.artworks)):
                artwork = world.artworks[artwork_id]
                page = world.page_url(artwork, sorted(artwork.pages)[0])
                render_picture(services, page)
                done, seconds = timed_query(services, page)
                if done.error is not None:
                    raise RuntimeError(f"{page}: {done.error}")
                assert done.phash is not None and done.phash_mirror is not None
                keys, hashes = candidates(services, done)
                direct = distances(phash_from_db(done.phash), hashes)
                mirrored = distances(phash_from_db(done.phash_mirror), hashes)
                entry = truth[artwork_id]
                outcomes.append(
                    Outcome(
                        truth={
                            (p["network"], p["post_id"], p["image_position"])
                            for p in entry["posts"]
                        },
                        found={
                            (r["network"], r["tweet_id"], r["image_position"]) for r in done.results
                        },
                        keys=keys,
                        direct=direct,
                        best=np.minimum(direct, mirrored),
                        seconds=seconds,
                        first_scan=done.has_first_time_scan,
                        artist=artwork.artist,
                        request=done,
                    )
                )
                print(f"\r{number + 1}/{len(world.artworks)} queries", end="", file=sys.stderr)
            print(file=sys.stderr)
            first = next(o for o in outcomes if o.artist == 0 and o.first_scan)
            big_urls = media_urls(services, first.request)
        finally:
            services.close()
        stored, images_seconds = images_rate(Path(tmp) / "images", url, big_urls)
        limited = limited_scan(world, Path(tmp) / "limited", args.window_scale, args.quota_scale)

    # The finder's own answer is the default threshold's prediction on the same hashes.
    for o in outcomes:
        mine = {k for k, d in zip(o.keys, o.best.tolist(), strict=True) if d <= default}
        if mine != o.found:
            raise RuntimeError(f"the finder's results differ from the hashes: {o.found ^ mine}")

    sweep = {t: score(outcomes, lambda o, t=t: o.best <= t) for t in THRESHOLDS}
    aotf = score(outcomes, lambda o: o.direct <= AOTF_DISTANCE)
    meeting = [t for t, (r, p, _, _) in sweep.items() if r >= GOAL_RECALL and p >= GOAL_PRECISION]
    big = [o for o in outcomes if o.artist == 0 and o.first_scan]
    warm = [o.seconds for o in outcomes if not o.first_scan]
    big_images = len(big[0].keys) if big else 0
    figures = {
        "sweep": sweep,
        "aotf": aotf,
        "meeting": meeting,
        "default": default,
        "first_scan": big[0].seconds if big else None,
        "rendered_mb": rendered / 2**20,
        "images_stored": stored,
        "images_urls": len(big_urls),
        "images_seconds": images_seconds,
        "limited": limited,
        "render_seconds": render_seconds,
        "big_images": big_images,
        "warm_p50": statistics.median(warm) if warm else None,
        "warm_n": len(warm),
        "artworks": len(outcomes),
        "with_posts": sum(1 for o in outcomes if o.truth),
        "posts": sum(len(o.truth) for o in outcomes),
    }
    return report(figures, args), figures


def report(f: dict[str, Any], args: argparse.Namespace) -> str:
    lines = [
        f"{f['artworks']} artworks ({f['with_posts']} posted, {f['posts']} posts with them), "
        f"{args.artists} artists; the first artist's accounts have {args.big} posts.",
        "",
        "| method | recall | precision | true | false |",
        "|---|---|---|---|---|",
    ]
    for t, (r, p, tp, fp) in f["sweep"].items():
        mark = " (default)" if t == f["default"] else ""
        lines.append(f"| sleuth, mirror, <= {t}{mark} | {r:.2%} | {p:.2%} | {tp} | {fp} |")
    r, p, tp, fp = f["aotf"]
    lines.append(f"| AOTF, direct, <= {AOTF_DISTANCE} | {r:.2%} | {p:.2%} | {tp} | {fp} |")
    lines.append("")
    if f["meeting"]:
        lines.append(
            f"Thresholds meeting recall >= {GOAL_RECALL:.0%} and precision >= "
            f"{GOAL_PRECISION:.0%}: {', '.join(map(str, f['meeting']))}."
        )
    else:
        lines.append("No threshold meets recall >= 98% with precision >= 99%.")
    if f["first_scan"] is not None:
        lines.append(
            f"First scan (query to END, {f['big_images']} images indexed): "
            f"{f['first_scan']:.1f} s, {f['big_images'] / f['first_scan']:.0f} images/s; the "
            f"emulators rendered its {f['rendered_mb']:.0f} MB of post images beforehand "
            f"({f['render_seconds']:.0f} s), as a real network's media servers would have them."
        )
    if f["first_scan"] is not None:
        scan_rate = f["big_images"] / f["first_scan"]
        pipeline_rate = f["images_urls"] / f["images_seconds"]
        lines.append(
            f"The same {f['images_urls']} image URLs through `sleuth images crawl` in the same run "
            f"(same worker settings: 1 CPU process, concurrency 16; {f['images_stored']} stored): "
            f"{f['images_seconds']:.1f} s, {pipeline_rate:.0f} images/s. The scan's rate, listing "
            f"included, is {scan_rate / pipeline_rate:.0%} of it (goal >= 90%)."
        )
    lim = f["limited"]
    lines += [
        "",
        f"First scan again with the emulators' real rate limits on, windows x{lim['window']:g} "
        f"and counts x{lim['quota']:g}, each network on a server of its own: "
        f"{lim['seconds']:.1f} s. The buckets busy for whole windows (after the first with a "
        "request, before the last):",
        "",
        "| network | bucket | limit | windows | of the ceiling (mean) | lowest window "
        "| 429s per window (max) |",
        "|---|---|---|---|---|---|---|",
    ]
    for network, bucket, limit, served, refused in lim["buckets"]:
        mean = sum(served) / (len(served) * limit.requests)
        lines.append(
            f"| {network} | {bucket} | {limit.requests} / {limit.window:g} s | {len(served)} | "
            f"{mean:.0%} | {min(served) / limit.requests:.0%} | {max(refused)} |"
        )
    lines += [
        "",
        "Goal: >= 90% of the ceiling, no 429 beyond the first of a window, for the buckets "
        "that bind. A Mastodon instance's whole-API bucket does not bind a scan: its paged "
        "requests are held by the stricter paging bucket first.",
        "",
    ]
    if f["warm_p50"] is not None:
        lines.append(
            f"Warm query to END: p50 {f['warm_p50'] * 1000:.0f} ms over {f['warm_n']} (each "
            "artwork's picture downloaded once before its query, so that the art sites' "
            "emulator had rendered it)."
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--artists", type=int, default=50)
    parser.add_argument("--artworks", type=int, default=4, help="per artist")
    parser.add_argument("--posts", type=int, default=20, help="about this many per account")
    parser.add_argument("--big", type=int, default=1000, help="posts of the first artist's")
    parser.add_argument("--window-scale", type=float, default=0.01, help="limited scan")
    parser.add_argument("--quota-scale", type=float, default=0.02, help="limited scan")
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args()
    text, _ = measure(args)
    print(text)
    if args.write_results:
        command = "python -m bench.finder " + " ".join(sys.argv[1:])
        body = f"## finder\n\n`{command.strip()}`\n\n{machine(('numpy', 'sqlalchemy'))}\n\n{text}\n"
        write_section(Path(__file__).with_name("RESULTS.md"), "finder", body)


if __name__ == "__main__":
    main()
