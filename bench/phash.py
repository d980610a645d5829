"""pHash speed and bit-identity: sleuth's `phash_bytes` / `phash_from_image` against
`imagehash.phash` on every corpus image, one BLAS thread (as in a worker process).

    .venv/bin/python -m bench.phash            # per-image table, totals, identity check
    .venv/bin/python -m bench.phash --draft 150  # why JPEG draft decoding is not used

Times are the best of `--repeat` runs per image (the machine is shared; the best run is the
least disturbed one). Exit status 1 if any hash differs from imagehash's.
"""

from __future__ import annotations

import argparse
import io
import random
import sys
import time
from collections.abc import Callable

import imagehash
import numpy as np
from PIL import Image
from threadpoolctl import threadpool_limits

from bench.corpus import PHOTOS, _source_path, cover, load_corpus
from sleuth.imaging.hashes import phash_hex
from sleuth.imaging.phash import hash_from_pixels, phash_bytes, phash_from_image

MAX_PIXELS = 64_000_000


def best_ms(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best * 1000


def loaded(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def compare(repeat: int) -> bool:
    print(
        f"{'image':38} {'Mpx':>5} | {'from bytes: ih ms':>17} {'ours':>6} {'x':>5} |"
        f" {'decoded: ih ms':>14} {'ours':>6} {'x':>5} | same"
    )
    totals = np.zeros(4)
    all_same = True
    for name, data in load_corpus():
        img = loaded(data)
        theirs = str(imagehash.phash(Image.open(io.BytesIO(data))))
        same = phash_hex(phash_bytes(data, MAX_PIXELS)) == theirs
        same = same and phash_hex(phash_from_image(img)) == theirs
        all_same &= same
        t = np.array(
            [
                best_ms(lambda d=data: imagehash.phash(Image.open(io.BytesIO(d))), repeat),
                best_ms(lambda d=data: phash_bytes(d, MAX_PIXELS), repeat),
                best_ms(lambda i=img: imagehash.phash(i), repeat),
                best_ms(lambda i=img: phash_from_image(i), repeat),
            ]
        )
        totals += t
        print(
            f"{name:38} {img.width * img.height / 1e6:5.2f} | {t[0]:17.2f} {t[1]:6.2f}"
            f" {t[0] / t[1]:5.2f} | {t[2]:14.2f} {t[3]:6.2f} {t[2] / t[3]:5.2f} | {same}"
        )
    print(
        f"{'TOTAL':38} {'':5} | {totals[0]:17.1f} {totals[1]:6.1f} {totals[0] / totals[1]:5.2f}"
        f" | {totals[2]:14.1f} {totals[3]:6.1f} {totals[2] / totals[3]:5.2f} |"
        f" {'all identical' if all_same else 'DIFFERENCES'}"
    )
    return all_same


def draft_variants(n: int, seed: int = 1) -> list[tuple[str, bytes]]:
    """Seeded JPEGs unlike the corpus: random sizes 300..4000 px, crops, mosaics of the bundled
    photos at native resolution, added noise, q70..98, every chroma subsampling."""
    rng = random.Random(seed)
    sources = []
    for src in PHOTOS:
        with Image.open(_source_path(src)) as im:
            sources.append(im.convert("RGB"))
    out = []
    for i in range(n):
        kind = rng.choice(["crop", "mosaic", "noise"])
        w = rng.choice([300, 480, 640, 800, 1024, 1280, 1600, 2048, 2560, 3000, 4000])
        h = int(w * rng.choice([0.5, 0.625, 0.75, 1.0, 1.33]))
        if kind == "crop":
            img = cover(rng.choice(sources), (w, h))
        else:
            img = Image.new("RGB", (w, h))
            for y in range(0, h, 300):
                for x in range(0, w, 400):
                    img.paste(rng.choice(sources), (x, y))
            if kind == "noise":
                noise = np.random.default_rng(i).normal(0, rng.choice([3, 8, 20]), (h, w, 3))
                img = Image.fromarray(np.clip(np.asarray(img) + noise, 0, 255).astype(np.uint8))
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=rng.choice([70, 80, 90, 95, 98]), subsampling=i % 3)
        out.append((f"{i:03d}-{kind}-{w}x{h}", buf.getvalue()))
    return out


def draft_hash(data: bytes, min_side: int) -> tuple[int, float]:
    """pHash after a DCT-scaled decode whose result is still >= min_side (and its ms)."""
    start = time.perf_counter()
    img = Image.open(io.BytesIO(data))
    _, box = img.draft("RGB", (min_side, min_side))
    small = img.convert("L").resize((32, 32), Image.Resampling.LANCZOS, box=box)
    value = hash_from_pixels(np.asarray(small))
    return value, (time.perf_counter() - start) * 1000


def draft_study(n: int) -> None:
    jpegs = [(k, d) for k, d in load_corpus() if d[:3] == b"\xff\xd8\xff"] + draft_variants(n)
    print(f"JPEG draft decoding vs full decode, {len(jpegs)} JPEGs (corpus + {n} variants)")
    exact, exact_ms = {}, 0.0
    for name, data in jpegs:
        start = time.perf_counter()
        exact[name] = phash_bytes(data, MAX_PIXELS)
        exact_ms += (time.perf_counter() - start) * 1000
    print(f"  full decode (exact):  mean {exact_ms / len(jpegs):.2f} ms/image")
    for min_side in (64, 128, 256):
        differ, distances, reduced, ms = 0, [], 0, 0.0
        for name, data in jpegs:
            value, took = draft_hash(data, min_side)
            ms += took
            with Image.open(io.BytesIO(data)) as probe:
                reduced += min(probe.size) // min_side >= 2
            d = bin(value ^ exact[name]).count("1")
            if d:
                differ += 1
                distances.append(d)
        print(
            f"  draft to >= {min_side:3} px: {reduced:3} images reduced, {differ:3} hashes differ"
            f" ({100 * differ / len(jpegs):.1f}%), max distance {max(distances, default=0)},"
            f" mean {ms / len(jpegs):.2f} ms/image"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--draft", type=int, default=0, metavar="N", help="draft study on N")
    args = parser.parse_args(argv)
    with threadpool_limits(1):
        if args.draft:
            draft_study(args.draft)
            return 0
        return 0 if compare(args.repeat) else 1


if __name__ == "__main__":
    sys.exit(main())
