"""URL lists shaped like image_crawler's urls.txt, and the outcome a correct crawl must report.

The seed's list (650 lines, all picsum.photos) mixes valid sizes, repeated URLs, error pages and
oversized requests; `seed_shaped_urls` rebuilds it against the emulator, exactly by default and
in the same proportions at any length. Because the image host serves one photo per URL and
different URLs never share bytes, `expected_outcomes` knows exactly how many successes,
duplicates and errors a crawl of a list must count.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from urllib.parse import urlsplit

from sleuth.emulator.imagehost import ImageRequest, InvalidImageRequest, parse_image_path

SEED_LINES = 650
SEED_DISTINCT = 500
SEED_REPEATED = 50
SEED_ERRORS = 50
SEED_OVERSIZED = 50
ERROR_PATH = "/error/100"

PHOTO_SIZES: tuple[tuple[int, int, int], ...] = (
    (1024, 768, 40),
    (1024, 683, 10),
    (800, 600, 8),
    (1200, 800, 8),
    (1280, 720, 8),
    (1280, 960, 6),
    (768, 1024, 6),
    (1600, 1200, 5),
    (1600, 900, 4),
    (1920, 1080, 5),
)
"""(width, height, weight) of the photos in long lists: mostly 1024x768, up to 1920x1080."""


def _repeats(rng: random.Random, urls: list[str], extra: int) -> list[str]:
    """`extra` additional lines repeating distinct URLs, a few three times as in the seed (44+3)."""
    thrice = round(extra * 3 / SEED_REPEATED)
    twice = extra - 2 * thrice
    chosen = rng.sample(urls, twice + thrice)
    return chosen[:twice] + chosen[twice:] * 2


def _oversized(count: int) -> list[str]:
    """`/N000000/N00000` for odd N, as in the seed (N = 1..99 for 50 lines)."""
    return [f"/{n}000000/{n}00000" for n in range(1, 2 * count, 2)]


def _seed_paths(rng: random.Random) -> list[str]:
    valid = [f"/{w}/{w + 1}" for w in range(1, SEED_DISTINCT + 1)]
    return (
        valid
        + _repeats(rng, valid, SEED_REPEATED)
        + [ERROR_PATH] * SEED_ERRORS
        + _oversized(SEED_OVERSIZED)
    )


def _photo_paths(rng: random.Random, count: int) -> list[str]:
    share = round(count * SEED_ERRORS / SEED_LINES)
    distinct = count - 3 * share
    sizes = [(w, h) for w, h, _ in PHOTO_SIZES]
    weights = [weight for _, _, weight in PHOTO_SIZES]
    picked = rng.choices(sizes, weights, k=distinct)
    valid = [f"/id/{n}/{w}/{h}" for n, (w, h) in enumerate(picked)]
    return valid + _repeats(rng, valid, share) + [ERROR_PATH] * share + _oversized(share)


def seed_shaped_urls(base_url: str, count: int | None = None, seed: int = 0) -> Iterator[str]:
    """The lines of a urls.txt against the image host at `base_url`, in a seeded shuffled order.

    Without `count`, the seed's exact shape: 650 lines, `/W/(W+1)` for W = 1..500 (47 of them
    repeated: 44 twice, 3 three times), 50 x `/error/100`, 50 oversized `/N000000/N00000`.
    With `count`, that many lines in the same proportions, the valid ones distinct photos of
    realistic sizes (`/id/<n>/<w>/<h>`, see `PHOTO_SIZES`).
    """
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"base_url must be an http(s) URL (http://127.0.0.1:8000): {base_url!r}")
    if count is not None and count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    rng = random.Random(seed)
    paths = _seed_paths(rng) if count is None else _photo_paths(rng, count)
    rng.shuffle(paths)
    root = base_url.rstrip("/")
    for path in paths:
        yield root + path


def expected_outcomes(lines: Iterable[str]) -> dict[str, int]:
    """What a crawl of these image-host URLs must count, each line fetched once in order.

    A line whose photo was already fetched is a `duplicate` (its bytes equal an earlier line's);
    refused lines (errors, oversized, unknown paths) are `error`; the rest are `success`.
    Blank lines are skipped; `/hostile/...` URLs are refused with ValueError, since their outcome
    depends on the crawler's limits rather than on the list.
    """
    counts = {"success": 0, "duplicate": 0, "error": 0}
    seen: set[ImageRequest] = set()
    for line in lines:
        url = line.strip()
        if not url:
            continue
        path = urlsplit(url).path
        if path.startswith("/hostile/"):
            raise ValueError(f"expected_outcomes covers the picsum-shaped paths only, not {url!r}")
        try:
            request = parse_image_path(path)
        except InvalidImageRequest:
            counts["error"] += 1
            continue
        if request in seen:
            counts["duplicate"] += 1
        else:
            seen.add(request)
            counts["success"] += 1
    return counts
