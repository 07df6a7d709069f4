"""The frozen records a simulation returns: one run, one trace replay.

Field names carry their unit (pool_pages, live_bytes, ..._pct) and use the kernel's name
where the kernel has one (curr_pages, zv_page_count, zv_desc_count, pages_compacted).
They sit beside the engine that builds them so that the simulation never imports upward;
results/ wraps them in the versioned document.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ReplayResult:
    trace: str
    allocator: str
    arch: str
    ops: int
    allocs: int
    frees: int
    failed_allocs: int
    frees_of_failed: int
    live_objects: int
    live_bytes: int
    peak_live_objects: int
    peak_live_bytes: int
    pool_pages: int
    peak_pool_pages: int
    pages_held: int
    peak_pages_held: int
    pool_pages_after_compact: int | None
    pages_compacted: int | None
    verified: bool
    verify_errors: int | None
    metadata_bytes: int
    allocator_stats: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        # The allocator's own headline counters (xcfmalloc's desc_count, zsmalloc's
        # huge_class_size) also stand at the top level, under their kernel names.
        for key, value in self.allocator_stats.items():
            if not isinstance(value, (dict, list)):
                d.setdefault(key, value)
        return d


@dataclass(frozen=True)
class RunResult:
    """One run: what the front end and the allocator report.  The headline fields keep
    the seed's zcache names (curr_pages: pages the front end holds)."""

    allocator: str
    fill: str
    arch: str
    compressor: str
    pages_written: int
    pages_evicted: int  # pages reclaim pushed out (offered to frontswap)
    resident_pages: int  # the workload's pages still in the cgroup at the end
    curr_pages: int  # frontswap: pages held in zcache
    succ_puts: int
    failed_puts: int
    rejects: dict[str, int]  # failed puts by reason
    zv_page_count: int  # the allocator's reported pool pages
    zv_desc_count: int | None  # xcfmalloc's block descriptors (zcache sysfs), else None
    pages_held: int  # every page the allocator holds, reserves included
    peak_pool_pages: int
    metadata_bytes: int  # descriptor/handle slab bytes outside the pool pages
    orig_data_size: int  # curr_pages * PAGE_SIZE
    compr_data_size: int  # Σ clen of stored pages (headers excluded)
    zv_hdr_bytes: int  # sizeof(struct zv_hdr) added to every allocation
    mean_compressed_pct: float | None  # Σ clen / orig_data_size, %
    effective_compression_pct: float | None  # (pool + metadata pages) / curr_pages, %
    effective_compression_pages_only_pct: float | None
    stored_per_pool: float | None  # the inverse: curr_pages / (pool + metadata pages)
    comp_ratio: float | None  # zramctl's orig_data_size / pool bytes
    pool_pages_after_compact: int | None
    pages_compacted: int | None
    distinct_pages_compressed: int
    verified: bool
    verify_errors: int | None
    zv_curr_dist_counts: list[int]
    clen_histogram: list[int]  # every offered page's clen, 32-byte buckets
    # [step, curr_pages, pool_pages, live_pages], zswap: + written_back_pages.  step counts
    # pages written, then accesses (--ops); live_pages = ceil(bytes allocated for stored
    # objects / 4096)
    samples: list[list[int]]
    allocator_stats: dict[str, Any] = field(default_factory=dict)
    frontend: str = "zcache"
    # The front end's counters under the kernel's file and field names (frontswap.*,
    # zcache.*, mm_stat.*, ...): the metrics registry names them with dots.
    frontend_stats: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)  # versions, corpus digest
    churn: dict[str, Any] | None = None  # --ops: what the accesses did (absent without)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if d["churn"] is None:
            del d["churn"]
        return d
