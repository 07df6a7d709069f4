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

Per-slot state is kept in tables indexed by slot, not in a Python object per page: the
entry's handle (no_entry: none) and its compressed length, or ZEROMAP as the length of a
slot in the swap zeromap (an entry and a zeromap bit never coexist).  A twin's handles are
ints >= 0 and go in an array('q'); a Python allocator's are objects (zsmalloc's are
lists) and go in a list.  The tables grow with the slots in use; a slot far past them (a
page trace may name any slot) is kept in dicts of the same meaning instead.
"""

from __future__ import annotations

from array import array
from collections.abc import Hashable, MutableSequence
from typing import Any, Protocol

from xcfbench.errors import InputError
from xcfbench.sim.allocators import twins
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
ZEROMAP = -1  # the length of a slot in the swap zeromap
GROW_SPAN = 1 << 20  # a slot this far past twice the tables' size goes to the dicts
MIN_SLOTS = 1024


class _Table(Protocol):
    """slot -> value: a table's array or list, or the dict of far slots."""

    def __getitem__(self, slot: int, /) -> Any: ...

    def __setitem__(self, slot: int, value: Any, /) -> None: ...


class _Far(dict[int, Any]):
    """slot -> value for slots past the tables: a missing slot reads as the empty value,
    and storing the empty value removes the slot (nothing is kept for it)."""

    __slots__ = ("empty",)

    def __init__(self, empty: Any) -> None:
        super().__init__()
        self.empty = empty

    def __missing__(self, slot: int) -> Any:
        return self.empty

    def __setitem__(self, slot: int, value: Any) -> None:
        if value == self.empty:
            self.pop(slot, None)
        else:
            super().__setitem__(slot, value)


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
        # slot -> handle (no_entry: none) and slot -> length (ZEROMAP: in the zeromap)
        twin = twins.is_twin(allocator)
        self.no_entry: Any = -1 if twin else None
        self.handles: MutableSequence[Any] = array("q") if twin else []
        self.lengths = array("i")
        self.n_slots = 0  # the tables' size
        self.far_handles = _Far(self.no_entry)
        self.far_lengths = _Far(0)
        self.n_entries = 0
        self.lru: Lru[bool] = new_lru()  # slot -> referenced, head first
        self.rejects = dict.fromkeys(REJECTS, 0)
        self.pool_limit_hit = 0
        self.written_back_pages: int = 0
        self.zswpout = self.zswpin = self.zswpwb = 0
        self.swpout_zero = self.swpin_zero = 0
        self.pswpout = 0
        self.zswap_b = 0  # MEMCG_ZSWAP_B
        self.shrink_worker_runs = 0
        self.keys: dict[int, Hashable] = {}  # slot -> page key, with --verify only
        self.keep_keys = pages.keep_compressed

    # -- the per-slot tables ---------------------------------------------------------------------
    def _tables(self, slot: int) -> tuple[_Table, _Table]:
        """The handle and length tables that hold slot (a store's: they grow to take it
        unless it is far past them)."""
        if 0 <= slot < self.n_slots:
            return self.handles, self.lengths
        if 0 <= slot < 2 * self.n_slots + GROW_SPAN:
            self._grow(max(slot + 1, self.n_slots + (self.n_slots >> 2), MIN_SLOTS))
            return self.handles, self.lengths
        return self.far_handles, self.far_lengths

    def _grow(self, n_slots: int) -> None:
        more = n_slots - self.n_slots
        if isinstance(self.handles, array):
            self.handles += array("q", (self.no_entry,)) * more
        else:
            self.handles += [self.no_entry] * more
        self.lengths += array("i", (0,)) * more
        self.n_slots = n_slots
        for slot in {s for s in (*self.far_handles, *self.far_lengths) if 0 <= s < n_slots}:
            if slot in self.far_handles:
                self.handles[slot] = self.far_handles.pop(slot)
            if slot in self.far_lengths:
                self.lengths[slot] = self.far_lengths.pop(slot)

    def entry(self, slot: int) -> tuple[Any, int] | None:
        """(handle, compressed length) of slot's entry, or None."""
        if 0 <= slot < self.n_slots:
            handle, length = self.handles[slot], self.lengths[slot]
        else:
            handle, length = self.far_handles[slot], self.far_lengths[slot]
        return None if handle == self.no_entry else (handle, length)

    def _entries(self) -> list[tuple[int, Any, int]]:
        """(slot, handle, length) of every entry."""
        no_entry, handles, lengths = self.no_entry, self.handles, self.lengths
        out = [(s, h, lengths[s]) for s, h in enumerate(handles) if h != no_entry]
        out += [(s, h, self.far_lengths[s]) for s, h in self.far_handles.items()]
        return out

    # -- helpers -------------------------------------------------------------------------------
    def _free_entry(self, slot: int) -> bool:
        handles: _Table
        lengths: _Table
        if 0 <= slot < self.n_slots:
            handles, lengths = self.handles, self.lengths
        else:
            handles, lengths = self.far_handles, self.far_lengths
        handle = handles[slot]
        if handle == self.no_entry:
            return False
        dlen = lengths[slot]
        handles[slot] = self.no_entry
        lengths[slot] = 0
        self.n_entries -= 1
        self.lru.pop(slot, None)
        if self.keep_keys:
            self.keys.pop(slot, None)
        self.alloc.free(handle)
        self.compr_data_size -= dlen
        self.zswap_b -= dlen
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
        pool_pages, shrink_memcg = self.alloc.pool_pages, self.shrink_memcg
        while pool_pages() > self.thr_pages:
            if shrink_memcg():  # -EAGAIN, or -ENOENT: a pass that made no attempt
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
        handles: _Table
        lengths: _Table
        if 0 <= slot < self.n_slots:
            handles, lengths = self.handles, self.lengths
        else:
            handles, lengths = self._tables(slot)
        if pages.same_filled(key) == 0:
            if handles[slot] != self.no_entry:
                self._free_entry(slot)
            lengths[slot] = ZEROMAP
            self.swpout_zero += 1
            return True
        if lengths[slot] == ZEROMAP:
            lengths[slot] = 0
        zswap_max_pages = self.zswap_max_pages
        if zswap_max_pages is not None:
            if zswap_max_pages == 0:
                return self._reject(slot, "reject_memcg_limit")
            if self.zswap_b // PAGE_SIZE >= zswap_max_pages:
                if self.shrink_memcg() != 0:
                    return self._reject(slot, "reject_memcg_limit")
        alloc = self.alloc
        pool = alloc.pool_pages()
        if pool >= self.max_pages:
            self.pool_limit_hit += 1
            self.full = True
            return self._reject(slot, "reject_pool_full")
        if self.full:
            if pool > self.thr_pages:
                return self._reject(slot, "reject_pool_full")
            self.full = False
        dlen = pages.clen(key)
        if dlen is None:
            return self._reject(slot, "reject_compress_fail")
        if dlen > PAGE_SIZE:
            return self._reject(slot, "reject_compress_poor")
        handle = alloc.malloc(dlen)
        if handle is None:
            return self._reject(slot, "reject_alloc_fail")
        if self.keep_keys:  # --verify: the object holds the compressed bytes
            alloc.write(handle, pages.compressed(key) or b"")
        if handles[slot] != self.no_entry:  # the slot's old entry goes
            self._free_entry(slot)
        if self.keep_keys:
            self.keys[slot] = key
        handles[slot] = handle
        lengths[slot] = dlen
        self.n_entries += 1
        self.lru = listing(self.lru, slot)  # a page trace's slots need not be dense
        self.lru[slot] = True
        self.compr_data_size += dlen
        self.zswap_b += dlen
        self.zswpout += 1
        self.succ_puts += 1
        return True

    def load(self, slot: int) -> bool:
        lengths: _Table = self.lengths if 0 <= slot < self.n_slots else self.far_lengths
        if lengths[slot] == ZEROMAP:
            lengths[slot] = 0
            self.swpin_zero += 1
            return True
        if self._free_entry(slot):
            self.zswpin += 1
            return True
        return False

    def invalidate(self, slot: int) -> bool:
        lengths: _Table = self.lengths if 0 <= slot < self.n_slots else self.far_lengths
        if lengths[slot] == ZEROMAP:
            lengths[slot] = 0
        return self._free_entry(slot)

    @property
    def stored_pages(self) -> int:
        return self.n_entries

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
            "stored_pages": self.n_entries,
            "written_back_pages": self.written_back_pages,
        }
        return {
            "zswap": debugfs,
            "memory.stat": {
                "zswap": self.zswap_b,
                "zswapped": self.n_entries * PAGE_SIZE,
                "zswpout": self.zswpout,
                "zswpin": self.zswpin,
                "zswpwb": self.zswpwb,
            },
            "meminfo": {"Zswap": pool * 4, "Zswapped": self.n_entries * 4},
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
        for slot, handle, dlen in self._entries():
            data = self.alloc.read(handle)
            try:
                ok = len(data) == dlen and decompress(data) == self.pages.data(self.keys[slot])
            except (ValueError, KeyError):
                ok = False
            errors += not ok
        return errors
