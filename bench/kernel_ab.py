"""Before/after CPU time of the per-image kernel: this tree's `sleuth` against another one,
interleaved in the same run, so a shared and busy machine slows both sides alike.

    git archive main src | tar -x -C /tmp/before      # the "before" code, e.g. main
    .venv/bin/python -m bench.kernel_ab --before /tmp/before/src --pairs 7

Each measurement is a fresh process (`--child`) that, after one untimed pass, runs MD5 +
`process_image` over the corpus `--rounds` times on one BLAS thread and prints its CPU time
per image (`time.process_time`: user + system, which a busy machine disturbs less than wall
time), its page faults per image, its resident memory at the end and a digest of every
result; pairs alternate their order
(ABBA) and the medians are compared. The two sides must give identical results, or the
comparison is refused.

`--after-env NAME=VALUE` sets environment variables on the "after" side only: with
`--before src` (this tree) it compares process settings instead of code, e.g. glibc's
`MALLOC_TRIM_THRESHOLD_`.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from threadpoolctl import threadpool_limits

from bench.corpus import build_corpus
from sleuth.imaging.hashes import md5_hex
from sleuth.imaging.process import process_image

MAX_PIXELS = 64_000_000
ROOT = Path(__file__).resolve().parent.parent


def measure(rounds: int) -> tuple[tuple[float, float, float], str]:
    """((CPU ms per image, minor page faults per image, resident MB at the end), digest of
    every result) of MD5 + `process_image` over the corpus."""
    datas = [path.read_bytes() for path in build_corpus()]
    results = hashlib.sha256()
    with threadpool_limits(1):
        for data in datas:  # untimed: per-process checks, caches, the heap's steady size
            process_image(data, MAX_PIXELS)
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        start = time.process_time()
        for _ in range(rounds):
            for data in datas:
                digest = md5_hex(data)
                result = process_image(data, MAX_PIXELS)
                results.update(f"{digest} {result.gray_digest} {result.phash}\n".encode())
        took = time.process_time() - start
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    count = rounds * len(datas)
    resident = int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGESIZE")
    return (1000 * took / count, faults / count, resident / 2**20), results.hexdigest()


def _child(
    src: Path, rounds: int, extra_env: dict[str, str]
) -> tuple[tuple[float, float, float], str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(src), str(ROOT)]), **extra_env)
    command = [sys.executable, "-m", "bench.kernel_ab", "--child", "--rounds", str(rounds)]
    out = subprocess.run(command, env=env, cwd=ROOT, check=True, capture_output=True, text=True)
    ms, faults, resident, digest = out.stdout.split()
    return (float(ms), float(faults), float(resident)), digest


def _assignment(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--before", type=Path, help="a src/ folder holding the other sleuth")
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--after-env", type=_assignment, action="append", default=[])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        (ms, faults, resident), digest = measure(args.rounds)
        print(f"{ms:.4f} {faults:.1f} {resident:.1f} {digest}")
        return 0
    if args.before is None or not (args.before / "sleuth" / "imaging").is_dir():
        parser.error("--before must name a src/ folder that contains sleuth/imaging")
    build_corpus()
    sides = {"before": args.before.resolve(), "after": ROOT / "src"}
    envs: dict[str, dict[str, str]] = {"before": {}, "after": dict(args.after_env)}
    times: dict[str, list[float]] = {name: [] for name in sides}
    faults: dict[str, list[float]] = {name: [] for name in sides}
    resident: dict[str, list[float]] = {name: [] for name in sides}
    digests: dict[str, set[str]] = {name: set() for name in sides}
    for pair in range(args.pairs):
        order = list(sides) if pair % 2 == 0 else list(sides)[::-1]
        for name in order:
            (ms, fault_count, mb), digest = _child(sides[name], args.rounds, envs[name])
            times[name].append(ms)
            faults[name].append(fault_count)
            resident[name].append(mb)
            digests[name].add(digest)
        print(f"pair {pair + 1}: " + ", ".join(f"{n} {times[n][-1]:.2f}" for n in sides))
    if len(digests["before"] | digests["after"]) != 1:
        print(f"results differ: {digests}", file=sys.stderr)
        return 1
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, values in times.items():
        print(
            f"{name:6} CPU ms/image: median {medians[name]:.2f}, "
            f"min {min(values):.2f}, max {max(values):.2f}; "
            f"page faults/image: median {statistics.median(faults[name]):.0f}; "
            f"RSS at the end: median {statistics.median(resident[name]):.0f} MB"
        )
    print(
        f"after / before: {medians['after'] / medians['before']:.3f} (identical results: "
        f"MD5, gray digest and pHash of every image)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
