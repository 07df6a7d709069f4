"""One run of the seed experiment, wired from a frozen config.

    workload --pages--> memcg --evicted pages--> zcache 3.1 --sizes--> allocator
                                                     |
                                           compressor (size cache)

The program writes size_bytes, one page at a time, in a cgroup limited to limit_bytes.
Reclaim pushes the oldest pages out; each is compressed (once per distinct page) and put
to zcache, which stores clen + zv_hdr bytes through the allocator.  At the end we read
the counters the letter read: curr_pages, zv_page_count, zv_desc_count.

The engine prints nothing; progress(done, total) is called about a hundred times.
"""

from __future__ import annotations

from typing import Callable

from xcfbench.sim.allocators import create
from xcfbench.sim.arch import PAGE_SIZE, get_arch
from xcfbench.sim.compressors import get_compressor
from xcfbench.sim.config import RunConfig
from xcfbench.sim.frontends.zcache import Zcache31
from xcfbench.sim.memcg import MemCg
from xcfbench.sim.records import RunResult
from xcfbench.sim.trace import parse_compact
from xcfbench.sim.workloads import create_workload

HIST_SHIFT = 5   # clen histogram buckets of 32 bytes


def run(config: RunConfig, progress: Callable[[int, int], None] | None = None) -> RunResult:
    arch = get_arch(config.arch)
    alloc = create(config.alloc, arch, store=config.verify, **dict(config.alloc_options))
    workload = create_workload(config.fill, config.seed, config.corpus)
    compressor = get_compressor(config.compressor)
    zcache = Zcache31(alloc, arch, zv_max_zsize=config.zv_max_zsize,
                      zv_max_mean_zsize=config.zv_max_mean_zsize,
                      policy_percent=config.zv_page_count_policy_percent,
                      totalram_pages=config.totalram_bytes // PAGE_SIZE,
                      sentinels=config.zv_hdr_sentinel)
    memcg = MemCg(config.limit_bytes, config.overhead_pages, config.reclaim_batch)
    compact_every = parse_compact(config.compact)

    n_pages = config.size_bytes // PAGE_SIZE
    sizes: dict[object, int] = {}
    blobs: dict[object, bytes] = {}          # compressed bytes, kept only to verify
    key_of_offset: dict[int, object] = {}
    hist = [0] * ((PAGE_SIZE * 2 >> HIST_SHIFT) + 1)
    samples: list[list[int]] = []
    sample_every = max(1, n_pages // config.samples)
    step = max(1, n_pages // 100)
    touch, key_of, page_of, put = memcg.touch, workload.key, workload.page, zcache.put
    pool_pages = alloc.pool_pages
    verify = config.verify
    offset = 0                 # swap offset; 0 is the swap header, so slots start at 1
    peak_pool = pool_pages()
    pages_compacted = 0

    for i in range(n_pages):
        for victim in touch(i):
            key = key_of(victim)
            clen = sizes.get(key)
            if clen is None:
                page = page_of(key)
                if verify:
                    blobs[key] = compressor.compress(page)
                    clen = len(blobs[key])
                else:
                    clen = compressor.size(page)
                sizes[key] = clen
            hist[min(clen >> HIST_SHIFT, len(hist) - 1)] += 1
            offset += 1
            if verify:
                key_of_offset[offset] = key
                put(offset, clen, blobs[key])
            else:
                put(offset, clen)
            p = pool_pages()
            if p > peak_pool:
                peak_pool = p
            if compact_every and offset % compact_every == 0:
                pages_compacted += alloc.compact()
        if (i + 1) % sample_every == 0 or i + 1 == n_pages:
            samples.append([i + 1, zcache.curr_pages, pool_pages()])
        if progress is not None and ((i + 1) % step == 0 or i + 1 == n_pages):
            progress(i + 1, n_pages)

    pool_end = pool_pages()
    stats = alloc.stats()
    metadata = alloc.metadata_bytes()
    after_compact = None
    if compact_every is not None:
        pages_compacted += alloc.compact()
        after_compact = pool_pages()
        stats = alloc.stats()

    verify_errors = None
    if verify:
        verify_errors = _verify(zcache, key_of_offset, page_of)
        alloc.check()

    curr = zcache.curr_pages
    used_pages = pool_end + metadata / PAGE_SIZE
    return RunResult(
        allocator=alloc.name, fill=config.fill, arch=arch.name, compressor=compressor.name,
        pages_written=n_pages, pages_evicted=memcg.evictions,
        resident_pages=memcg.resident_pages, curr_pages=curr,
        succ_puts=zcache.succ_puts, failed_puts=zcache.failed_puts,
        rejects=dict(zcache.rejects), zv_page_count=pool_end,
        zv_desc_count=stats.get("desc_count"), pages_held=alloc.pages_held(),
        peak_pool_pages=peak_pool, metadata_bytes=metadata,
        orig_data_size=curr * PAGE_SIZE, compr_data_size=zcache.compr_data_size,
        zv_hdr_bytes=zcache.hdr_size,
        mean_compressed_pct=_pct(zcache.compr_data_size, curr * PAGE_SIZE),
        effective_compression_pct=_pct(used_pages, curr),
        effective_compression_pages_only_pct=_pct(pool_end, curr),
        stored_per_pool=_ratio(curr, used_pages),
        comp_ratio=_ratio(curr, pool_end),
        pool_pages_after_compact=after_compact,
        pages_compacted=pages_compacted if compact_every is not None else None,
        distinct_pages_compressed=len(sizes),
        verified=verify, verify_errors=verify_errors,
        zv_curr_dist_counts=list(zcache.zv_curr_dist_counts),
        clen_histogram=_trim(hist), samples=samples, allocator_stats=stats,
        provenance={"compressor_version": compressor.version(), **workload.describe()})


def _verify(zcache: Zcache31, key_of_offset: dict[int, object], page_of) -> int:
    """Read every stored page back through the allocator, check its zv_hdr and
    decompress it; count the pages that do not come back as written."""
    import lzo
    errors = 0
    for offset in zcache.handles:
        try:
            data = zcache.get(offset)
            if lzo.decompress(data, False, PAGE_SIZE) != page_of(key_of_offset[offset]):
                errors += 1
        except (AssertionError, lzo.error):
            errors += 1
    return errors


def _pct(part: float, whole: float) -> float | None:
    return round(100.0 * part / whole, 6) if whole else None


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 6) if b else None


def _trim(hist: list[int]) -> list[int]:
    end = len(hist)
    while end and not hist[end - 1]:
        end -= 1
    return hist[:end]
