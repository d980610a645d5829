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

import numpy as np
from PIL import Image
from threadpoolctl import threadpool_limits

from bench.corpus import build_corpus
from sleuth.imaging.decode import decode_image
from sleuth.imaging.encode import pack_gray
from sleuth.imaging.gray import gray_image
from sleuth.imaging.hashes import md5_hex
from sleuth.imaging.phash import luma, phash_of_luma
from sleuth.imaging.process import GRAY_IS_LUMA, process_image

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


def stage_times(paths: Sequence[Path], rounds: int = 1) -> dict[str, float]:
    """Mean CPU milliseconds per image of each step of `process_image` (the same calls in the
    same order), in one process, `rounds` passes over the images."""
    names = ("md5", "decode", "gray", "gray array", "pack", "sha256", "luma", "phash")
    totals = dict.fromkeys(names, 0.0)
    clock = time.process_time
    with threadpool_limits(1):
        for path in list(paths) * rounds:
            data = path.read_bytes()
            t0 = clock()
            md5_hex(data)
            t1 = clock()
            decoded = decode_image(data, MAX_PIXELS)
            t2 = clock()
            gray = gray_image(decoded.image)
            t3 = clock()
            gray_pixels = np.asarray(gray)
            t4 = clock()
            packed = pack_gray(decoded.width, decoded.height, gray_pixels)
            t5 = clock()
            hashlib.sha256(packed).hexdigest()
            t6 = clock()
            shared = decoded.mode in GRAY_IS_LUMA
            lum = gray if shared else luma(decoded.image)
            t7 = clock()
            phash_of_luma(lum, gray_pixels if shared else None)
            t8 = clock()
            marks = (t0, t1, t2, t3, t4, t5, t6, t7, t8)
            for key, start, end in zip(names, marks[:-1], marks[1:], strict=True):
                totals[key] += end - start
    count = len(paths) * rounds
    return {key: 1000 * value / count for key, value in totals.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args(argv)
    paths = build_corpus()
    mpx = sum(_pixels(p) for p in paths) / 1e6
    size = sum(p.stat().st_size for p in paths)
    print(f"corpus: {len(paths)} images, {mpx:.1f} Mpx, {size / 1e6:.1f} MB")
    stages = stage_times(paths, args.rounds)
    print(f"CPU per step (ms/image, mean of {args.rounds} rounds, 1 process):")
    for name, ms in stages.items():
        print(f"  {name:10} {ms:6.2f}  {100 * ms / sum(stages.values()):4.1f}%")
    print(f"  {'total':10} {sum(stages.values()):6.2f}")
    for processes in args.processes:
        rate = run_kernel(paths, processes, rounds=args.rounds)
        print(f"kernel, {processes} process(es): {rate:.1f} images/s")


def _pixels(path: Path) -> int:
    with Image.open(path) as img:
        return img.width * img.height


if __name__ == "__main__":
    main()
