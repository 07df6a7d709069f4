"""What each reported figure is: its unit, which way is better, one line of help.

Tables, comparisons and the regression gate all read this registry, so a new figure is
declared once.  "exact" marks integer page counts of a deterministic simulation: for
those any increase is a regression by default.  "tolerance_pct" marks a noisy figure
(a time, a rate, a peak RSS: what `make bench` measures): it never repeats exactly, so
its default gate is a move the wrong way by more than that many percent of the baseline,
never "any increase".

A front end's own counters are named with dots, file then field, as the kernel names them
(frontswap.flushes, mm_stat.mem_used_total): they live in a result's frontend_stats, so no
two front ends' figures collide with each other or with the top-level ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str  # "pages", "bytes", "%", "x", "count"
    better: str  # "lower", "higher" or "none" (informational)
    help: str
    exact: bool = False
    pool: bool = False  # pool pages counted in bytes (× 4096): gated like a page count
    tolerance_pct: float | None = None  # noisy: the default gate's tolerance, in %

    @property
    def noisy(self) -> bool:
        return self.tolerance_pct is not None


def _m(name, unit, better, help, exact=False, pool=False):
    return Metric(name, unit, better, help, exact, pool)


# How far a timing figure may move the wrong way before the default gate fails it.
NOISY_TOLERANCE_PCT = 25.0


def _noisy(name: str, unit: str, better: str, help: str) -> Metric:
    return Metric(name, unit, better, help, tolerance_pct=NOISY_TOLERANCE_PCT)


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        _m("curr_pages", "pages", "none", "pages held in frontswap (stored by zcache)", True),
        _m(
            "zv_page_count",
            "pages",
            "lower",
            "pool pages the allocator reports (xcfmalloc: reserve pages excluded)",
            True,
        ),
        _m(
            "zv_desc_count",
            "count",
            "lower",
            "xcfmalloc block descriptors (24 B each on i386)",
            True,
        ),
        _m(
            "pages_held",
            "pages",
            "lower",
            "every page the allocator holds, reserves included",
            True,
        ),
        _m("peak_pool_pages", "pages", "lower", "largest pool size seen during the run", True),
        _m(
            "metadata_bytes",
            "bytes",
            "lower",
            "descriptor/handle slab bytes outside the pool",
            True,
        ),
        _m(
            "effective_compression_pct",
            "%",
            "lower",
            "(pool pages + metadata bytes/4096) / stored pages: the letter's figure",
        ),
        _m(
            "effective_compression_pages_only_pct",
            "%",
            "lower",
            "pool pages / stored pages, metadata left out",
        ),
        _m(
            "stored_per_pool", "x", "higher", "stored pages per page of pool and metadata (density)"
        ),
        _m("comp_ratio", "x", "higher", "orig_data_size / pool bytes (zramctl's COMP-RATIO)"),
        _m("mean_compressed_pct", "%", "none", "mean compressed size of stored pages / 4096"),
        _m(
            "failed_puts",
            "count",
            "lower",
            "puts zcache refused (pages went to the swap device)",
            True,
        ),
        _m("succ_puts", "count", "none", "puts zcache stored", True),
        _m("compr_data_size", "bytes", "none", "sum of compressed lengths of stored pages", True),
        _m("pool_pages_after_compact", "pages", "lower", "pool pages after compaction", True),
        _m("pages_compacted", "pages", "higher", "pages compaction gave back", True),
        # replay
        _m("pool_pages", "pages", "lower", "pool pages the allocator reports at the end", True),
        _m("failed_allocs", "count", "lower", "allocations the allocator refused", True),
        _m("frees_of_failed", "count", "none", "frees of refused allocations (no-ops)", True),
        _m("live_objects", "count", "none", "objects allocated and not freed", True),
        _m("live_bytes", "bytes", "none", "sum of the sizes of live objects", True),
        _m("desc_count", "count", "lower", "xcfmalloc descriptors, reserve excluded", True),
        # zcache 3.1's own counters (frontend_stats); the rest stand at the top level already
        _m("frontswap.flushes", "count", "none", "stored pages whose swap slot was freed", True),
        _m("zcache.compress_poor", "count", "lower", "puts refused: clen over zv_max_zsize", True),
        _m(
            "zcache.mean_compress_poor",
            "count",
            "lower",
            "puts refused: pool mean over zv_max_mean_zsize",
            True,
        ),
        # zram (Linux 6.12 sysfs files)
        _m("mm_stat.orig_data_size", "bytes", "none", "zram: pages stored × 4096", True),
        _m("mm_stat.compr_data_size", "bytes", "lower", "zram: sum of stored object sizes", True),
        _m(
            "mm_stat.mem_used_total",
            "bytes",
            "lower",
            "zram: zsmalloc pool pages × 4096",
            True,
            pool=True,
        ),
        _m("mm_stat.mem_limit", "bytes", "none", "zram: mem_limit (0 none)", True),
        _m(
            "mm_stat.mem_used_max",
            "bytes",
            "lower",
            "zram: high-water mark of mem_used_total",
            True,
            pool=True,
        ),
        _m("mm_stat.same_pages", "count", "none", "zram: same-filled pages (no pool memory)", True),
        _m("mm_stat.pages_compacted", "pages", "higher", "zram: pages freed by compaction", True),
        _m("mm_stat.huge_pages", "count", "lower", "zram: pages stored whole", True),
        _m("mm_stat.huge_pages_since", "count", "lower", "zram: huge stores since reset", True),
        _m(
            "io_stat.failed_writes",
            "count",
            "lower",
            "zram: writes that failed (mem_limit, ...)",
            True,
        ),
        _m(
            "io_stat.notify_free",
            "count",
            "none",
            "zram: slot-free notifications and discards",
            True,
        ),
        _m("bd_stat.bd_count", "pages", "none", "zram: backing-device blocks in use", True),
        _m("bd_stat.bd_writes", "pages", "none", "zram: pages written back", True),
        _m("bd_stat.bd_reads", "pages", "none", "zram: pages read from the backing device", True),
        # zswap (debugfs and memory.stat)
        _m("zswap.pool_total_size", "bytes", "lower", "zswap: pool pages × 4096", True, pool=True),
        _m("zswap.stored_pages", "count", "none", "zswap: entries stored", True),
        _m(
            "zswap.pool_limit_hit",
            "count",
            "lower",
            "zswap: stores with the pool at its limit",
            True,
        ),
        _m("zswap.written_back_pages", "count", "lower", "zswap: entries written to swap", True),
        _m("zswap.reject_compress_poor", "count", "lower", "zswap: output over a page", True),
        _m("zswap.reject_compress_fail", "count", "lower", "zswap: compressor failures", True),
        _m("zswap.reject_alloc_fail", "count", "lower", "zswap: allocator refusals", True),
        _m(
            "memory.stat.zswap",
            "bytes",
            "lower",
            "zswap: compressed bytes charged to the cgroup",
            True,
        ),
        _m("memory.stat.zswpwb", "count", "lower", "zswap: write-backs from the cgroup", True),
        # make bench (kind "bench"): timings, noisy; ratios are what a machine change keeps
        _noisy("seconds", "s", "lower", "bench: wall-clock time, median of the runs"),
        _noisy(
            "time_ratio",
            "x",
            "lower",
            "bench: time over its yardstick's (the seed run over `xcfbench --version`)",
        ),
        _noisy(
            "overhead_s",
            "s",
            "lower",
            "bench: seconds above its yardstick (`xcfbench --version` over bare Python)",
        ),
        _noisy("ops_per_s", "ops/s", "higher", "bench: operations per second, end to end"),
        _noisy(
            "speed_ratio",
            "x",
            "higher",
            "bench: rate over its yardstick's (replay over a bare Python loop on the trace)",
        ),
        _noisy("pages_per_s", "pages/s", "higher", "bench: distinct pages sized per CPU second"),
        _noisy("peak_rss_bytes", "bytes", "lower", "bench: peak resident set of the process"),
    )
}


def metric_value(result: dict[str, Any], name: str) -> Any:
    """A metric's value in a result dict: top-level, or a dotted front-end counter."""
    if "." not in name:
        return result.get(name)
    node: Any = result.get("frontend_stats")
    if isinstance(node, dict) and name.startswith("memory.stat."):
        node = node.get("memory.stat")
        name = name[len("memory.stat.") :]
    for part in name.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node
