"""The raw per-image kernel of the images app, without queue, database or network:
MD5 of the bytes + decode + exact (R+G+B)/3 gray + lossless gray container + SHA-256 of it +
pHash, in a plain loop (1 process) or a process pool. The pipeline benchmark compares its
throughput with `run_kernel` on the same images.

    .venv/bin/python -m bench.kernel                 # corpus, 1 and 2 processes, stage times
    .venv/bin/python -m bench.kernel --rounds 5 --processes 1 2

Workers get file paths (as the pipeline's CPU pool gets blob paths) and return only small
results; each worker uses one BLAS thread.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from PIL import Image
from threadpoolctl import threadpool_limits

from bench.corpus import build_corpus
from sleuth.imaging.decode import decode_image
from sleuth.imaging.encode import pack_gray
from sleuth.imaging.gray import gray_image
from sleuth.imaging.phash import phash_from_image
from sleuth.imaging.process import md5_hex, process_image

MAX_PIXELS = 64_000_000
Item = Path | str | bytes


def kernel(item: Item) -> tuple[str, str, int]:
    """One image through the whole kernel: (md5, gray digest, pHash)."""
    data = item if isinstance(item, bytes) else Path(item).read_bytes()
    digest = md5_hex(data)
    result = process_image(data, MAX_PIXELS)
    return digest, result.gray_digest, result.phash


def _limit_blas() -> None:
    threadpool_limits(1)


def run_kernel(paths_or_bytes: Sequence[Item], processes: int, rounds: int = 1) -> float:
    """Images per second of `kernel` over the items, `rounds` times, on `processes` processes
    (1: a plain loop in this process). Pool start-up and one warm-up image per worker are not
    timed."""
    items = list(paths_or_bytes) * rounds
    if not items:
        raise ValueError("no images to process")
    if processes < 1:
        raise ValueError("processes must be at least 1")
    if processes == 1:
        with threadpool_limits(1):
            kernel(items[0])
            start = time.perf_counter()
            for item in items:
                kernel(item)
            return len(items) / (time.perf_counter() - start)
    with ProcessPoolExecutor(max_workers=processes, initializer=_limit_blas) as pool:
        list(pool.map(kernel, items[:processes]))
        start = time.perf_counter()
        list(pool.map(kernel, items, chunksize=1))
        return len(items) / (time.perf_counter() - start)


def stage_times(paths: Sequence[Path]) -> dict[str, float]:
    """Mean milliseconds per image of each stage, in one process."""
    totals = dict.fromkeys(("md5", "decode", "gray", "pack", "sha256", "phash"), 0.0)
    with threadpool_limits(1):
        for path in paths:
            data = path.read_bytes()
            t0 = time.perf_counter()
            md5_hex(data)
            t1 = time.perf_counter()
            decoded = decode_image(data, MAX_PIXELS)
            t2 = time.perf_counter()
            gray = gray_image(decoded.image).tobytes()
            t3 = time.perf_counter()
            packed = pack_gray(decoded.width, decoded.height, gray)
            t4 = time.perf_counter()
            hashlib.sha256(packed).hexdigest()
            t5 = time.perf_counter()
            phash_from_image(decoded.image)
            t6 = time.perf_counter()
            steps = (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5)
            for key, took in zip(totals, steps, strict=True):
                totals[key] += took
    return {key: 1000 * value / len(paths) for key, value in totals.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args(argv)
    paths = build_corpus()
    mpx = sum(_pixels(p) for p in paths) / 1e6
    size = sum(p.stat().st_size for p in paths)
    print(f"corpus: {len(paths)} images, {mpx:.1f} Mpx, {size / 1e6:.1f} MB")
    for name, ms in stage_times(paths).items():
        print(f"  {name:7} {ms:7.2f} ms/image")
    for processes in args.processes:
        rate = run_kernel(paths, processes, rounds=args.rounds)
        print(f"kernel, {processes} process(es): {rate:.1f} images/s")


def _pixels(path: Path) -> int:
    with Image.open(path) as img:
        return img.width * img.height


if __name__ == "__main__":
    main()
