"""Image crawl throughput: `sleuth images crawl` vs img2dataset vs the raw per-image kernel.

    .venv/bin/python -m bench.images [--count 2000] [--i2d-default] [--write-results]
    .venv/bin/python -m bench.images --count 100000 --small --rss-only --write-results

One run, one URL list, one loopback server (`bench/serve_corpus.py`, a separate process on the
same cores): real photographs from the corpus (1024×768 and a few 2560×1600 JPEGs), every URL
distinct bytes. Measured side by side:

- `sleuth images crawl` as a subprocess (fresh data folder, `SLEUTH_NET_ALLOW_PRIVATE=1`);
- img2dataset 1.47.0's full default path (decode, resize to 256 "border", JPEG q95, sha256,
  `files` output) from its own virtualenv `bench/.venvs/img2dataset`, 2 processes × 32 threads,
  and with `--i2d-default` also its defaults (1 process × 256 threads);
- the raw kernel (`bench/kernel.py`: decode + MD5 + gray + lossless encode + pHash in a plain
  loop, no I/O) on the bytes the server sends for the first URLs, 1 and 2 processes;
- pHash time against `imagehash.phash` (`bench/phash.py`).

Throughput is lines done / seconds, both from launch to exit ("wall") and from the server's first
image request to exit ("steady", start-up left out). Memory of a crawler's whole process tree is
sampled from /proc every `--sample` seconds (sum of RSS, sum of PSS, which counts pages shared
between forked processes once); the largest single process's peak comes from `wait4`'s
`ru_maxrss`. `--write-results` replaces this run's block of the images section of
`bench/RESULTS.md`, leaving everything else in the file as it is.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this folder would come first on the import path and its `queue.py` would
# shadow the standard library's; import the bench modules from the repository root instead.
_HERE = Path(__file__).resolve().parent
_ROOT = _HERE.parent
sys.path[:] = [str(_ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import resource  # noqa: E402
import shlex  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import sqlite3  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from importlib import metadata  # noqa: E402

from bench.serve_corpus import comment, split_header, url_source, variant_paths  # noqa: E402

VENV_BIN = Path(sys.executable).parent
I2D_VENV = _HERE / ".venvs" / "img2dataset"
RESULTS = _HERE / "RESULTS.md"
SECTION = ("<!-- images:start -->", "<!-- images:end -->")
PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")
MB = 1024 * 1024
PARTS = {"sleuth", "i2d", "kernel", "phash"}
SUMMARY = re.compile(
    r"(?P<done>\d+) of (?P<total>\d+|\?) lines in \S+: (?P<ok>\d+) stored, "
    r"(?P<dup>\d+) duplicates, (?P<err>\d+) errors"
)


# ---- measuring a process tree -------------------------------------------------------------


def _children_map() -> dict[int, list[int]]:
    """Parent pid → child pids, for every process now in /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def _tree(pid: int) -> list[int]:
    children = _children_map()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, ()))
    return out


def _sample(pid: int) -> tuple[int, int, float] | None:
    """Resident and proportional set size in bytes and CPU seconds (user + system) of one
    process, None once it has gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
        fields = stat[stat.rindex(b")") + 2 :].split()
        cpu = (int(fields[11]) + int(fields[12])) / TICKS
        with open(f"/proc/{pid}/statm", "rb") as fh:
            rss = int(fh.read().split()[1]) * PAGE
        with open(f"/proc/{pid}/smaps_rollup", "rb") as fh:
            for line in fh:
                if line.startswith(b"Pss:"):
                    return rss, int(line.split()[1]) * 1024, cpu
    except (OSError, ValueError, IndexError):
        return None
    return rss, 0, cpu


def _command(pid: int) -> str:
    """A short label for a process: its command line without interpreter or paths."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            args = fh.read().decode(errors="replace").split("\0")
    except OSError:
        return "?"
    words = [Path(a).name if a.startswith("/") else a for a in args if a]
    if words and words[0].startswith("python"):
        words = words[1:]
    return " ".join(words)[:48]


@dataclass
class Peak:
    """Highest memory seen for one process tree."""

    tree_rss: int = 0
    tree_pss: int = 0
    processes: int = 0
    largest_maxrss: int = 0  # wait4's ru_maxrss: the largest single process, whole life
    samples: int = 0
    timeline: list[tuple[float, int, int]] = field(default_factory=list)  # (t, pss, processes)
    cpu: dict[int, float] = field(default_factory=dict)  # pid → CPU seconds when last seen
    names: dict[int, str] = field(default_factory=dict)  # pid → its command line, shortened


class TreeMonitor(threading.Thread):
    """Samples the memory of a process and all its descendants until stopped."""

    def __init__(self, pid: int, interval: float) -> None:
        super().__init__(name="tree-monitor", daemon=True)
        self.pid, self.interval = pid, interval
        self.peak = Peak()
        self._done = threading.Event()
        self._t0 = time.monotonic()

    def run(self) -> None:
        while not self._done.is_set():
            rss = pss = n = 0
            peak = self.peak
            for p in _tree(self.pid):
                sample = _sample(p)
                if sample is not None:
                    rss, pss, n = rss + sample[0], pss + sample[1], n + 1
                    peak.cpu[p] = sample[2]
                    if p not in peak.names:
                        peak.names[p] = _command(p)
            peak.tree_rss, peak.tree_pss = max(peak.tree_rss, rss), max(peak.tree_pss, pss)
            peak.processes = max(peak.processes, n)
            peak.samples += 1
            peak.timeline.append((time.monotonic() - self._t0, pss, n))
            self._done.wait(self.interval)

    def stop(self) -> Peak:
        self._done.set()
        self.join()
        return self.peak


def run_measured(
    cmd: list[str],
    *,
    env: dict[str, str],
    cwd: Path,
    log: Path,
    interval: float,
    time_limit: float | None = None,
) -> tuple[int, float, float, Peak]:
    """Run `cmd` to its end (or SIGINT it after `time_limit` seconds) with its output in
    `log`; returns (exit code, wall seconds, CPU seconds of the whole tree, peak memory).

    The CPU figure is the larger of `wait4`'s (which counts only descendants that were
    reaped all the way up) and the sum over every process seen of its last sampled CPU time
    (which misses at most one interval of each)."""
    with open(log, "wb") as out:
        t0 = time.time()
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        monitor = TreeMonitor(proc.pid, interval)
        monitor.start()
        timer = None
        if time_limit is not None:
            timer = threading.Timer(time_limit, proc.send_signal, (signal.SIGINT,))
            timer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.time() - t0
        if timer is not None:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        peak = monitor.stop()
    peak.largest_maxrss = usage.ru_maxrss * 1024
    cpu = max(usage.ru_utime + usage.ru_stime, sum(peak.cpu.values()))
    return proc.returncode, wall, cpu, peak


# ---- the server -------------------------------------------------------------------------


class CorpusServer:
    """`bench/serve_corpus.py` in its own process; it ends when this pipe to it closes."""

    def __init__(self, count: int, small: bool, max_variants: int) -> None:
        cmd = [sys.executable, "-m", "bench.serve_corpus", "--count", str(count)]
        cmd += ["--max-variants", str(max_variants)] + (["--small"] if small else [])
        self.proc = subprocess.Popen(
            cmd, cwd=_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("READY "):
            self.close()
            raise RuntimeError(f"the corpus server did not start: {line!r}")
        self.url = line.split()[1]
        self.info = " ".join(line.split()[2:])

    def stats(self, reset: bool = False) -> dict:
        with urllib.request.urlopen(f"{self.url}/stats{'?reset=1' if reset else ''}") as r:
            return json.load(r)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# ---- the contenders --------------------------------------------------------------------


@dataclass
class Result:
    name: str
    command: str
    urls: int
    done: int  # lines with an outcome (sleuth) / samples handled (img2dataset)
    stored: int
    errors: int
    wall: float
    steady: float | None  # seconds from the first image request to exit
    requests: int
    peak: Peak | None
    cpu: float = 0.0  # CPU seconds of the whole process tree
    note: str = ""
    load: float = 0.0  # 1-minute load average just before the launch (others share the cores)

    @property
    def rate_wall(self) -> float:
        return self.stored / self.wall if self.wall else 0.0

    @property
    def rate_steady(self) -> float | None:
        return self.stored / self.steady if self.steady else None

    @property
    def cpu_ms(self) -> float | None:
        """CPU milliseconds per stored image, start-up included: robust to a busy machine."""
        return 1000 * self.cpu / self.stored if self.stored else None


def _steady(server_stats: dict, t_exit: float) -> float | None:
    first = server_stats.get("first")
    return t_exit - first if first else None


def run_sleuth(
    server: CorpusServer,
    urls: Path,
    work: Path,
    count: int,
    interval: float,
    workers: int | None,
    py_spy: Path | None,
    time_limit: float | None,
    extra_env: dict[str, str],
) -> Result:
    data = work / "sleuth-data"
    env = {**os.environ, "SLEUTH_DATA_DIR": str(data), "SLEUTH_NET_ALLOW_PRIVATE": "1"}
    env.update(extra_env)
    env.pop("SLEUTH_CONFIG", None)
    cmd = [str(VENV_BIN / "sleuth"), "images", "crawl", str(urls)]
    if workers is not None:
        cmd += ["--workers", str(workers)]
    if py_spy is not None:
        cmd = [str(VENV_BIN / "py-spy"), "record", "--subprocesses", "--format", "raw",
               "--rate", "50", "-o", str(py_spy), "--", *cmd]  # fmt: skip
    settings = ["SLEUTH_DATA_DIR=<fresh temp dir>", "SLEUTH_NET_ALLOW_PRIVATE=1"]
    settings += [f"{k}={v}" for k, v in extra_env.items()]
    shown = " ".join([*settings, shlex.join(cmd)])
    server.stats(reset=True)
    log = work / "sleuth.log"
    t0 = time.time()
    code, wall, cpu, peak = run_measured(
        cmd, env=env, cwd=work, log=log, interval=interval, time_limit=time_limit
    )
    stats = server.stats()
    text = log.read_text(errors="replace")
    matches = list(SUMMARY.finditer(text))
    m = matches[-1] if matches else None
    stopped = time_limit is not None and code == 1 and "Not finished" in text
    if (code != 0 and not stopped) or m is None:
        tail = "\n".join(text.strip().splitlines()[-15:])
        return Result("sleuth images crawl", shown, count, 0, 0, 0, wall, None,
                      stats["requests"], peak, cpu, f"FAILED (exit {code}): {tail}")  # fmt: skip
    note = ""
    db = data / "sleuth.db"
    if db.exists():
        with sqlite3.connect(db) as conn:
            images, grays = conn.execute(
                "select count(*), count(distinct gray_key) from images"
            ).fetchone()
        note = f"{images} image rows, {grays} distinct gray copies"
    if stopped:
        note += f"; stopped by SIGINT after {time_limit:.0f} s as asked (--time-limit)"
    return Result(
        "sleuth images crawl",
        shown,
        count,
        int(m["done"]),
        int(m["ok"]) + int(m["dup"]),
        int(m["err"]),
        wall,
        _steady(stats, t0 + wall),
        stats["requests"],
        peak,
        cpu,
        note,
    )


def run_img2dataset(
    server: CorpusServer,
    urls: Path,
    work: Path,
    count: int,
    interval: float,
    processes: int,
    threads: int,
    shard: int,
) -> Result:
    exe = I2D_VENV / "bin" / "img2dataset"
    name = f"img2dataset {processes}p×{threads}t"
    if not exe.exists():
        raise RuntimeError(
            f"{exe} not found: python3 -m venv {I2D_VENV} && {I2D_VENV}/bin/pip install img2dataset"
        )
    out = work / f"i2d-{processes}x{threads}"
    cmd = [str(exe), f"--url_list={urls}", "--input_format=txt", f"--output_folder={out}",
           "--output_format=files", f"--processes_count={processes}",
           f"--thread_count={threads}", f"--number_sample_per_shard={shard}",
           "--enable_wandb=False"]  # fmt: skip
    server.stats(reset=True)
    log = work / f"{out.name}.log"
    t0 = time.time()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    code, wall, cpu, peak = run_measured(cmd, env=env, cwd=work, log=log, interval=interval)
    stats = server.stats()
    done = stored = errors = 0
    for f in sorted(out.glob("*_stats.json")):
        s = json.loads(f.read_text())
        done += s["count"]
        stored += s["successes"]
        errors += s["failed_to_download"] + s["failed_to_resize"]
    note = "" if code == 0 else f"FAILED (exit {code}): {log.read_text()[-1500:]}"
    return Result(name, shlex.join(cmd), count, done, stored, errors, wall,
                  _steady(stats, t0 + wall), stats["requests"], peak, cpu, note)  # fmt: skip


def served_bytes(count: int, small: bool, max_variants: int) -> list[bytes]:
    """Exactly what the server sends for URLs 0..count-1."""
    table = [[split_header(p.read_bytes()) for p in row]
             for row in variant_paths(count, small, max_variants)]  # fmt: skip
    out = []
    for n in range(count):
        head, rest = url_source(n, table)
        out.append(head + comment(n) + rest)
    return out


@dataclass
class KernelRun:
    processes: int
    rate: float  # images/s, pool start-up excluded (`bench.kernel.run_kernel`)
    cpu_ms: float  # CPU ms per image; with a pool, its start-up and warm-up are included
    load: float


def run_kernel_once(images: list[bytes], processes: int) -> KernelRun:
    from bench.kernel import run_kernel

    who = resource.RUSAGE_SELF if processes == 1 else resource.RUSAGE_CHILDREN
    load = os.getloadavg()[0]
    before = resource.getrusage(who)
    rate = run_kernel(images, processes)
    after = resource.getrusage(who)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return KernelRun(processes, rate, 1000 * cpu / len(images), load)


def run_phash() -> list[str]:
    """The output of `bench/phash.py` (per-image table, totals, identity check)."""
    cmd = [sys.executable, "-m", "bench.phash"]
    proc = subprocess.run(cmd, cwd=_ROOT, capture_output=True, text=True, timeout=900)
    out = [f"$ {shlex.join(cmd[1:])}", *proc.stdout.rstrip().splitlines()]
    if proc.returncode != 0:
        out.append(f"exit {proc.returncode}: {proc.stderr[-800:]}")
    return out


# ---- reporting --------------------------------------------------------------------------


def machine() -> str:
    model = "unknown CPU"
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as fh:
        mem_kb = int(fh.readline().split()[1])

    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "absent"

    return (
        f"{model}, {os.cpu_count()} CPUs (nproc), {mem_kb / MB:.1f} GiB RAM, "
        f"Linux {platform.release()}, Python {platform.python_version()}; "
        f"Pillow {version('pillow')}, numpy {version('numpy')}, imagehash {version('imagehash')}"
    )


def _mb(n: int) -> str:
    return f"{n / MB:.0f}"


def best(results: list[Result]) -> dict[str, Result]:
    """Per contender, its fastest completed run (wall rate): the least disturbed one."""
    out: dict[str, Result] = {}
    for r in results:
        if r.stored and (r.name not in out or r.rate_wall > out[r.name].rate_wall):
            out[r.name] = r
    return out


def best_kernel(kernel: list[KernelRun]) -> dict[int, KernelRun]:
    out: dict[int, KernelRun] = {}
    for k in kernel:
        if k.processes not in out or k.rate > out[k.processes].rate:
            out[k.processes] = k
    return out


def table(results: list[Result], kernel: list[KernelRun]) -> list[str]:
    lines = [
        "| contender | stored / URLs | errors | wall s | img/s wall | img/s steady "
        "| CPU ms/img | peak tree PSS MB | peak tree RSS MB | largest process MB | load before |",
        "|" + "---|" * 11,
    ]
    for r in results:
        peak = r.peak or Peak()
        steady = f"{r.rate_steady:.1f}" if r.rate_steady else "—"
        cpu = f"{r.cpu_ms:.0f}" if r.cpu_ms else "—"
        lines.append(
            f"| {r.name} | {r.stored} / {r.urls} | {r.errors} | {r.wall:.1f} | "
            f"{r.rate_wall:.1f} | {steady} | {cpu} | {_mb(peak.tree_pss)} | "
            f"{_mb(peak.tree_rss)} | {_mb(peak.largest_maxrss)} | {r.load:.2f} |"
        )
    for k in kernel:
        name = f"raw kernel, {k.processes} process{'es' if k.processes > 1 else ''}"
        lines.append(f"| {name} | — | — | — | {k.rate:.1f} | {k.rate:.1f} | {k.cpu_ms:.0f} "
                     f"| — | — | — | {k.load:.2f} |")  # fmt: skip
    return lines


def verdicts(results: list[Result], kernel: list[KernelRun]) -> list[str]:
    """The targets, on the best run of each contender."""
    runs = best(results)
    sleuth = runs.get("sleuth images crawl")
    if sleuth is None:
        return ["- sleuth did not complete a run: no verdict."]
    out = []
    s_wall, s_steady = sleuth.rate_wall, sleuth.rate_steady or sleuth.rate_wall
    for r in runs.values():
        if r.name.startswith("img2dataset"):
            r_steady = r.rate_steady or r.rate_wall
            out.append(
                f"- vs {r.name} (best runs): sleuth {s_wall:.1f} / {r.rate_wall:.1f} img/s wall "
                f"= {s_wall / r.rate_wall:.0%}, steady {s_steady:.1f} / {r_steady:.1f} = "
                f"{s_steady / r_steady:.0%}; CPU per image {sleuth.cpu_ms or 0:.0f} / "
                f"{r.cpu_ms or 0:.0f} ms. Target: ≥ 100%."
            )
    kernels = best_kernel(kernel)
    if 2 in kernels:
        k2 = kernels[2]
        out.append(
            f"- vs the raw kernel on 2 processes ({k2.rate:.1f} img/s): sleuth wall "
            f"{s_wall / k2.rate:.0%}, steady {s_steady / k2.rate:.0%}. Target: ≥ 80%."
        )
    if 1 in kernels and sleuth.cpu_ms:
        k1 = kernels[1]
        out.append(
            f"- CPU per image: raw kernel {k1.cpu_ms:.0f} ms (1 process), sleuth's whole tree "
            f"{sleuth.cpu_ms:.0f} ms: the kernel is {k1.cpu_ms / sleuth.cpu_ms:.0%} of what "
            f"sleuth spends, so on 2 otherwise idle cores sleuth could reach at most "
            f"~{2000 / sleuth.cpu_ms:.0f} img/s (the server's own CPU not counted)."
        )
    return out


def replace_block(text: str, key: str, body: str) -> str:
    """Put `body` in block `key` of the images section, creating either if missing."""
    start, end = f"<!-- images:{key}:start -->", f"<!-- images:{key}:end -->"
    block = f"{start}\n{body.strip()}\n{end}"
    if SECTION[0] not in text:
        text = text.rstrip() + ("\n\n" if text.strip() else "")
        text += f"{SECTION[0]}\n## images\n\n{SECTION[1]}\n"
    if start in text:
        pre, rest = text.split(start, 1)
        return pre + block + rest.split(end, 1)[1]
    pre, rest = text.split(SECTION[1], 1)
    return f"{pre.rstrip()}\n\n{block}\n{SECTION[1]}{rest}"


def memory_timeline(r: Result) -> str:
    tl = r.peak.timeline if r.peak else []
    if not tl:
        return f"{r.name}: no memory samples"
    marks = [tl[int(i * (len(tl) - 1) / 10)] for i in range(11)]
    return f"{r.name} tree PSS over time: " + ", ".join(
        f"{s:.0f}s {_mb(p)}MB/{n}p" for s, p, n in marks
    )


def cpu_split(r: Result) -> str:
    """CPU seconds of each process of the tree that used any, largest first."""
    peak = r.peak or Peak()
    used = sorted(((c, p) for p, c in peak.cpu.items() if c >= 0.05), reverse=True)
    return f"{r.name} CPU by process: " + "; ".join(
        f"{peak.names.get(p, '?')} {c:.1f} s" for c, p in used
    )


# ---- main -------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000, help="URLs in the list")
    parser.add_argument("--small", action="store_true", help="320×240 variants (fast RSS runs)")
    parser.add_argument("--max-variants", type=int, default=100, help="pixel variants per photo")
    parser.add_argument(
        "--parts", default="sleuth,i2d,kernel,phash", help="what to run, comma-separated"
    )
    parser.add_argument("--rss-only", action="store_true", help="only sleuth, for its memory")
    parser.add_argument("--repeat", type=int, default=1, help="rounds, contenders in turn")
    parser.add_argument("--workers", type=int, default=None, help="sleuth --workers")
    parser.add_argument("--i2d-default", action="store_true", help="also img2dataset 1p×256t")
    parser.add_argument("--kernel-images", type=int, default=520, help="images for the kernel")
    parser.add_argument("--sample", type=float, default=0.5, help="memory sampling interval, s")
    parser.add_argument(
        "--time-limit", type=float, default=None, help="SIGINT sleuth after this many seconds"
    )
    parser.add_argument(
        "--sleuth-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for sleuth (repeatable), e.g. SLEUTH_WORKER_CONCURRENCY=16",
    )
    parser.add_argument("--py-spy", type=Path, default=None, help="profile sleuth to this file")
    parser.add_argument("--dir", type=Path, default=None, help="work folder (default: temp)")
    parser.add_argument("--write-results", action="store_true", help="update bench/RESULTS.md")
    args = parser.parse_args()
    if args.count < 1 or args.repeat < 1:
        parser.error("--count and --repeat must be at least 1")
    parts = {"sleuth"} if args.rss_only else set(args.parts.split(","))
    if parts - PARTS:
        parser.error(f"unknown --parts {sorted(parts - PARTS)}; known: {sorted(PARTS)}")
    if any("=" not in e for e in args.sleuth_env):
        parser.error("--sleuth-env takes NAME=VALUE")
    sleuth_env = dict(e.split("=", 1) for e in args.sleuth_env)

    info = machine()
    print(info, flush=True)
    argv = shlex.join([".venv/bin/python", "-m", "bench.images", *sys.argv[1:]])
    contenders: list[tuple[int, int] | None] = []
    if "sleuth" in parts:
        contenders.append(None)
    if "i2d" in parts:
        contenders += [(2, 32), (1, 256)] if args.i2d_default else [(2, 32)]
    results: list[Result] = []
    kernel: list[KernelRun] = []
    with tempfile.TemporaryDirectory(prefix="sleuth-bench-images-", dir=args.dir) as tmp:
        t = time.monotonic()
        server = CorpusServer(args.count, args.small, args.max_variants)
        print(f"server {server.url} ({server.info}) ready in {time.monotonic() - t:.1f} s")
        try:
            urls = Path(tmp) / "urls.txt"
            urls.write_text("".join(f"{server.url}/img/{n}.jpg\n" for n in range(args.count)))
            shard = max(1, min(10000, -(-args.count // 8)))
            for round_no in range(args.repeat):
                for shape in contenders:
                    work = Path(tmp) / f"round{round_no}-{'sleuth' if shape is None else 'i2d'}"
                    work.mkdir()
                    load = os.getloadavg()[0]
                    print(
                        f"round {round_no + 1}: {shape or 'sleuth'} (load {load:.2f})", flush=True
                    )
                    if shape is None:
                        r = run_sleuth(server, urls, work, args.count, args.sample, args.workers,
                                       args.py_spy, args.time_limit, sleuth_env)  # fmt: skip
                    else:
                        r = run_img2dataset(server, urls, work, args.count, args.sample, *shape,
                                            shard)  # fmt: skip
                    r.load = load
                    results.append(r)
                    print(f"  {r.stored}/{r.urls} in {r.wall:.1f} s = {r.rate_wall:.1f} img/s, "
                          f"{r.cpu_ms or 0:.0f} CPU ms/img, server saw {r.requests} requests "
                          f"{r.note}", flush=True)  # fmt: skip
                    shutil.rmtree(work)
        finally:
            server.close()
    if "kernel" in parts:
        n = min(args.count, args.kernel_images)
        images = served_bytes(n, args.small, args.max_variants)
        for _ in range(args.repeat):
            for processes in (1, 2):
                print(f"raw kernel, {processes} process(es), bytes of URLs 0..{n - 1}", flush=True)
                kernel.append(run_kernel_once(images, processes))
    phash = run_phash() if "phash" in parts else []

    lines = table(results, kernel)
    summary = verdicts(results, kernel)
    timelines = [memory_timeline(r) for r in results] + [cpu_split(r) for r in results]
    print("\n".join(["", *phash, "", *timelines, "", *lines, "", *summary]))

    if args.write_results:
        key = "rss" if args.rss_only else ("small" if args.small else "main")
        title = "Memory over a long list" if args.rss_only else "Throughput"
        body = [
            f"### {title} ({args.count} URLs{', 320×240 variants' if args.small else ''})",
            "",
            f"Machine: {info}. Run {time.strftime('%Y-%m-%d %H:%M')}.",
            "",
            f"Command: `{argv}`, which ran:",
            "",
            *dict.fromkeys(f"- `{r.command}`" for r in results),
            "",
            *lines,
            "",
            *summary,
            *[f"- {r.name}: {r.note}" for r in results if r.note],
            "",
            "Memory of each run over time (tree PSS / processes), and its CPU by process:",
            "",
            *[f"- {t}" for t in timelines],
        ]
        if phash:
            body += ["", "pHash against imagehash (`bench/phash.py`):", "", "```", *phash, "```"]
        old = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
        RESULTS.write_text(replace_block(old, key, "\n".join(body)))
        print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
