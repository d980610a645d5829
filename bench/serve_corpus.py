"""Serve the real-photo corpus over loopback for the image-crawl benchmark, distinct bytes per URL.

    .venv/bin/python -m bench.serve_corpus --count 2000 [--small] [--max-variants 100]

prints `READY <base URL>` once it listens, then serves until its standard input closes (the
benchmark holds that pipe, so the server never outlives it) or it is killed.

URL `/img/<n>.jpg` is photo `n mod P` of the benchmark mix (`photos()`: the corpus's 1024×768
JPEGs and its few 2560×1600 ones), pixel variant `(n div P) mod K`, with a JPEG comment segment
naming `n` inserted after the header. So every URL returns different bytes (an MD5-deduplicating
crawler stores each one), and up to P×K URLs also have different pixels (so grayscale copies and
pHashes are distinct too). Variant 0 is the corpus file itself; variant j > 0 is the same photo
with one 6×6 patch inverted, re-encoded with the original's quantisation tables, subsampling and
progressive flag, so its size and decode cost stay those of the original. Variants are cached
under `bench/.cache/serve-*`, made once by a process pool before the server says READY.

`/stats` answers the request count and the times (`time.time()`) of the first and last image
request, which the benchmark uses to separate start-up from steady throughput; `/stats?reset=1`
also zeroes them between two crawlers.
"""

from __future__ import annotations

import argparse
import io
import math
import re
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import PIL
from flask import Flask, Response, jsonify, request
from PIL import Image, JpegImagePlugin

from bench.corpus import CACHE_ROOT, build_corpus, cover
from sleuth.emulator.server import EmulatorServer

VERSION = "v1"
PHOTO_NAME = re.compile(r"-(1024x768|2560x1600)-q\d+\.jpg$")
SMALL_SIZE = (320, 240)
PATCH = 6


def photos() -> list[Path]:
    """The benchmark mix, in corpus order: every 1024×768 and 2560×1600 JPEG photograph."""
    chosen = [p for p in build_corpus() if PHOTO_NAME.search(p.name)]
    if not chosen:
        raise RuntimeError("the corpus has no 1024x768 or 2560x1600 JPEG photographs")
    return chosen


def variant_dir(small: bool) -> Path:
    tag = "small" if small else "full"
    return CACHE_ROOT / f"serve-{VERSION}-pillow{PIL.__version__}" / tag


def _encode_like(src: Image.Image, pixels: Image.Image) -> bytes:
    """Encode `pixels` as JPEG with `src`'s quantisation, subsampling and progressive mode."""
    buf = io.BytesIO()
    pixels.save(
        buf,
        "JPEG",
        qtables=src.quantization,
        subsampling=JpegImagePlugin.get_sampling(src),
        progressive=bool(src.info.get("progressive", False)),
        optimize=False,
    )
    return buf.getvalue()


def make_variant(photo: Path, index: int, small: bool) -> bytes:
    """Variant `index` of `photo` (see the module docstring); deterministic."""
    if index == 0 and not small:
        return photo.read_bytes()
    with Image.open(photo) as src:
        src.load()
        img = src.convert("RGB")
        if small:
            img = cover(img, SMALL_SIZE)
        if index > 0:
            arr = np.asarray(img).copy()
            h, w = arr.shape[:2]
            x = (index * 7919) % (w - PATCH)
            y = (index * 104729) % (h - PATCH)
            arr[y : y + PATCH, x : x + PATCH] = 255 - arr[y : y + PATCH, x : x + PATCH]
            img = Image.fromarray(arr)
        return _encode_like(src, img)


def _ensure(job: tuple[Path, int, bool, Path]) -> Path:
    photo, index, small, path = job
    if not path.exists():
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(make_variant(photo, index, small))
        tmp.replace(path)
    return path


def variant_paths(count: int, small: bool, max_variants: int) -> list[list[Path]]:
    """Per photo, its K = min(ceil(count / P), max_variants) variant files, made if missing."""
    mix = photos()
    per_photo = max(1, min(math.ceil(count / len(mix)), max_variants))
    folder = variant_dir(small)
    folder.mkdir(parents=True, exist_ok=True)
    jobs = [
        (photo, j, small, folder / f"{photo.stem}-v{j}.jpg")
        for photo in mix
        for j in range(per_photo)
    ]
    missing = [job for job in jobs if not job[3].exists()]
    if missing:
        with ProcessPoolExecutor(2) as pool:
            list(pool.map(_ensure, missing, chunksize=8))
    return [[job[3] for job in jobs[i : i + per_photo]] for i in range(0, len(jobs), per_photo)]


def url_source(n: int, table: list[list[Any]]) -> Any:
    """The entry of `table` (photo × variant) that URL number `n` serves."""
    row = table[n % len(table)]
    return row[(n // len(table)) % len(row)]


def split_header(data: bytes) -> tuple[bytes, bytes]:
    """Split a JPEG after SOI and its APP0 (JFIF) segment, where a comment can go."""
    if data[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG (no SOI marker)")
    cut = 2
    if data[2:4] == b"\xff\xe0":
        cut = 4 + int.from_bytes(data[4:6], "big")
    return data[:cut], data[cut:]


def comment(n: int) -> bytes:
    text = f"sleuth-bench url {n}".encode()
    return b"\xff\xfe" + (len(text) + 2).to_bytes(2, "big") + text


class Stats:
    """Image requests served, and when the first and last one came."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.requests = 0
        self.first: float | None = None
        self.last: float | None = None

    def hit(self) -> None:
        now = time.time()
        with self.lock:
            self.requests += 1
            if self.first is None:
                self.first = now
            self.last = now


def create_app(table: list[list[tuple[bytes, bytes]]]) -> Flask:
    """`/img/<n>.jpg` over `table` (photo × variant of (header, rest) pairs), and `/stats`."""
    app = Flask("sleuth-bench-corpus")
    stats = Stats()

    @app.get("/img/<int:n>.jpg")
    def image(n: int) -> Response:
        head, rest = url_source(n, table)
        note = comment(n)
        stats.hit()
        return Response(
            [head, note, rest],
            headers={
                "Content-Type": "image/jpeg",
                "Content-Length": str(len(head) + len(note) + len(rest)),
            },
        )

    @app.get("/stats")
    def get_stats() -> Response:
        with stats.lock:
            body = {"requests": stats.requests, "first": stats.first, "last": stats.last}
            if request.args.get("reset"):
                stats.reset()
        return jsonify(body)

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000, help="URLs the crawl will fetch")
    parser.add_argument("--small", action="store_true", help=f"serve {SMALL_SIZE} variants")
    parser.add_argument(
        "--max-variants", type=int, default=100, help="pixel variants per photo at most"
    )
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    if args.count < 1 or args.max_variants < 1:
        parser.error("--count and --max-variants must be at least 1")
    paths = variant_paths(args.count, args.small, args.max_variants)
    table = [[split_header(p.read_bytes()) for p in row] for row in paths]
    server = EmulatorServer(create_app(table), port=args.port)
    url = server.start()
    distinct = sum(len(row) for row in table)
    print(f"READY {url} photos={len(table)} distinct_pixels={distinct}", flush=True)
    try:
        sys.stdin.read()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
