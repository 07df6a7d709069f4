"""zswap of Linux 6.12 (mm/zswap.c): a compressed cache in front of a swap device.

Rules (spec zswap.md; section numbers are that file's):

  store (§2)     all-zero pages go to the swap zeromap (swpout_zero) and never reach
                 zswap; memcg limit (memory.zswap.max, --zswap-max): at or over it,
                 shrink_memcg writes back at most one entry of the cgroup's LRU and the
                 store is rejected unless one was written back (no counter); global limit
                 (§4): pool_pages >= max_pages -> pool_limit_hit++, full; while full, a
                 store is accepted again only once pool_pages <= thr_pages; compression
                 (§3): a failed call -> reject_compress_fail, output over 4096 ->
                 reject_compress_poor; zs_malloc failure -> reject_alloc_fail; then the
                 entry joins the LRU tail with referenced set and its compressed length is
                 charged to the memcg (bytes: memory.stat zswap).  Any old entry at the
                 slot is freed, stored or rejected.
  max_pages      totalram_pages * max_pool_percent // 100, thr_pages = max_pages *
                 accept_threshold_percent // 100 (integer arithmetic).
  shrink worker  queued on each rejection while full; with shrink_worker='sync' (the
                 default) it runs at once, before the next store [assumption: the kernel
                 runs it on a workqueue, which on an idle machine gets the CPU before the
                 reclaiming task stores its next page; 'off' never runs it].  It loops
                 shrink_memcg (LRU walk of one entry: a referenced entry gets its second
                 chance, rotated to the tail, counting a failure; otherwise it is written
                 back: written_back_pages, zswpwb) until pool_pages <= thr_pages or 16
                 failures (MAX_RECLAIM_RETRIES).
  load (§7)      exclusive: the entry is freed (zswpin); a zeromap slot counts swpin_zero.
  invalidate     the slot is freed: its entry goes at once (no 64-slot batch).

One memcg holds every page (the engine's cgroup); the shrinker (shrinker_enabled) is off,
as it is by default.  Metadata (zswap_entry, xarray) is counted nowhere, as in the kernel.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from xcfbench.errors import InputError
from xcfbench.sim.allocators.base import Allocator
from xcfbench.sim.arch import PAGE_SIZE, Arch
from xcfbench.sim.frontends.base import FrontEnd, register
from xcfbench.sim.lru import Lru, listing, new_lru
from xcfbench.sim.pages import PageCache

MAX_RECLAIM_RETRIES = 16
REJECTS = (
    "reject_reclaim_fail",
    "reject_compress_fail",
    "reject_compress_poor",
    "reject_alloc_fail",
    "reject_kmemcache_fail",
    "reject_memcg_limit",
    "reject_pool_full",
)
SHRINK_WORKER = ("sync", "off")


@register
class Zswap(FrontEnd):
    name = "zswap"
    summary = "Linux 6.12 zswap: pool limit with hysteresis, LRU writeback, memcg charging"
    call = "zswap"
    options = {
        "max_pool_percent": 20,
        "accept_threshold_percent": 90,
        "zswap_max": None,
        "shrink_worker": "sync",
    }
    kernel_allocators = ("zsmalloc", "zbud", "z3fold")

    swapin_dirties = True  # zswap_load frees the entry and dirties the folio (§7)
    charges_memcg = True  # obj_cgroup_charge_zswap (§6)

    def __init__(
        self,
        allocator: Allocator,
        arch: Arch,
        pages: PageCache,
        *,
        totalram_pages: int,
        max_pool_percent: int = 20,
        accept_threshold_percent: int = 90,
        zswap_max: int | None = None,
        shrink_worker: str = "sync",
    ) -> None:
        super().__init__(allocator, arch, pages, totalram_pages=totalram_pages)
        for flag, value in (
            ("--max-pool-percent", max_pool_percent),
            ("--accept-threshold", accept_threshold_percent),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
                raise InputError(f"bad {flag} {value!r}: a percentage 0..100")
        if zswap_max is not None and (not isinstance(zswap_max, int) or zswap_max < 0):
            raise InputError(f"bad --zswap-max {zswap_max!r}: bytes, 0 or more")
        if shrink_worker not in SHRINK_WORKER:
            raise InputError(f"bad --shrink-worker {shrink_worker!r}: choose sync or off")
        self.max_pages = totalram_pages * max_pool_percent // 100
        self.thr_pages = self.max_pages * accept_threshold_percent // 100
        self.zswap_max_pages = None if zswap_max is None else zswap_max // PAGE_SIZE
        self.shrink_worker_mode = shrink_worker
        self.full = False
        self.entries: dict[int, tuple[Any, int]] = {}  # slot -> (handle, length)
        self.lru: Lru[bool] = new_lru()  # slot -> referenced, head first
        self.zeromap: set[int] = set()
        self.rejects = dict.fromkeys(REJECTS, 0)
        self.pool_limit_hit = 0
        self.written_back_pages: int = 0
        self.zswpout = self.zswpin = self.zswpwb = 0
        self.swpout_zero = self.swpin_zero = 0
        self.pswpout = 0
        self.zswap_b = 0  # MEMCG_ZSWAP_B
        self.shrink_worker_runs = 0
        self.keys: dict[int, Hashable] = {}  # slot -> page key, with --verify

    # -- helpers -------------------------------------------------------------------------------
    def _free_entry(self, slot: int) -> bool:
        e = self.entries.pop(slot, None)
        if e is None:
            return False
        self.lru.pop(slot, None)
        self.keys.pop(slot, None)
        self.alloc.free(e[0])
        self.compr_data_size -= e[1]
        self.zswap_b -= e[1]
        return True

    def shrink_memcg(self) -> int:
        """One LRU walk of nr_to_walk = 1: 0 if an entry was written back, -EAGAIN if the
        head had its second chance, -ENOENT if the LRU is empty."""
        if not self.lru:
            return -2
        slot, referenced = self.lru.first()
        if referenced:
            self.lru[slot] = False
            self.lru.move_to_end(slot)
            return -11
        self._free_entry(slot)  # zswap_writeback_entry
        self.written_back_pages += 1
        self.zswpwb += 1
        return 0

    def shrink_worker(self) -> None:
        self.shrink_worker_runs += 1
        failures = 0
        while self.alloc.pool_pages() > self.thr_pages:
            ret = self.shrink_memcg()
            if ret == -2:
                failures += 1  # a pass that made no attempt
            elif ret:
                failures += 1
            if failures == MAX_RECLAIM_RETRIES:
                break

    def _reject(self, slot: int, reason: str | None) -> bool:
        if reason is not None:
            self.rejects[reason] += 1
        if self.full and self.shrink_worker_mode == "sync":
            self.shrink_worker()
        self._free_entry(slot)  # stale data never written back
        self.failed_puts += 1
        self.pswpout += 1
        return False

    # -- the FrontEnd interface ------------------------------------------------------------------
    def store(self, slot: int, key: Hashable) -> bool:
        pages = self.pages
        if pages.same_filled(key) == 0:
            self._free_entry(slot)
            self.zeromap.add(slot)
            self.swpout_zero += 1
            return True
        self.zeromap.discard(slot)
        if self.zswap_max_pages is not None:
            if self.zswap_max_pages == 0:
                return self._reject(slot, "reject_memcg_limit")
            if self.zswap_b // PAGE_SIZE >= self.zswap_max_pages:
                if self.shrink_memcg() != 0:
                    return self._reject(slot, "reject_memcg_limit")
        pool = self.alloc.pool_pages()
        if pool >= self.max_pages:
            self.pool_limit_hit += 1
            self.full = True
        elif self.full and pool <= self.thr_pages:
            self.full = False
        if self.full:
            return self._reject(slot, "reject_pool_full")
        dlen = pages.clen(key)
        if dlen is None:
            return self._reject(slot, "reject_compress_fail")
        if dlen > PAGE_SIZE:
            return self._reject(slot, "reject_compress_poor")
        handle = self.alloc.malloc(dlen)
        if handle is None:
            return self._reject(slot, "reject_alloc_fail")
        if pages.keep_compressed:  # --verify: the object holds the compressed bytes
            self.alloc.write(handle, pages.compressed(key) or b"")
        self._free_entry(slot)
        if pages.keep_compressed:
            self.keys[slot] = key
        self.entries[slot] = (handle, dlen)
        self.lru = listing(self.lru, slot)  # a page trace's slots need not be dense
        self.lru[slot] = True
        self.compr_data_size += dlen
        self.zswap_b += dlen
        self.zswpout += 1
        self.succ_puts += 1
        return True

    def load(self, slot: int) -> bool:
        if slot in self.zeromap:
            self.zeromap.discard(slot)
            self.swpin_zero += 1
            return True
        if self._free_entry(slot):
            self.zswpin += 1
            return True
        return False

    def invalidate(self, slot: int) -> bool:
        self.zeromap.discard(slot)
        return self._free_entry(slot)

    @property
    def stored_pages(self) -> int:
        return len(self.entries)

    @property
    def memcg_charge_pages(self) -> int:
        """Pages of the cgroup's memory.current that compressed objects take (the per-CPU
        byte stock rounds the total up to whole pages)."""
        return -(-self.zswap_b // PAGE_SIZE)

    def stats(self) -> dict[str, Any]:
        pool = self.alloc.pool_pages()
        debugfs = {
            "pool_limit_hit": self.pool_limit_hit,
            "pool_total_size": pool * PAGE_SIZE,
            "reject_alloc_fail": self.rejects["reject_alloc_fail"],
            "reject_compress_fail": self.rejects["reject_compress_fail"],
            "reject_compress_poor": self.rejects["reject_compress_poor"],
            "reject_kmemcache_fail": self.rejects["reject_kmemcache_fail"],
            "reject_reclaim_fail": self.rejects["reject_reclaim_fail"],
            "stored_pages": len(self.entries),
            "written_back_pages": self.written_back_pages,
        }
        return {
            "zswap": debugfs,
            "memory.stat": {
                "zswap": self.zswap_b,
                "zswapped": len(self.entries) * PAGE_SIZE,
                "zswpout": self.zswpout,
                "zswpin": self.zswpin,
                "zswpwb": self.zswpwb,
            },
            "meminfo": {"Zswap": pool * 4, "Zswapped": len(self.entries) * 4},
            "vmstat": {
                "zswpin": self.zswpin,
                "zswpout": self.zswpout,
                "zswpwb": self.zswpwb,
                "swpout_zero": self.swpout_zero,
                "swpin_zero": self.swpin_zero,
                "pswpout": self.pswpout,
            },
            "limits": {
                "max_pages": self.max_pages,
                "thr_pages": self.thr_pages,
                "full": self.full,
                "zswap_max_pages": self.zswap_max_pages,
                "shrink_worker_runs": self.shrink_worker_runs,
                "rejected_while_full": self.rejects["reject_pool_full"],
                "rejected_memcg_limit": self.rejects["reject_memcg_limit"],
            },
        }

    def check(self) -> int:
        """With --verify: read every stored entry back through the allocator and
        decompress it; the number of pages that do not come back as written.  (Zero
        pages are in the swap zeromap, not in zswap.)"""
        errors = 0
        decompress = self.pages.compressor.decompress
        for slot, (handle, dlen) in self.entries.items():
            data = self.alloc.read(handle)
            try:
                ok = len(data) == dlen and decompress(data) == self.pages.data(self.keys[slot])
            except (ValueError, KeyError):
                ok = False
            errors += not ok
        return errors
