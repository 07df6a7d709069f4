"""`make bench`: the speed figures, measured on this machine, printed with their targets
and written to a JSON document (kind "bench") that `xcfbench check` gates on.

  1. start-up: `xcfbench --version` against bare `python -c pass` (target <= 0.06 s above)
  2. the seed run, `xcfbench run --alloc xcf --fill text`, whole process (target <= 0.30 s),
     and its time over `xcfbench --version`'s
  3. replay of a 1 M-op churn trace end to end (parse, replay, JSON out; start-up
     excluded), per allocator (target >= 1 M ops/s), and its rate over a bare Python loop
     that parses the same trace file into a dict
  4. replay throughput, storage off, per allocator and reference trace (>= 200k ops/s)
  5. the time of compact() on churn.trace for every allocator that compacts
  6. a 4-run sweep with --jobs 1 and --jobs 2
  7. distinct pages sized per second for each kernel compressor, with its target
  8. the 64 GiB runs, `run --size 64G --limit 32G --totalram 128G` (zs), on the text fill
     and on the corpus's page image cycled to 64 GiB, and through zram and zswap (lzo-rle):
     wall time (target <= 60 s) and peak RSS (target <= 1 GiB)
  9. the seed run through zram and zswap (lzo-rle, zsmalloc): median of 3, no target
 10. the compiled and the pure paths: the seed run's JSON and every allocator's replay of
     churn.trace must be identical on both (target: identical)
 11. with XCFBENCH_BENCH_CAPTURE=GIB (e.g. 4): the peak RSS of `capture` of a GIB GiB
     process against the bound of 100 MB + 16 B per distinct page (minutes, so opt-in)

Each bench_* function measures one figure (or one table of them), prints it and returns
Figures; write_json() is the one writer.  Every figure is a case of the JSON document with
registered metrics (results/metrics.py: seconds, time_ratio, overhead_s, ops_per_s,
speed_ratio, pages_per_s, peak_rss_bytes), all noisy: `xcfbench check -b BASE.json
bench.json` fails a figure that gets worse by more than 25 % (--fail-on to change it).
Ratios against a yardstick measured in the same run are what survive a change of machine.

    python -m xcfbench.cli.bench [--out FILE] [--quick]

Speed is measured here, never asserted by unit tests.  Whole processes run as a user's
would: without PYTHONDONTWRITEBYTECODE (a user's Python caches its bytecode) and without
XCFBENCH_PURE.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from xcfbench.io import write_atomic
from xcfbench.results.document import document, dumps
from xcfbench.results.sweep import bench_sweep
from xcfbench.sim.allocators import REGISTRY, create
from xcfbench.sim.arch import I386
from xcfbench.sim.trace import read_trace, replay

# The project's copy of the reference traces; `make bench` runs in a checkout.
REFERENCE_TRACES = Path(__file__).resolve().parents[2] / "tests" / "reference" / "traces"
TRACES = ("seed-zero.trace", "seed-text-like.trace", "uniform.trace", "churn.trace")
RUN_TARGET_S = 0.30
STARTUP_TARGET_S = 0.06  # `xcfbench --version` above bare `python -c pass`
REPLAY_TARGET = 200_000  # reference traces, allocator alone
REPLAY_1M_TARGET = 1_000_000  # a 1 M-op trace, end to end
BIG_TARGET_S = 60.0
BIG_TARGET_RSS = 1 << 30
DEFAULT_OUT = "bench-results/bench.json"


def _xcfbench_command() -> list[str]:
    """The `xcfbench` a user types: the console script beside this interpreter, or
    `python -m xcfbench` where there is none (a checkout without an install)."""
    script = Path(sys.executable).with_name("xcfbench")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "xcfbench"]


XCFBENCH = _xcfbench_command()


@dataclass
class Figure:
    """One measured figure: a case of the bench document, its registered metrics, and the
    target it is held to (met None: no target)."""

    case: str
    values: dict[str, float | int]
    target: str = ""
    met: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # informational, not gated

    def to_dict(self) -> dict[str, Any]:
        return {
            "case": self.case,
            **self.values,
            "target": self.target,
            "met": self.met,
            **self.extra,
        }


def verdict(met: bool | None) -> str:
    return "" if met is None else ("ok" if met else "MISSED")


def user_env() -> dict[str, str]:
    """The environment of a timed process: a user's, not a test harness's."""
    env = dict(os.environ)
    for name in ("PYTHONDONTWRITEBYTECODE", "XCFBENCH_PURE"):
        env.pop(name, None)
    return env


def _median_wall(cmd: Sequence[str], repeats: int) -> tuple[float, list[float]]:
    """Median wall time of a whole process, after one untimed run (the page cache, and
    the bytecode cache)."""
    env = user_env()
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env=env)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def bench_startup(repeats: int = 9) -> Figure:
    """`xcfbench --version` against bare `python -c pass`: what importing xcfbench costs."""
    bare, _ = _median_wall([sys.executable, "-c", "pass"], repeats)
    version, _ = _median_wall([*XCFBENCH, "--version"], repeats)
    over = version - bare
    met = over <= STARTUP_TARGET_S
    print(
        f"start-up: xcfbench --version {version:.3f} s, bare python {bare:.3f} s (medians of"
        f" {repeats}): {over:+.3f} s; target <= {STARTUP_TARGET_S:.2f} s above: {verdict(met)}"
    )
    return Figure(
        "startup",
        {"seconds": round(version, 4), "overhead_s": round(over, 4)},
        f"<= {STARTUP_TARGET_S} s above python -c pass",
        met,
        {"python_seconds": round(bare, 4)},
    )


def bench_run(version_s: float, repeats: int = 5) -> Figure:
    """The seed run, whole process, and its time over `xcfbench --version`'s."""
    cmd = [*XCFBENCH, "run", "--alloc", "xcf", "--fill", "text", "--quiet"]
    med, times = _median_wall(cmd, repeats)
    met = med <= RUN_TARGET_S
    ratio = med / version_s if version_s > 0 else float("nan")
    print(
        f"run --alloc xcf --fill text: median {med:.3f} s over {repeats} runs"
        f" (min {min(times):.3f}, max {max(times):.3f}), {ratio:.2f}x xcfbench --version;"
        f" target <= {RUN_TARGET_S:.2f} s: {verdict(met)} ({med / RUN_TARGET_S:.2f} of target)"
    )
    return Figure(
        "seed run",
        {"seconds": round(med, 4), "time_ratio": round(ratio, 4)},
        f"<= {RUN_TARGET_S} s",
        met,
    )


def churn_trace_file(directory: str, ops: int) -> str:
    """A churn trace of ops operations, written as a trace v1 file in directory."""
    from xcfbench.sim.trace import format_trace
    from xcfbench.sim.tracegen import generate

    trace = generate("churn", ops=ops)
    path = os.path.join(directory, f"churn-{ops}.trace")
    with open(path, "w", encoding="ascii") as f:
        f.write(format_trace(trace.ops, trace.comments))
    return path


def bare_loop(path: str) -> int:
    """The yardstick: the least Python that replays a trace file, parsing each line and
    keeping the live objects in a dict.  Returns the operations seen."""
    live: dict[int, int] = {}
    n = 0
    with open(path, "rb") as f:
        for line in f:
            kind = line[:1]
            if kind == b"a":
                _, oid, size = line.split()
                live[int(oid)] = int(size)
            elif kind == b"f":
                live.pop(int(line.split()[1]), None)
            else:
                continue
            n += 1
    return n


def replay_end_to_end(path: str, alloc: str) -> int:
    """What `xcfbench replay --json` does after start-up: stream-parse the trace, replay
    it, build and serialize the JSON document.  Returns the operations replayed."""
    from xcfbench.sim.trace import open_trace
    from xcfbench.sim.trace import replay as do_replay

    with open_trace(path) as trace:
        stream: Any = trace  # replay() streams a TraceStream as it reads a Trace
        result = do_replay(stream, alloc, I386)
        name = trace.name
    out = result.to_dict()
    dumps(document("replay", {"alloc": alloc, "arch": I386.name, "trace": name}, out))
    return int(out["ops"])


def bench_replay_1m(ops: int = 1_000_000, repeats: int = 1) -> list[Figure]:
    """Replay of an ops-operation churn trace, end to end, for every allocator: ops/s
    (target >= 1 M) and the rate over the bare loop's on the same file."""
    figures = []
    with tempfile.TemporaryDirectory(prefix="xcfbench-bench-") as tmp:
        path = churn_trace_file(tmp, ops)
        loop_s = min(_timed(lambda: bare_loop(path)) for _ in range(max(repeats, 3)))
        n = bare_loop(path)
        loop_rate = n / loop_s
        print(
            f"\nreplay of a {n:,}-op churn trace, end to end (parse, replay, JSON out),"
            f" best of {repeats}; bare Python loop {loop_rate:,.0f} ops/s;"
            f" target >= {REPLAY_1M_TARGET:,} ops/s"
        )
        figures.append(
            Figure(f"bare loop {_count(ops)} ops", {"ops_per_s": round(loop_rate)}, "yardstick")
        )
        for name in REGISTRY:
            best = min(_timed(partial(replay_end_to_end, path, name)) for _ in range(repeats))
            rate = n / best
            met = rate >= REPLAY_1M_TARGET
            print(
                f"{name:<18}{rate:>12,.0f} ops/s  {rate / loop_rate:6.3f}x the bare loop"
                f"  {verdict(met)}"
            )
            figures.append(
                Figure(
                    f"replay {name} {_count(ops)} ops",
                    {"ops_per_s": round(rate), "speed_ratio": round(rate / loop_rate, 4)},
                    f">= {REPLAY_1M_TARGET} ops/s",
                    met,
                )
            )
    return figures


def bench_replay(repeats: int = 3) -> list[Figure]:
    traces = {name: read_trace(REFERENCE_TRACES / name) for name in TRACES}
    print(
        f"\nreplay throughput, storage off, best of {repeats} (target >= {REPLAY_TARGET:,} ops/s)"
    )
    print(f"{'allocator':<18}" + "".join(f"{n.removesuffix('.trace'):>16}" for n in TRACES))
    slow = []
    figures = []
    for name in REGISTRY:
        cells = []
        for tname, trace in traces.items():
            best = min(_timed(partial(replay, trace, name, I386)) for _ in range(repeats))
            rate = len(trace.ops) / best
            if rate < REPLAY_TARGET:
                slow.append(f"{name}/{tname}")
            cells.append(f"{rate:>13,.0f}/s")
            figures.append(
                Figure(
                    f"replay {name} {tname.removesuffix('.trace')}",
                    {"ops_per_s": round(rate)},
                    f">= {REPLAY_TARGET} ops/s",
                    rate >= REPLAY_TARGET,
                )
            )
        print(f"{name:<18}" + "".join(f"{c:>16}" for c in cells))
    print("all at or above target" if not slow else f"below target: {', '.join(slow)}")
    return figures


def bench_compact() -> list[Figure]:
    trace = read_trace(REFERENCE_TRACES / "churn.trace")
    print("\ncompact() on churn.trace, i386")
    figures = []
    for name, cls in REGISTRY.items():
        if not cls.supports_compaction or name == "ideal":
            continue
        alloc = create(name, I386)
        handles = {}
        for oid, size in trace.ops:
            if size >= 0:
                h = alloc.malloc(size)
                if h is not None:
                    handles[oid] = h
            elif oid in handles:
                alloc.free(handles.pop(oid))
        before = alloc.pool_pages()
        seconds = _timed(alloc.compact)
        print(f"{name:<18} {before:>6} -> {alloc.pool_pages():>6} pages in {seconds * 1e3:8.1f} ms")
        figures.append(Figure(f"compact {name} churn", {"seconds": round(seconds, 5)}))
    return figures


def bench_sweep_figure() -> Figure:
    """A 4-run sweep with --jobs 1 and --jobs 2 (results/sweep.py measures and prints)."""
    one, two = bench_sweep(size_bytes=512 << 20, limit_bytes=256 << 20)
    return Figure(
        "sweep 4 runs",
        {"seconds": round(two, 4), "speed_ratio": round(one / two, 4)},
        "--jobs 2 faster than --jobs 1",
        two < one,
        {"jobs1_seconds": round(one, 4)},
    )


COMPRESSOR_TARGETS = {
    "lzo": 50_000,
    "lzo-rle": 50_000,
    "lz4": 50_000,
    "zstd": 25_000,
    "lz4hc": 6_000,
    "deflate": 4_000,
    "842": None,
}


def bench_compressors(seconds: float = 1.0, repeats: int = 3) -> list[Figure]:
    """Distinct pages sized per second, one core, on the 1990 reference pages: whole passes
    over the pages for about `seconds` of CPU time, best of `repeats`.  The rate is per
    second of this process's CPU time (one core, whatever else the machine runs); the
    wall-clock rate is printed beside it."""
    import lzma

    from xcfbench.sim.compressors import create_compressor

    raw = lzma.decompress((REFERENCE_TRACES.parent / "compressors" / "pages.bin.xz").read_bytes())
    pages = [raw[i : i + 4096] for i in range(0, len(raw), 4096)]
    print(
        f"\ncompressors: distinct pages sized per second, {len(pages)} reference pages,"
        f" best of {repeats}"
    )
    figures = []
    for name, target in COMPRESSOR_TARGETS.items():
        for call in ("zram", "zswap"):
            size = create_compressor(name, call).size
            best = best_wall = 0.0
            for _ in range(repeats):
                n, c0, w0 = 0, time.process_time(), time.perf_counter()
                while time.process_time() - c0 < seconds:
                    for p in pages:
                        size(p)
                    n += len(pages)
                best = max(best, n / (time.process_time() - c0))
                best_wall = max(best_wall, n / (time.perf_counter() - w0))
            verdict = (
                ""
                if target is None
                else (
                    f"  target >= {target:>6,}: {'ok' if best >= target else 'BELOW TARGET'}"
                    f" ({best / target:.1f}x)"
                )
            )
            print(f"{name:<10}{call:<7}{best:>10,.0f} pages/s (wall {best_wall:>9,.0f}/s){verdict}")
            figures.append(
                Figure(
                    f"compressor {name} {call}",
                    {"pages_per_s": round(best)},
                    "" if target is None else f">= {target} pages/s",
                    None if target is None else best >= target,
                )
            )
    return figures


def bench_frontends(repeats: int = 3) -> list[Figure]:
    """The seed run (512M of text into 256M) through zram and zswap on zsmalloc with
    lzo-rle: median whole-process time; no target, shown beside the zcache seed run
    timed the same way."""
    cases = {
        "zcache xcf": ["--alloc", "xcf"],
        "zram zs lzo-rle": ["--frontend", "zram", "--alloc", "zs", "-c", "lzo-rle"],
        "zswap zs lzo-rle": ["--frontend", "zswap", "--alloc", "zs", "-c", "lzo-rle"],
    }
    print(f"\nseed run (512M of text into 256M), median of {repeats} whole-process runs:")
    figures = []
    ref = None
    for name, args in cases.items():
        med, times = _median_wall([*XCFBENCH, "run", "--fill", "text", "--quiet", *args], repeats)
        ref = ref or med
        print(
            f"  {name:<20} {med:.3f} s (min {min(times):.3f}, max {max(times):.3f});"
            f" {med / ref:.2f}x the zcache seed run"
        )
        figures.append(Figure(f"seed run {name}", {"seconds": round(med, 3)}))
    return figures


CAPTURE_ENV = "XCFBENCH_BENCH_CAPTURE"


def bench_capture(gib: float) -> Figure:
    """Capture a process of gib GiB (sim/capture.py bench_capture) and print its peak RSS
    against the memory bound."""
    import tempfile

    from xcfbench.sim.capture import bench_capture as measure

    with tempfile.TemporaryDirectory(prefix="xcfbench-bench-") as directory:
        r = measure(gib, directory)
    print(
        f"\ncapture of a {r['gib']:g} GiB process ({r['pages']} distinct pages):"
        f" peak RSS {r['peak_rss_bytes'] / 1e6:.1f} MB, bound {r['bound_bytes'] / 1e6:.1f} MB"
        f" ({verdict(r['within_bound'])}), {r['seconds']} s, image {r['image_bytes'] / 1e6:.1f} MB"
    )
    return Figure(
        f"capture {r['gib']:g} GiB",
        {"seconds": r["seconds"], "peak_rss_bytes": r["peak_rss_bytes"]},
        f"<= {r['bound_bytes'] / 1e6:.1f} MB RSS",
        r["within_bound"],
    )


CORPUS_IMAGE = Path(__file__).resolve().parents[2] / "corpora" / "python-strings.xcfimg"


def bench_big(
    fill: str = "text",
    frontend: str = "zcache",
    size: str = "64G",
    limit: str = "32G",
    totalram: str = "128G",
) -> Figure:
    """A 64 GiB run (zs) in a process of its own: wall time and peak RSS."""
    shown = "image" if fill.startswith("image:") else fill
    if frontend != "zcache":
        shown = f"{shown}, {frontend}, lzo-rle"
    cmd = [
        *XCFBENCH,
        "run",
        "--alloc",
        "zs",
        "--fill",
        fill,
        "--frontend",
        frontend,
        *([] if frontend == "zcache" else ["-c", "lzo-rle"]),
        "--size",
        size,
        "--limit",
        limit,
        "--totalram",
        totalram,
        "--quiet",
    ]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=user_env())
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        raise SystemExit(f"bench: {' '.join(cmd[len(XCFBENCH) :])} failed: {err.strip()}")
    rss = usage.ru_maxrss * 1024  # KiB on Linux
    met = seconds <= BIG_TARGET_S and rss <= BIG_TARGET_RSS
    print(
        f"\nrun --size {size} --limit {limit} --totalram {totalram} (zs, {shown}): {seconds:.1f} s,"
        f" peak RSS {rss / (1 << 30):.2f} GiB; target <= {BIG_TARGET_S:.0f} s and"
        f" <= {BIG_TARGET_RSS >> 30} GiB: {verdict(met)}"
    )
    return Figure(
        f"run {size}" if shown == "text" else f"run {size} {shown.replace(', ', ' ')}",
        {"seconds": round(seconds, 2), "peak_rss_bytes": rss},
        f"<= {BIG_TARGET_S:.0f} s and <= {BIG_TARGET_RSS >> 30} GiB RSS",
        met,
    )


def bench_paths() -> list[Figure]:
    """The compiled path against the pure one: identical results, and how much faster."""
    import json

    from xcfbench.sim.config import RunConfig
    from xcfbench.sim.engine import run

    def both(fn: Callable[[], Any]) -> tuple[bool, float, float]:
        os.environ.pop("XCFBENCH_PURE", None)
        t0 = time.perf_counter()
        compiled = json.dumps(fn(), sort_keys=True)
        t1 = time.perf_counter()
        os.environ["XCFBENCH_PURE"] = "1"
        try:
            pure = json.dumps(fn(), sort_keys=True)
        finally:
            del os.environ["XCFBENCH_PURE"]
        return compiled == pure, t1 - t0, time.perf_counter() - t1

    print("\ncompiled path against pure Python: identical results? (and the speed-up)")
    figures = []
    trace = read_trace(REFERENCE_TRACES / "churn.trace")
    cases: list[tuple[str, Callable[[], Any]]] = [("seed run", lambda: run(RunConfig()).to_dict())]
    cases += [
        (f"replay {name} churn", partial(lambda n: replay(trace, n, I386).to_dict(), name))
        for name in REGISTRY
    ]
    for case, fn in cases:
        same, fast, slow = both(fn)
        print(f"  {case:<28} {'identical' if same else 'DIFFERENT'}  {slow / fast:6.1f}x faster")
        figures.append(
            Figure(
                f"paths {case}",
                {"speed_ratio": round(slow / fast, 3)},
                "identical on both paths",
                same,
            )
        )
    return figures


def _count(n: int) -> str:
    """1000000 -> '1M', 100000 -> '100k': how a trace's length names its cases."""
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


# -- the JSON document ------------------------------------------------------------------------


def bench_config(quick: bool) -> dict[str, Any]:
    """What the figures depend on besides the code: the machine and the interpreter."""
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "quick": quick,
    }


def bench_document(figures: Sequence[Figure], config: dict[str, Any]) -> dict[str, Any]:
    """The versioned result document (kind "bench") that `xcfbench check` reads."""
    cases = [f.case for f in figures]
    if len(set(cases)) != len(cases):
        raise ValueError(
            f"two figures share a case: {sorted(c for c in cases if cases.count(c) > 1)}"
        )
    return document("bench", config, [f.to_dict() for f in figures])


def write_json(figures: Sequence[Figure], path: str, config: dict[str, Any]) -> None:
    """The one writer: the bench document at path (atomically; its folder made)."""
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    write_atomic(path, dumps(bench_document(figures, config)))


def summary(figures: Sequence[Figure]) -> str:
    held = [f for f in figures if f.met is not None]
    missed = [f.case for f in held if not f.met]
    line = f"{len(figures)} figures, {len(held) - len(missed)} of {len(held)} targets met"
    if len(missed) > 6:
        missed = missed[:6] + [f"{len(missed) - 6} more"]
    return line + (f"; missed: {', '.join(missed)}" if missed else "")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m xcfbench.cli.bench", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--out", default=DEFAULT_OUT, help=f"the JSON document (default {DEFAULT_OUT})"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a 100k-op replay trace and no 64 GiB run: minutes become seconds",
    )
    args = parser.parse_args(argv)
    print(f"xcfbench bench on {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    figures: list[Figure] = []
    startup = bench_startup()
    figures.append(startup)
    figures.append(bench_run(float(startup.values["seconds"])))
    figures += bench_replay_1m(100_000 if args.quick else 1_000_000)
    figures += bench_replay()
    figures += bench_compact()
    figures.append(bench_sweep_figure())
    figures += bench_compressors(seconds=0.3 if args.quick else 1.0)
    if not args.quick:
        figures += bench_frontends()
        figures.append(bench_big())
        figures.append(bench_big(f"image:{CORPUS_IMAGE}"))
        figures += [bench_big(frontend=fe) for fe in ("zram", "zswap")]
    figures += bench_paths()
    gib = os.environ.get(CAPTURE_ENV)
    if gib:
        figures.append(bench_capture(float(gib)))
    else:
        print(f"\ncapture bound: skipped (set {CAPTURE_ENV}=4 to capture a 4 GiB process)")
    write_json(figures, args.out, bench_config(args.quick))
    print(
        f"\n{summary(figures)}\nwritten to {args.out}"
        f" (gate: xcfbench check -b BASE.json {args.out})"
    )


if __name__ == "__main__":
    main()
