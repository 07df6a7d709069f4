"""One run, wired from a frozen config.

    workload --pages--> memcg --evicted pages--> front end --sizes--> allocator
                                                     |
                                           compressor (page cache)

The program writes size_bytes, one page at a time, in a cgroup limited to limit_bytes.
Reclaim pushes the oldest pages out; each is handed by key to the front end (zcache 3.1
for the seed), which asks the page cache for its compressed length (computed once per
distinct page) and stores what its kernel would through the allocator.  At the end we read
the counters the letter read: curr_pages, zv_page_count, zv_desc_count, and the front
end's own (frontend_stats).

The engine prints nothing; progress(done, total) is called about a hundred times.
"""

from __future__ import annotations

import random
from array import array
from collections.abc import Callable, Iterator
from typing import Any, TextIO

from xcfbench.errors import InputError
from xcfbench.sim.allocators import create, twins
from xcfbench.sim.allocators.base import CountingAllocator
from xcfbench.sim.arch import PAGE_SIZE, get_arch
from xcfbench.sim.churn import access_sampler
from xcfbench.sim.compressors import create_compressor
from xcfbench.sim.config import RunConfig
from xcfbench.sim.frontends import compressor_call, create_frontend
from xcfbench.sim.frontends.zcache import Zcache31
from xcfbench.sim.memcg import MemCg
from xcfbench.sim.pages import PageCache
from xcfbench.sim.pagetrace import PageOps
from xcfbench.sim.records import RunResult
from xcfbench.sim.trace import parse_compact
from xcfbench.sim.workloads import create_workload

HIST_SHIFT = 5  # clen histogram buckets of 32 bytes


def frontend_options(config: RunConfig) -> dict[str, Any]:
    """The front end's options: zcache's knobs are the config's own fields (the seed's
    flags); every front end's other options come from frontend_options."""
    options: dict[str, Any] = {}
    if config.frontend == "zcache":
        options = {
            "zv_max_zsize": config.zv_max_zsize,
            "zv_max_mean_zsize": config.zv_max_mean_zsize,
            "policy_percent": config.zv_page_count_policy_percent,
            "sentinels": config.zv_hdr_sentinel,
        }
    options.update(config.frontend_options)
    return options


def run(
    config: RunConfig,
    progress: Callable[[int, int], None] | None = None,
    trace_out: TextIO | None = None,
) -> RunResult:
    """One run; with trace_out, the page trace of every front-end operation is written
    to it (page numbers are workload indexes: pages_file() gives their bytes)."""
    arch = get_arch(config.arch)
    alloc = create(config.alloc, arch, store=config.verify, **dict(config.alloc_options))
    workload = create_workload(config.fill, config.seed, config.corpus, config.shuffle)
    compressor = create_compressor(
        config.compressor,
        call=compressor_call(config.frontend, config.compressor),
        **dict(config.compressor_options),
    )
    pages = PageCache(
        workload.page,
        compressor,
        keep_compressed=config.verify,
        known=workload.known_sizes(compressor, config.verify),
    )
    frontend = create_frontend(
        config.frontend,
        alloc,
        arch,
        pages,
        totalram_pages=config.totalram_bytes // PAGE_SIZE,
        **frontend_options(config),
    )
    memcg = MemCg(config.limit_bytes, config.overhead_pages, config.reclaim_batch)
    compact_every = parse_compact(config.compact)
    ops = PageOps(frontend, trace_out)

    n_pages = config.size_bytes // PAGE_SIZE
    n_ops = config.ops
    steps = n_pages + n_ops
    hist = [0] * ((PAGE_SIZE * 2 >> HIST_SHIFT) + 1)
    samples: list[list[int]] = []
    sample_every = max(1, steps // config.samples)
    step = max(1, steps // 100)
    touch, key_of, clen_of, write = memcg.touch, workload.key, pages.clen, ops.write
    pool_pages = alloc.pool_pages
    last_bucket = len(hist) - 1
    batched = None
    if n_ops == 0 and trace_out is None and not config.verify:
        batched = _batched_write(alloc, workload, pages, frontend, memcg, n_pages)
    # Per page of the written set, compact: its swap slot (0: none; slots start at 1, 0
    # is the swap header), the workload index of its content (dirty accesses give it the
    # workload's next page), and whether it differs from its copy in swap.  The batched
    # write phase keeps its own.
    n_state = n_pages if batched is None else 0
    slot_of = array("q", bytes(8 * n_state))
    content = array("q", range(n_state))
    dirty = bytearray(b"\1") * n_state
    next_slot = 0
    stores = 0
    peak_pool = pool_pages()
    pages_compacted = 0
    counts = {"swapins": 0, "swapins_held": 0, "dirty_accesses": 0, "clean_drops": 0}

    # zswap charges compressed bytes to the cgroup; zram keeps a page whose write failed
    # resident (the swap layer re-dirties it).  Reclaim then goes on, batch by batch,
    # until the cgroup is under its limit; when it cannot be, that is counted (stalls).
    charged = frontend.charges_memcg
    keeps_failed = frontend.failed_write_stays_resident

    def push_out(victims: list[int]) -> None:
        """Reclaim's victims go to swap: a clean page whose copy is still in swap (the
        swap cache's) is dropped without a write; the rest are written to their slot."""
        nonlocal next_slot, stores, peak_pool, pages_compacted
        while victims:
            failed = []
            for victim in victims:
                if not dirty[victim]:
                    counts["clean_drops"] += 1
                    continue
                slot = slot_of[victim]
                if not slot:
                    next_slot += 1
                    slot = next_slot
                index = content[victim]
                key = key_of(index)
                clen = clen_of(key)
                if clen is not None:
                    hist[min(clen >> HIST_SHIFT, last_bucket)] += 1
                stores += 1
                if not write(slot, index, key) and keeps_failed:
                    failed.append(victim)  # resident again; its next eviction takes a new slot
                    slot = 0
                else:
                    dirty[victim] = 0
                slot_of[victim] = slot
                p = pool_pages()
                if p > peak_pool:
                    peak_pool = p
                if compact_every and stores % compact_every == 0:
                    pages_compacted += ops.compact()
            if charged:
                memcg.kmem_pages = frontend.memcg_charge_pages
            if failed:
                memcg.putback(failed)
                if memcg.over():
                    memcg.stalls += 1
                break
            victims = memcg.reclaim()
            if not victims and memcg.over():
                memcg.stalls += 1  # nothing left to reclaim: the kernel would OOM

    def sample(done: int) -> None:
        live = frontend.compr_data_size + frontend.hdr_size * frontend.stored_pages
        row = [done, frontend.stored_pages, pool_pages(), -(-live // PAGE_SIZE)]
        if frontend.written_back_pages is not None:  # zswap: a fifth field
            row.append(frontend.written_back_pages)
        samples.append(row)

    if batched is not None:
        phase = batched(compact_every or 0, sample_every, progress)
        memcg.evictions, memcg.reclaims = phase["evictions"], phase["reclaims"]
        memcg.unlisted = phase["resident_pages"]
        frontend.adopt(phase)  # type: ignore[attr-defined]  # a Zcache31, _batched_write saw
        hist, samples = phase["hist"], phase["samples"]
        stores, next_slot = phase["stores"], phase["swap_slots_used"]
        peak_pool, pages_compacted = phase["peak_pool"], phase["pages_compacted"]
    for i in range(n_pages if batched is None else 0):
        victims = touch(i)
        if victims:
            push_out(victims)
        if (i + 1) % sample_every == 0 or i + 1 == steps:
            sample(i + 1)
        if progress is not None and ((i + 1) % step == 0 or i + 1 == steps):
            progress(i + 1, steps)

    if n_ops:
        # The allocator's calls during the accesses: frees and re-allocations.
        counting = CountingAllocator(alloc)
        frontend.alloc = counting  # type: ignore[assignment]  # duck-typed for the accesses
        rng = random.Random(f"xcfbench-churn:{config.seed}")
        draw = access_sampler(config.access, n_pages, n_ops, rng)
        lru, rand, share = memcg.lru, rng.random, config.dirty
        frees_slot = frontend.swapin_frees_slot
        dirties = frontend.swapin_dirties
        next_content = n_pages
        for j in range(n_ops):
            page = draw(j)
            writes = share > 0 and rand() < share
            if page in lru:
                lru.move_to_end(page)
            else:
                victims = touch(page)
                if victims:
                    push_out(victims)
                held = ops.read(slot_of[page])  # swap-in, after the charge's reclaim
                counts["swapins"] += 1
                counts["swapins_held"] += held
                if frees_slot:
                    slot_of[page] = 0
                    dirty[page] = 1
                else:
                    dirty[page] = 1 if held and dirties else 0
                if charged:
                    memcg.kmem_pages = frontend.memcg_charge_pages
            if writes:
                # A write fault frees the page's swap copy (reuse_swap_page /
                # should_try_to_free_swap) and the page takes new content.
                if slot_of[page]:
                    ops.free(slot_of[page])
                    slot_of[page] = 0
                content[page] = next_content
                next_content += 1
                dirty[page] = 1
                counts["dirty_accesses"] += 1
            done = n_pages + j + 1
            if done % sample_every == 0 or done == steps:
                sample(done)
            if progress is not None and (done % step == 0 or done == steps):
                progress(done, steps)
        counts["content_pages"] = next_content
        counts["allocator_mallocs"], counts["allocator_frees"] = counting.mallocs, counting.frees
        frontend.alloc = alloc

    pool_end = pool_pages()
    stats = alloc.stats()
    metadata = alloc.metadata_bytes()
    after_compact = None
    if compact_every is not None:
        pages_compacted += ops.compact()
        after_compact = pool_pages()
        stats = alloc.stats()

    verify_errors = None
    if config.verify:
        verify_errors = frontend.check()
        alloc.check()

    curr = frontend.stored_pages
    used_pages = pool_end + metadata / PAGE_SIZE
    return RunResult(
        allocator=alloc.name,
        fill=config.fill,
        arch=arch.name,
        compressor=compressor.name,
        pages_written=n_pages,
        pages_evicted=memcg.evictions,
        resident_pages=memcg.resident_pages,
        curr_pages=curr,
        succ_puts=frontend.succ_puts,
        failed_puts=frontend.failed_puts,
        rejects=dict(frontend.rejects),
        zv_page_count=pool_end,
        zv_desc_count=stats.get("desc_count"),
        pages_held=alloc.pages_held(),
        peak_pool_pages=peak_pool,
        metadata_bytes=metadata,
        orig_data_size=curr * PAGE_SIZE,
        compr_data_size=frontend.compr_data_size,
        zv_hdr_bytes=frontend.hdr_size,
        mean_compressed_pct=_pct(frontend.compr_data_size, curr * PAGE_SIZE),
        effective_compression_pct=_pct(used_pages, curr),
        effective_compression_pages_only_pct=_pct(pool_end, curr),
        stored_per_pool=_ratio(curr, used_pages),
        comp_ratio=_ratio(curr, pool_end),
        pool_pages_after_compact=after_compact,
        pages_compacted=pages_compacted if compact_every is not None else None,
        distinct_pages_compressed=pages.distinct,
        verified=config.verify,
        verify_errors=verify_errors,
        zv_curr_dist_counts=list(getattr(frontend, "zv_curr_dist_counts", ())),
        clen_histogram=_trim(hist),
        samples=samples,
        allocator_stats=stats,
        frontend=frontend.name,
        frontend_stats=_with_memcg(frontend.stats(), memcg),
        provenance={"compressor_version": compressor.version(), **workload.describe()},
        churn=(
            {
                "ops": n_ops,
                "access": config.access,
                "dirty": config.dirty,
                "swap_slots_used": next_slot,
                "stores": stores,
                **counts,
            }
            if n_ops
            else None
        ),
    )


def _batched_write(
    alloc: Any, workload: Any, pages: PageCache, frontend: Any, memcg: MemCg, n_pages: int
) -> Callable[[int, int, Callable[[int, int], None] | None], dict[str, Any]] | None:
    """The write phase as one C call (native/zcache_write.c), when the run has the seed's
    shape: zcache 3.1 over an allocator's twin, pages that cycle, nothing but writes, no
    page trace and no bytes kept.  None when the Python loop must run it."""
    if not (twins.is_twin(alloc) and type(frontend) is Zcache31 and not memcg.lru):
        return None
    period = workload.period()
    if period is None:
        return None
    # Only the pages reclaim will push out are compressed, as in the Python loop (the
    # result reports how many distinct pages were): the first `evicted`, cycling.
    evicted = memcg.fifo_evictions(n_pages)
    key_of, clen_of = workload.key, pages.clen
    clens = array(
        "i",
        (-1 if (n := clen_of(key_of(i))) is None else n for i in range(min(period, evicted))),
    )
    if not clens:
        clens.append(0)  # nothing is pushed out; the C loop never reads it
    knobs = frontend.knobs()

    def run(compact_every: int, sample_every: int, progress: Any) -> dict[str, Any]:
        return twins.zcache_write(
            alloc,
            clens,
            n_pages,
            memcg.capacity,
            memcg.reclaim_batch,
            knobs,
            compact_every,
            sample_every,
            progress,
        )

    return run


def pages_file(config: RunConfig, n: int) -> Iterator[bytes]:
    """The bytes of workload pages 0..n-1 of a run's fill: the pages file its emitted
    page trace refers to (replay --pages)."""
    workload = create_workload(config.fill, config.seed, config.corpus, config.shuffle)
    container = getattr(workload, "container", None)
    if container is not None and container.kind != "image":
        raise InputError("--emit-trace needs page bytes: run on the image, not its profile")
    for index in range(n):
        yield workload.page(workload.key(index))


def _with_memcg(stats: dict[str, Any], memcg: MemCg) -> dict[str, Any]:
    """zram and zswap results also say how the cgroup fared (zcache's stay as they were)."""
    if stats.get("mm_stat") is None and stats.get("zswap") is None:
        return stats
    return {
        **stats,
        "memcg": {
            "limit_pages": memcg.limit_pages,
            "resident_pages": memcg.resident_pages,
            "kmem_pages": memcg.kmem_pages,
            "evictions": memcg.evictions,
            "reclaims": memcg.reclaims,
            "reclaim_stalls": memcg.stalls,
        },
    }


def _pct(part: float, whole: float) -> float | None:
    return round(100.0 * part / whole, 6) if whole else None


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 6) if b else None


def _trim(hist: list[int]) -> list[int]:
    end = len(hist)
    while end and not hist[end - 1]:
        end -= 1
    return hist[:end]
