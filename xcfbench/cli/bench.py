"""`make bench`: the speed figures, measured on this machine and printed as text.

  1. median whole-process time of `xcfbench run --alloc xcf --fill text` (target < 2 s)
  2. replay throughput, storage off, per allocator and reference trace (target >= 200k ops/s)
  3. the time of compact() on churn.trace for every allocator that compacts
  4. a 4-run sweep with --jobs 1 and --jobs 2
  5. distinct pages sized per second for each kernel compressor, with its target
  6. the seed run through zram and zswap (lzo-rle, zsmalloc): median of 3, no target
  7. with XCFBENCH_BENCH_CAPTURE=GIB (e.g. 4): the peak RSS of `capture` of a GIB GiB
     process against the bound of 100 MB + 16 B per distinct page (minutes, so opt-in)

Speed is measured here, never asserted by unit tests.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from xcfbench.results.sweep import bench_sweep
from xcfbench.sim.allocators import REGISTRY, create
from xcfbench.sim.arch import I386
from xcfbench.sim.trace import read_trace, replay

# The project's copy of the reference traces; `make bench` runs in a checkout.
REFERENCE_TRACES = Path(__file__).resolve().parents[2] / "tests" / "reference" / "traces"
TRACES = ("seed-zero.trace", "seed-text-like.trace", "uniform.trace", "churn.trace")
RUN_TARGET_S = 2.0
REPLAY_TARGET = 200_000


def bench_run(repeats: int = 5) -> None:
    cmd = [sys.executable, "-m", "xcfbench", "run", "--alloc", "xcf", "--fill", "text", "--quiet"]
    subprocess.run(cmd, check=True, capture_output=True)  # warm the page cache
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    verdict = "ok" if med < RUN_TARGET_S else "SLOWER THAN TARGET"
    print(
        f"run --alloc xcf --fill text: median {med:.3f} s over {repeats} runs"
        f" (min {min(times):.3f}, max {max(times):.3f}); target < {RUN_TARGET_S:.1f} s:"
        f" {verdict} ({med / RUN_TARGET_S:.2f} of target)"
    )


def bench_replay(repeats: int = 3) -> None:
    traces = {name: read_trace(REFERENCE_TRACES / name) for name in TRACES}
    print(
        f"\nreplay throughput, storage off, best of {repeats} (target >= {REPLAY_TARGET:,} ops/s)"
    )
    print(f"{'allocator':<18}" + "".join(f"{n.removesuffix('.trace'):>16}" for n in TRACES))
    slow = []
    for name in REGISTRY:
        cells = []
        for tname, trace in traces.items():
            best = min(_timed(lambda t=trace, n=name: replay(t, n, I386)) for _ in range(repeats))
            rate = len(trace.ops) / best
            if rate < REPLAY_TARGET:
                slow.append(f"{name}/{tname}")
            cells.append(f"{rate:>13,.0f}/s")
        print(f"{name:<18}" + "".join(f"{c:>16}" for c in cells))
    print("all at or above target" if not slow else f"below target: {', '.join(slow)}")


def bench_compact() -> None:
    trace = read_trace(REFERENCE_TRACES / "churn.trace")
    print("\ncompact() on churn.trace, i386")
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


COMPRESSOR_TARGETS = {
    "lzo": 50_000,
    "lzo-rle": 50_000,
    "lz4": 50_000,
    "zstd": 25_000,
    "lz4hc": 6_000,
    "deflate": 4_000,
    "842": None,
}


def bench_compressors(seconds: float = 1.0, repeats: int = 3) -> None:
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


def bench_frontends(repeats: int = 3) -> None:
    """The seed run (512M of text into 256M) through zram and zswap on zsmalloc with
    lzo-rle: median whole-process time; no target yet, shown beside the zcache seed run
    timed the same way."""
    base = [sys.executable, "-m", "xcfbench", "run", "--fill", "text", "--quiet"]
    cases = {
        "zcache --alloc xcf": ["--alloc", "xcf"],
        "zram --alloc zs -c lzo-rle": ["--frontend", "zram", "--alloc", "zs", "-c", "lzo-rle"],
        "zswap --alloc zs -c lzo-rle": ["--frontend", "zswap", "--alloc", "zs", "-c", "lzo-rle"],
    }
    print(f"\nseed run (512M of text into 256M), median of {repeats} whole-process runs:")
    medians = {}
    for name, args in cases.items():
        subprocess.run(base + args, check=True, capture_output=True)  # warm the page cache
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            subprocess.run(base + args, check=True, capture_output=True)
            times.append(time.perf_counter() - t0)
        medians[name] = med = statistics.median(times)
        ref = medians["zcache --alloc xcf"]
        note = (
            f"target < {RUN_TARGET_S:.1f} s (above)"
            if name.startswith("zcache")
            else f"no target; {med / ref:.2f}x the zcache seed run"
        )
        print(f"  {name:<28} {med:.3f} s (min {min(times):.3f}, max {max(times):.3f}); {note}")


CAPTURE_ENV = "XCFBENCH_BENCH_CAPTURE"


def bench_capture(gib: float) -> None:
    """Capture a process of gib GiB (sim/capture.py bench_capture) and print its peak RSS
    against the memory bound."""
    import tempfile

    from xcfbench.sim.capture import bench_capture as measure

    with tempfile.TemporaryDirectory(prefix="xcfbench-bench-") as directory:
        r = measure(gib, directory)
    verdict = "within" if r["within_bound"] else "OVER"
    print(
        f"capture of a {r['gib']:g} GiB process ({r['pages']} distinct pages):"
        f" peak RSS {r['peak_rss_bytes'] / 1e6:.1f} MB, bound {r['bound_bytes'] / 1e6:.1f} MB"
        f" ({verdict}), {r['seconds']} s, image {r['image_bytes'] / 1e6:.1f} MB"
    )


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    print(f"xcfbench bench on {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    bench_run()
    bench_frontends()
    bench_replay()
    bench_compact()
    bench_sweep(size_bytes=512 << 20, limit_bytes=256 << 20)
    bench_compressors()
    gib = os.environ.get(CAPTURE_ENV)
    if gib:
        bench_capture(float(gib))
    else:
        print(f"capture bound: skipped (set {CAPTURE_ENV}=4 to capture a 4 GiB process)")


if __name__ == "__main__":
    main()
