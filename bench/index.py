"""Hamming search speed: sleuth's index beside faiss and a numpy scan, on one core.

    taskset -c 1 .venv/bin/python -m bench.index [--sizes 1e6,1e7,1e8] [--kinds uniform,realistic]
        [--radii 6,10] [--queries 300] [--batch 1000] [--methods ours,faiss-flat,faiss-mih,numpy]
        [--write-results]

For each size and kind of codes, every method runs in its own child process (so memory figures
are its own): build time, RSS the build added and its peak, then per radius single-query p50/p99
latency, batch queries/s, and exactness against the numpy scan on a sample of queries.
faiss-cpu is a benchmark-only dependency, not one of sleuth's (`.venv/bin/pip install faiss-cpu`);
it runs with 1 OpenMP thread, and `taskset -c 1` keeps every process on one core.
`--write-results` replaces the `## index` section of bench/RESULTS.md (appended if missing).

Kinds of codes:
- uniform: independent fair bits;
- realistic: like real pHashes, clusters of near-duplicates (Zipf-sized, up to 2000 copies,
  Poisson(1) flipped bits each) around centres whose bits are skewed (8 strongly, 24 mildly,
  one almost always set, as the DC term is).
Queries: half are indexed codes with Poisson(2) bits flipped (a re-encoded copy looking for its
original), half fresh codes from the same distribution (a new image).
Real pHashes (measured in bench/search_quality.py) have exactly 32 ones and, apart from the DC
bit, milder skews than this generator's; stronger skew means fuller buckets, so these figures
err on the slow side.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

METHODS = ("ours", "faiss-flat", "faiss-mih", "numpy")
SCANNERS = ("faiss-flat", "numpy")  # methods whose query time grows with N
BATCH_STEPS = (10, 30, 60, 150, 250)  # batch chunk sizes, then 250 each, until the budget is spent


# ----------------------------------------------------------------------------- code generators


def _skewed_probabilities(rng: np.random.Generator) -> np.ndarray:
    p = np.concatenate(
        [rng.uniform(0.85, 0.97, 8), rng.uniform(0.65, 0.8, 24), rng.uniform(0.45, 0.55, 32)]
    )
    p = np.where(rng.random(64) < 0.5, p, 1 - p)
    p[0] = 0.995
    return p


def _bits(rng: np.random.Generator, n: int, p: np.ndarray) -> np.ndarray:
    out = np.zeros(n, dtype=np.uint64)
    for j in range(64):
        out |= (rng.random(n) < p[j]).astype(np.uint64) << np.uint64(j)
    return out


def _flips(rng: np.random.Generator, n: int, mean: float) -> np.ndarray:
    count = rng.poisson(mean, n)
    mask = np.zeros(n, dtype=np.uint64)
    for j in range(int(count.max()) if n else 0):
        bit = rng.integers(0, 64, n).astype(np.uint64)
        mask |= np.where(j < count, np.uint64(1) << bit, np.uint64(0))
    return mask


def generate(kind: str, n: int, n_queries: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(codes, queries) of a kind, deterministic from the seed."""
    rng = np.random.default_rng(seed)
    if kind == "uniform":
        p = np.full(64, 0.5)
        codes = rng.integers(0, 2**64 - 1, n, dtype=np.uint64, endpoint=True)
    elif kind == "realistic":
        p = _skewed_probabilities(rng)
        sizes = np.minimum(rng.zipf(2.0, n), 2000)
        clusters = int(np.searchsorted(np.cumsum(sizes), n)) + 1
        sizes = sizes[:clusters]
        sizes[-1] -= int(sizes.sum()) - n
        codes = np.repeat(_bits(rng, clusters, p), sizes)
        codes ^= _flips(rng, n, 1.0)
        codes = codes[rng.permutation(n)]
    else:
        raise ValueError(f"unknown kind {kind!r} (uniform, realistic)")
    half = n_queries // 2
    near = codes[rng.integers(0, n, half)] ^ _flips(rng, half, 2.0)
    queries = np.concatenate([near, _bits(rng, n_queries - half, p)])
    return codes, queries[rng.permutation(n_queries)]


# ----------------------------------------------------------------------------- memory


def _status(field: str) -> int:
    """A /proc/self/status figure in bytes (VmRSS: now, VmHWM: peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")


# ----------------------------------------------------------------------------- methods


class Method:
    """One search method: build over codes, answer (ids, distances) per query."""

    name = ""

    def build(self, codes: np.ndarray) -> None:
        raise NotImplementedError

    def one(self, q: np.uint64, radius: int) -> Any:
        """One query's answer in the method's own form (what the timing covers)."""
        raise NotImplementedError

    def pairs(self, answer: Any) -> list[tuple[int, int]]:
        """An answer of `one` as sorted (id, distance) pairs, for the exactness check."""
        ids, dist = answer
        return sorted(zip(np.asarray(ids).tolist(), np.asarray(dist).tolist(), strict=True))

    def batch(self, queries: np.ndarray, radius: int) -> int:
        """Answer all queries; return the number of hits (so nothing is optimised away)."""
        return sum(len(self.one(q, radius)[0]) for q in queries)

    def index_bytes(self) -> int | None:
        return None

    def extra(self, tmp: Path, q: np.uint64) -> dict[str, float]:
        return {}


class Ours(Method):
    name = "ours"

    def build(self, codes: np.ndarray) -> None:
        from sleuth.index import HammingIndex

        self.index = HammingIndex()
        self.index.add(np.arange(len(codes), dtype=np.int64), codes)

    def one(self, q: np.uint64, radius: int) -> list[tuple[int, int]]:
        return self.index.radius_search(int(q), radius)

    def pairs(self, answer: list[tuple[int, int]]) -> list[tuple[int, int]]:
        return sorted(answer)

    def batch(self, queries: np.ndarray, radius: int) -> int:
        return len(self.index.batch_radius_search(queries, radius).ids)

    def index_bytes(self) -> int:
        return self.index.nbytes

    def extra(self, tmp: Path, q: np.uint64) -> dict[str, float]:
        """Save, then a restart: load (mapped, checksums verified) and a first query."""
        from sleuth.index import HammingIndex

        t = time.perf_counter()
        self.index.save(tmp / "saved")
        saved = time.perf_counter() - t
        t = time.perf_counter()
        loaded = HammingIndex.load(tmp / "saved", mmap=True, verify=True)
        load = time.perf_counter() - t
        t = time.perf_counter()
        loaded.radius_search(int(q), 6)
        first = time.perf_counter() - t
        return {"save_s": saved, "load_s": load, "first_query_after_load_s": first}


class FaissFlat(Method):
    name = "faiss-flat"

    def build(self, codes: np.ndarray) -> None:
        import faiss

        faiss.omp_set_num_threads(1)
        self.index = faiss.IndexBinaryFlat(64)
        self.index.add(codes.view(np.uint8).reshape(-1, 8))

    def one(self, q: np.uint64, radius: int) -> tuple[np.ndarray, np.ndarray]:
        # faiss keeps distances < radius: ask for radius + 1 to get <= radius.
        _, dist, ids = self.index.range_search(_as_u8(q), radius + 1)
        return ids, dist

    def batch(self, queries: np.ndarray, radius: int) -> int:
        lims, _, _ = self.index.range_search(queries.view(np.uint8).reshape(-1, 8), radius + 1)
        return int(lims[-1])

    def index_bytes(self) -> int:
        return 8 * self.index.ntotal


class FaissMultiHash(Method):
    """faiss's multi-index hashing: nhash tables of b bits, probing up to nflip flips each;
    exact when radius < nhash * (nflip + 1), so nflip is set per radius."""

    name = "faiss-mih"

    def __init__(self, nhash: int = 4, bits: int = 16) -> None:
        self.nhash, self.bits = nhash, bits

    def build(self, codes: np.ndarray) -> None:
        import faiss

        faiss.omp_set_num_threads(1)
        self.index = faiss.IndexBinaryMultiHash(64, self.nhash, self.bits)
        self.index.add(codes.view(np.uint8).reshape(-1, 8))

    def _exact_for(self, radius: int) -> None:
        self.index.nflip = radius // self.nhash

    def one(self, q: np.uint64, radius: int) -> tuple[np.ndarray, np.ndarray]:
        self._exact_for(radius)
        _, dist, ids = self.index.range_search(_as_u8(q), radius + 1)
        return ids, dist

    def batch(self, queries: np.ndarray, radius: int) -> int:
        self._exact_for(radius)
        lims, _, _ = self.index.range_search(queries.view(np.uint8).reshape(-1, 8), radius + 1)
        return int(lims[-1])


class NumpyScan(Method):
    """The floor of what a scan costs in numpy: xor + bitwise_count into a reused buffer."""

    name = "numpy"

    def build(self, codes: np.ndarray) -> None:
        self.codes = codes.copy()
        self.buffer = np.empty(len(codes), dtype=np.uint8)

    def one(self, q: np.uint64, radius: int) -> tuple[np.ndarray, np.ndarray]:
        np.bitwise_count(np.bitwise_xor(self.codes, q), out=self.buffer)
        ids = np.flatnonzero(self.buffer <= radius)
        return ids, self.buffer[ids]

    def index_bytes(self) -> int:
        return int(self.codes.nbytes)


def _as_u8(q: np.uint64) -> np.ndarray:
    return np.array([q], dtype=np.uint64).view(np.uint8).reshape(1, 8)


def make_method(name: str) -> Method:
    return {"ours": Ours, "faiss-flat": FaissFlat, "faiss-mih": FaissMultiHash, "numpy": NumpyScan}[
        name
    ]()


# ----------------------------------------------------------------------------- child: one method


def run_method(job: dict[str, Any]) -> dict[str, Any]:
    """Build one method over the saved codes and time it (runs in a child process)."""
    folder = Path(job["folder"])
    codes = np.load(folder / "codes.npy")
    queries = np.load(folder / "queries.npy")
    check = np.load(folder / "check.npy")
    reference = json.loads((folder / "reference.json").read_text())
    method = make_method(job["method"])
    gc.collect()
    before = _status("VmRSS")
    _reset_peak()
    t = time.perf_counter()
    method.build(codes)
    build_s = time.perf_counter() - t
    peak = _status("VmHWM") - before
    added = _status("VmRSS") - before
    out: dict[str, Any] = {
        "build_s": build_s,
        "rss_added": added,
        "build_peak": peak,
        "index_bytes": method.index_bytes(),
        "radii": {},
    }
    budget = job["budget_s"]  # per phase: a slow method answers fewer queries, not forever
    for radius in job["radii"]:
        exact, checked = True, 0
        start = time.perf_counter()
        for q, expected in zip(check.tolist(), reference[str(radius)], strict=True):
            got = method.pairs(method.one(np.uint64(q), radius))
            exact &= got == [tuple(pair) for pair in expected]
            checked += 1
            if time.perf_counter() - start > budget:
                break
        times: list[float] = []
        for q in queries[: job["single"]]:
            t = time.perf_counter()
            method.one(q, radius)
            times.append(time.perf_counter() - t)
            if sum(times) > budget:
                break
        answered = hits = 0
        batch_s = 0.0
        lo = 0
        steps = itertools.chain(BATCH_STEPS, itertools.repeat(BATCH_STEPS[-1]))
        while lo < job["batch"]:
            chunk = queries[lo : min(job["batch"], lo + next(steps))]
            lo += len(chunk)
            t = time.perf_counter()
            hits += method.batch(chunk, radius)
            batch_s += time.perf_counter() - t
            answered += len(chunk)
            if batch_s > budget:
                break
        out["radii"][str(radius)] = {
            "exact": exact,
            "checked": checked,
            "single_queries": len(times),
            "p50_ms": 1e3 * float(np.percentile(times, 50)),
            "p99_ms": 1e3 * float(np.percentile(times, 99)),
            "batch_queries": answered,
            "batch_qps": answered / batch_s,
            "hits_per_query": hits / answered,
        }
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        out.update(method.extra(Path(tmp), queries[0]))
    out["rss_after"] = _status("VmRSS")
    return out


# ----------------------------------------------------------------------------- parent


def reference_hits(codes: np.ndarray, check: np.ndarray, radii: list[int]) -> dict[str, Any]:
    """Exact answers for the check queries, by the plainest scan."""
    out: dict[str, Any] = {str(r): [] for r in radii}
    for q in check:
        dist = np.bitwise_count(codes ^ q)
        for r in radii:
            ids = np.flatnonzero(dist <= r)
            out[str(r)].append(sorted(zip(ids.tolist(), dist[ids].tolist(), strict=True)))
    return out


def machine(packages: tuple[str, ...]) -> str:
    """The machine and versions a figure was measured with, in one line."""
    from importlib import metadata

    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    versions = []
    for dist in packages:
        try:
            versions.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{dist} absent")
    return (
        f"{model}, nproc {os.cpu_count()}, {mem_kb / 2**20:.1f} GiB RAM, "
        f"Python {sys.version.split()[0]}; {', '.join(versions)}"
    )


def write_section(path: Path, name: str, body: str) -> None:
    """Replace the `<!-- name:start -->..<!-- name:end -->` block of RESULTS.md, or append it."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{body.strip()}\n{end}\n"
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    if start in text and end in text:
        pre, rest = text.split(start, 1)
        text = pre + block + rest.split(end, 1)[1].lstrip("\n")
    else:
        text = text.rstrip() + "\n\n" + block
    path.write_text(text)


def _gb(n: float | None) -> str:
    return "-" if n is None else f"{n / 2**30:.2f}"


def report(rows: list[dict[str, Any]], radii: list[int]) -> str:
    head = ["N", "kind", "method", "build s", "index GiB", "RSS+ GiB", "build peak GiB"]
    for r in radii:
        head += [f"r{r} p50 ms", f"r{r} p99 ms", f"r{r} batch q/s", f"r{r} hits/q", f"r{r} exact"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        res = row["result"]
        cells = [
            f"{row['n']:.0e}",
            row["kind"],
            row["method"],
            f"{res['build_s']:.1f}",
            _gb(res["index_bytes"]),
            _gb(res["rss_added"]),
            _gb(res["build_peak"]),
        ]
        for r in radii:
            rr = res["radii"][str(r)]
            cells += [
                f"{rr['p50_ms']:.3f}",
                f"{rr['p99_ms']:.3f}",
                f"{rr['batch_qps']:.0f}",
                f"{rr['hits_per_query']:.0f}",
                f"{'yes' if rr['exact'] else 'NO'} ({rr['checked']})",
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def persistence(rows: list[dict[str, Any]]) -> list[str]:
    """Save, mapped load and first query after it: what a restart of sleuth costs."""
    out = []
    for row in rows:
        res = row["result"]
        if "load_s" in res:
            out.append(
                f"- {row['n']:.0e} {row['kind']}: save {res['save_s']:.1f} s, load (mapped, "
                f"CRC-32 checked, files in the page cache) {res['load_s']:.2f} s, first query "
                f"after load {1e3 * res['first_query_after_load_s']:.1f} ms"
            )
    return out


def verdicts(rows: list[dict[str, Any]], radii: list[int]) -> list[str]:
    """The issue's targets, for the rows of sleuth's index that measure them."""
    limits = {6: 1.0, 10: 3.0}
    out = []
    for row in rows:
        if row["method"] != "ours":
            continue
        res, n, kind = row["result"], row["n"], row["kind"]
        if n == 10**7 and kind == "realistic":
            for r in radii:
                if r in limits:
                    p50 = res["radii"][str(r)]["p50_ms"]
                    ok = "met" if p50 <= limits[r] else "MISSED"
                    out.append(
                        f"- 10M realistic, r={r}: p50 {p50:.3f} ms (target ≤ {limits[r]} ms): {ok}"
                    )
        if n == 10**7:
            ok = "met" if res["build_s"] <= 30 else "MISSED"
            out.append(f"- 10M {kind}: build {res['build_s']:.1f} s (target ≤ 30 s): {ok}")
        if n == 10**8:
            rss = res["rss_added"]
            if rss <= 2 * 10**9:
                ok = "met"
            elif rss <= 2 * 2**30:
                ok = f"met for 2 GiB, {100 * (rss / 2e9 - 1):.0f}% over 2 x 10^9 bytes"
            else:
                ok = "MISSED"
            out.append(
                f"- 100M {kind}: RSS held by the index {rss / 2**30:.2f} GiB = {rss / 1e9:.2f} GB "
                f"(arrays {res['index_bytes'] / 1e9:.2f} GB), build peak "
                f"{res['build_peak'] / 2**30:.2f} GiB (target ≤ 2 GB): {ok}"
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1e6,1e7", help="comma-separated code counts")
    parser.add_argument("--kinds", default="uniform,realistic")
    parser.add_argument("--radii", default="6,10")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument(
        "--skip", default="", help="method@size pairs not to run, e.g. faiss-mih@1e8 (say why)"
    )
    parser.add_argument("--queries", type=int, default=300, help="single queries per radius")
    parser.add_argument("--scan-queries", type=int, default=60, help="same, for scanners")
    parser.add_argument("--batch", type=int, default=1000, help="queries in the batch run")
    parser.add_argument("--check", type=int, default=30, help="queries checked for exactness")
    parser.add_argument("--budget", type=float, default=30.0, help="seconds per method phase")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tmp", default=None, help="folder for the shared codes files")
    parser.add_argument("--write-results", action="store_true", help="update bench/RESULTS.md")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_method(json.loads(args.child))))
        return
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    kinds = args.kinds.split(",")
    radii = [int(r) for r in args.radii.split(",")]
    methods = args.methods.split(",")
    skip = {(m, int(float(s))) for m, _, s in (p.partition("@") for p in args.skip.split(",") if p)}
    for name in methods:
        if name not in METHODS:
            parser.error(f"unknown method {name!r} (choose from {', '.join(METHODS)})")
    started = time.strftime("%Y-%m-%d %H:%M")
    load_before = os.getloadavg()[0]
    rows: list[dict[str, Any]] = []
    for n in sizes:
        for kind in kinds:
            with tempfile.TemporaryDirectory(prefix="sleuth-bench-index-", dir=args.tmp) as tmp:
                folder = Path(tmp)
                t = time.perf_counter()
                codes, queries = generate(kind, n, max(args.queries, args.batch), args.seed)
                check = queries[-args.check :]
                np.save(folder / "codes.npy", codes)
                np.save(folder / "queries.npy", queries)
                np.save(folder / "check.npy", check)
                ref = reference_hits(codes, check, radii)
                (folder / "reference.json").write_text(json.dumps(ref))
                del codes
                gc.collect()
                print(
                    f"# {n:.0e} {kind}: codes ready in {time.perf_counter() - t:.0f} s",
                    file=sys.stderr,
                )
                for name in methods:
                    if (name, n) in skip:
                        continue
                    scanner = name in SCANNERS
                    job = {
                        "folder": tmp,
                        "method": name,
                        "radii": radii,
                        "single": args.scan_queries if scanner else args.queries,
                        "batch": min(args.batch, args.scan_queries) if scanner else args.batch,
                        "budget_s": args.budget,
                    }
                    threads = dict.fromkeys(
                        ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"), "1"
                    )
                    proc = subprocess.run(
                        [sys.executable, __file__, "--child", json.dumps(job)],
                        capture_output=True,
                        text=True,
                        env={**os.environ, **threads},
                    )
                    if proc.returncode != 0:
                        print(f"# {name} failed:\n{proc.stderr}", file=sys.stderr)
                        continue
                    result = json.loads(proc.stdout.strip().splitlines()[-1])
                    rows.append({"n": n, "kind": kind, "method": name, "result": result})
                    print(f"# {n:.0e} {kind} {name}: {json.dumps(result)}", file=sys.stderr)
    affinity = sorted(os.sched_getaffinity(0))
    pin = f"taskset -c {affinity[0]} " if len(affinity) == 1 else ""
    run = (
        f"Run {started}, on CPU(s) {affinity}; load average {load_before:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end"
    )
    command = f"{pin}{' '.join(['.venv/bin/python -m bench.index', *sys.argv[1:]])}"
    text = section(rows, radii, skip, run, command)
    print(text)
    if args.write_results:
        write_section(Path(__file__).resolve().parent / "RESULTS.md", "index", text)


def section(
    rows: list[dict[str, Any]], radii: list[int], skip: set[tuple[str, int]], run: str, command: str
) -> str:
    """The `## index` section of RESULTS.md."""
    skipped = ", ".join(f"{m} at {s:.0e}" for m, s in sorted(skip))
    notes = [f"- not run (would take over 10 minutes, judging by the smaller sizes): {skipped}"]
    body = [
        "## index",
        "",
        f"Machine: {machine(('numpy', 'faiss-cpu'))}. {run} (other processes share the "
        "machine: p99 and the scanners suffer most).",
        "",
        f"Command: `{command}`",
        "",
        report(rows, radii),
        "",
        *verdicts(rows, radii),
        *(notes if skip else []),
        "",
        "Restart (sleuth's index):",
        "",
        *persistence(rows),
    ]
    return "\n".join(body)


if __name__ == "__main__":
    main()
