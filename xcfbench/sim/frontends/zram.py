"""zram of Linux 6.12 (drivers/block/zram/zram_drv.c), as a swap device or a block device.

Rules (spec zram.md; section numbers are that file's):

  write (§2)     same-filled page (all 512 words equal): flag + the word, no allocation,
                 same_pages; else compress (a failed call fails the write); a length at or
                 above the allocator's huge_class_size (zsmalloc: 3625 with chain 8), or
                 over a page, is stored whole (4096 B, huge_pages, huge_pages_since);
                 allocate; mem_used_max = max(mem_used_max, pool pages) BEFORE the
                 mem_limit check; over the limit the new object is freed and the write
                 fails (failed_writes), the slot keeping its old content.  Only then is
                 the slot's old content freed: on an overwrite both objects coexist.
  free (§3)      zram_free_page: WB releases the backing block, SAME drops same_pages,
                 else zs_free and compr_data_size -= size; an empty slot changes nothing.
  modes          block: every page reaches zram; a discard frees at once (notify_free).
                 swap (the 6.12 swap layer, §5): all-zero pages go to the swap zeromap
                 and never reach zram (swpout_zero); a freed slot goes to the freeing
                 CPU's return cache and reaches zram (notify_free, zram_free_page) in
                 batches of 64, while free swap stays above 5*64*cpus pages; below
                 2*64*cpus the cache is drained and frees are immediate (check_cache_
                 active, evaluated at each swap allocation).  free_batch=False models 6.15+
                 (immediate frees).  A swap-in (read) takes the synchronous-device bypass:
                 the slot is freed right after the read (§5.3).
  idle (§6)      mark every allocated slot that is not SAME or WB idle; any access clears it.
  recompress     slots in index order, by type (huge|idle|huge_idle, default all), skipping
                 SAME/WB/INCOMPRESSIBLE and lengths below threshold; the new length is kept
                 only if its zsmalloc class (zs_lookup_class_index of the length, no
                 handle added) is smaller than the old one's and below the threshold;
                 otherwise the old object stays and the slot is marked INCOMPRESSIBLE.
                 max_pages counts pages tried.  Never creates a huge object.
  writeback      slots in index order matching huge|idle|huge_idle|incompressible, not
                 SAME/WB: block reserved (bd_count), written (bd_writes), object freed,
                 the slot stays in orig_data_size; writeback_limit (pages) stops it.

Modelling choices, documented in the README: in swap mode the trace's or the run's slots
are opaque ids (a slot freed but still in the return cache is not reused: a new write to
the same trace slot gets a new zram slot, as the kernel's cluster allocator would), all
frees happen on one CPU's return cache [assumption], the per-CPU allocation-side slot
cache is not subtracted from free swap [assumption]; a backing device never fills.
zram memory is not charged to any memcg (§7, inferred).

Storage: the table is arrays indexed by zram index (a flags byte, a size, and one word for
the handle, the fill word or the backing block), not an object per page; a run's slots map
to indexes through an array too.  About 19 bytes per index, Python objects only for the
Python allocators' handles and, when recompression or --verify reads pages again, the keys.
"""

from __future__ import annotations

from array import array
from collections.abc import Hashable, Iterator
from typing import Any

from xcfbench.errors import InputError
from xcfbench.sim.allocators.base import Allocator
from xcfbench.sim.allocators.twins import is_twin
from xcfbench.sim.arch import PAGE_SIZE, Arch
from xcfbench.sim.frontends.base import FrontEnd, register
from xcfbench.sim.pages import PageCache

SWAP_SLOTS_CACHE_SIZE = 64  # SWAP_BATCH
THRESHOLD_ACTIVATE = 5 * SWAP_SLOTS_CACHE_SIZE
THRESHOLD_DEACTIVATE = 2 * SWAP_SLOTS_CACHE_SIZE
MODES = ("swap", "block")
RECOMPRESS_TYPES = ("huge", "idle", "huge_idle")
WRITEBACK_MODES = ("huge", "idle", "huge_idle", "incompressible")
ZS_MIN_ALLOC_SIZE, ZS_SIZE_CLASS_DELTA, ZS_SIZE_CLASSES = 32, 16, 255

MM_STAT_FIELDS = (
    "orig_data_size",
    "compr_data_size",
    "mem_used_total",
    "mem_limit",
    "mem_used_max",
    "same_pages",
    "pages_compacted",
    "huge_pages",
    "huge_pages_since",
)
IO_STAT_FIELDS = ("failed_reads", "failed_writes", "invalid_io", "notify_free")
BD_STAT_FIELDS = ("bd_count", "bd_reads", "bd_writes")


def mm_stat_line(mm: dict[str, int]) -> str:
    """/sys/block/zramN/mm_stat as mm_stat_show prints it (without the newline)."""
    return " ".join(f"{mm[f]:8d}" for f in MM_STAT_FIELDS)


def io_stat_line(io: dict[str, int]) -> str:
    return f"{io['failed_reads']:8d} {io['failed_writes']:8d} 0 {io['notify_free']:8d}"


def bd_stat_line(bd: dict[str, int]) -> str:
    return " ".join(f"{bd[f]:8d}" for f in BD_STAT_FIELDS)


def debug_stat_text(dbg: dict[str, int]) -> str:
    return f"version: 1\n{dbg['writestall']:8d} {dbg['miss_free']:8d}"


def parse_recompress(spec: str | None) -> tuple[str, str | None, int, int] | None:
    """'ALGO[ type=huge|idle|huge_idle][ threshold=N][ max_pages=N]' (spaces or commas)
    -> (algo, type, threshold, max_pages); threshold and max_pages 0 mean none."""
    if not spec:
        return None
    words = spec.replace(",", " ").split()
    algo, rtype, threshold, max_pages = words[0], None, 0, 0
    if "=" in algo:
        raise InputError(
            f"bad --recompress {spec!r}: expected ALGO first, then type=, threshold=, max_pages="
        )
    for word in words[1:]:
        key, _, value = word.partition("=")
        if key == "type" and value in RECOMPRESS_TYPES:
            rtype = value
            continue
        if key in ("threshold", "max_pages"):
            try:
                n = int(value)
            except ValueError:
                n = -1
            if n >= 0:
                if key == "threshold":
                    threshold = n
                else:
                    max_pages = n
                continue
        raise InputError(
            f"bad --recompress parameter {word!r}: expected"
            " type=huge|idle|huge_idle, threshold=BYTES or max_pages=N"
        )
    return algo, rtype, threshold, max_pages


def lookup_class_index(alloc: Allocator, size: int) -> int:
    """zs_lookup_class_index(pool, size): the merged class of size bytes, no handle added;
    allocators without size classes: 32 + 16*i buckets as zsmalloc's table reads."""
    merged = getattr(alloc, "merged_class_index", None)
    idx = 0 if size < ZS_MIN_ALLOC_SIZE else -(-(size - ZS_MIN_ALLOC_SIZE) // ZS_SIZE_CLASS_DELTA)
    idx = min(idx, ZS_SIZE_CLASSES - 1)
    return merged(idx) if merged is not None else idx


# A zram index's state is one byte of flags (zram_table_entry's, plus the swap layer's
# zeromap bit for the index) and, as in the kernel's union, one word that is the handle,
# the same-filled word or the backing block, with the compressed size beside it.
ALLOCATED = 0x01  # the index holds a page
SAME = 0x02  # ZRAM_SAME: the word is the fill value
WB = 0x04  # ZRAM_WB: the word is the backing block
HUGE = 0x08  # ZRAM_HUGE: stored whole (4096 B)
IDLE = 0x10  # ZRAM_IDLE
INCOMPRESSIBLE = 0x20  # ZRAM_INCOMPRESSIBLE: recompression did not shrink it
RECOMPRESSED = 0x40  # priority 1: stored by the recompression algorithm
ZEROMAP = 0x80  # swap mode: the swap zeromap's bit (an all-zero page, zram not called)

# mark_idle's table: every byte value with IDLE set where the page is allocated and
# neither SAME nor WB (bytearray.translate does the pass in C).
_IDLE_MARK = bytes(v | IDLE if v & (ALLOCATED | SAME | WB) == ALLOCATED else v for v in range(256))
_IDLE_MARKABLE = [v for v in range(256) if v & (ALLOCATED | SAME | WB) == ALLOCATED]


class SlotMap:
    """slot -> row (a positive int), 0 for none, without an object per slot: an array
    over the slots when they are dense (the engine's count up from 1, and most page
    traces' from 0), a dict for the few far beyond the array."""

    __slots__ = ("dense", "far")

    def __init__(self) -> None:
        self.dense = array("q")
        self.far: dict[int, int] = {}

    def get(self, slot: int) -> int:
        if slot < len(self.dense):
            return self.dense[slot]
        return self.far.get(slot, 0) if self.far else 0

    def set(self, slot: int, row: int) -> None:
        dense = self.dense
        if slot >= len(dense):
            size = len(dense)
            if slot >= 2 * size + 4096:  # too far: growing would cost a word per gap
                self.far[slot] = row
                return
            # an eighth more at a time: the slack stays small (array's realloc amortizes)
            dense.frombytes(bytes(8 * (max(slot + 1, size + (size >> 3) + 1024) - size)))
            for far in [s for s in self.far if s < len(dense)]:
                dense[far] = self.far.pop(far)
        dense[slot] = row

    def pop(self, slot: int) -> int:
        dense = self.dense
        if slot < len(dense):
            row = dense[slot]
            dense[slot] = 0
            return row
        return self.far.pop(slot, 0) if self.far else 0

    def rows_by_slot(self) -> Iterator[int]:
        """The rows, in the order of their slots."""
        for row in self.dense:
            if row:
                yield row
        far = self.far
        for slot in sorted(far):
            yield far[slot]


@register
class Zram(FrontEnd):
    name = "zram"
    summary = "Linux 6.12 zram: swap device under the 6.12 swap layer, or a block device"
    call = "zram"
    options = {
        "mode": "swap",
        "mem_limit": 0,
        "recompress": None,
        "writeback": None,
        "writeback_limit": None,
        "cpus": 1,
        "swap_size": 0,
        "free_batch": True,
    }
    kernel_allocators = ("zsmalloc", "zsmalloc-legacy")
    failed_write_stays_resident = True  # swap mode: a write error re-dirties the page

    def __init__(
        self,
        allocator: Allocator,
        arch: Arch,
        pages: PageCache,
        *,
        totalram_pages: int,
        mode: str = "swap",
        mem_limit: int = 0,
        recompress: str | None = None,
        writeback: str | None = None,
        writeback_limit: int | None = None,
        cpus: int = 1,
        swap_size: int = 0,
        free_batch: bool = True,
    ) -> None:
        super().__init__(allocator, arch, pages, totalram_pages=totalram_pages)
        if mode not in MODES:
            raise InputError(f"bad zram mode {mode!r}: choose swap or block")
        if not isinstance(mem_limit, int) or isinstance(mem_limit, bool) or mem_limit < 0:
            raise InputError(f"bad --mem-limit {mem_limit!r}: bytes, 0 for none")
        if writeback is not None and writeback not in WRITEBACK_MODES:
            raise InputError(
                f"bad --writeback {writeback!r}: choose from {', '.join(WRITEBACK_MODES)}"
            )
        if writeback_limit is not None and (
            not isinstance(writeback_limit, int) or writeback_limit < 0
        ):
            raise InputError(f"bad --writeback-limit {writeback_limit!r}: pages, 0 or more")
        if not isinstance(cpus, int) or cpus < 1:
            raise InputError(f"bad --cpus {cpus!r}: at least 1")
        if not isinstance(swap_size, int) or swap_size < 0:
            raise InputError(f"bad --swap-size {swap_size!r}")
        self.mode = mode
        self.limit_pages = -(-mem_limit // PAGE_SIZE)  # PAGE_ALIGN(bytes) >> 12
        self.recomp = parse_recompress(recompress)
        self._recomp_pages: PageCache | None = None
        if self.recomp is not None:
            from xcfbench.sim.compressors import create_compressor, get_compressor_class

            calls = get_compressor_class(self.recomp[0]).calls
            comp = create_compressor(self.recomp[0], call="zram" if "zram" in calls else calls[0])
            self._recomp_pages = PageCache(pages.page_of, comp, pages.keep_compressed)
            hcs = self.huge_class_size
            if self.recomp[2] and self.recomp[2] >= hcs:
                raise InputError(
                    f"bad --recompress threshold={self.recomp[2]}: must be"
                    f" below huge_class_size ({hcs})"
                )
        self.writeback_mode = writeback
        self.writeback_limit = writeback_limit  # None: writeback_limit_enable off
        self.cpus = cpus
        swap_pages = (swap_size or totalram_pages * PAGE_SIZE) // PAGE_SIZE
        self.total_swap_pages = max(swap_pages - 1, 0)  # page 0: the mkswap header
        self.free_batch = free_batch
        # The device table, a row per zram index (row 0 unused).  Swap mode gives each
        # allocated slot a new index, so row order is index order; block mode gives a
        # block its row when it is first written, and the block is the index
        # (SlotMap.rows_by_slot walks the rows in block order).
        self.row_of = SlotMap()
        self.flags = bytearray(1)
        self.sizes = array("H", [0])
        # Twins' handles are ints (kept in a word); the Python allocators' are objects.
        self.words: Any = array("Q", [0]) if is_twin(allocator) else [0]
        # The page behind each index, kept only for what reads it again: recompression
        # and --verify's check().
        self.keys: list[Hashable | None] | None = None
        if self.recomp is not None or pages.keep_compressed:
            self.keys = [None]
        self.slots_ret: list[int] = []
        self.cache_active = True
        self.swap_used = 0  # slots allocated (incl. awaiting free)
        self.bd_count = 0  # backing blocks in use (each written-back index holds one)
        self._next_block = 1
        # counters, kernel names
        self.pages_stored = 0
        self.same_pages = 0
        self.huge_pages = 0
        self.huge_pages_since = 0
        self.max_used_pages = 0
        self.pages_compacted = 0
        self.failed_reads = self.failed_writes = self.notify_free = 0
        self.bd_reads = self.bd_writes = 0
        self.writestall = self.miss_free = 0
        self.swpout_zero = self.swpin_zero = 0
        self.recompressed = 0
        self.hdr_size = 0

    # -- helpers ---------------------------------------------------------------------------
    @property
    def swapin_frees_slot(self) -> bool:
        """Swap mode: a private page is read through the synchronous bypass and its slot
        freed at once (§5.3); block mode keeps the block."""
        return self.mode == "swap"

    @property
    def huge_class_size(self) -> int:
        """zs_huge_class_size; an allocator without one stores only > PAGE_SIZE whole."""
        return getattr(self.alloc, "huge_class_size", 0) or PAGE_SIZE + 1

    def _index(self, slot: int, create: bool) -> int | None:
        row = self.row_of.get(slot)
        if row or not create:
            return row or None
        row = len(self.flags)
        self.flags.append(0)
        self.sizes.append(0)
        self.words.append(0)
        if self.keys is not None:
            self.keys.append(None)
        self.row_of.set(slot, row)
        if self.mode == "swap":
            self.swap_used += 1
            self._check_cache_active()
        return row

    def _check_cache_active(self) -> None:
        """mm/swap_slots.c check_cache_active, at each swap allocation."""
        if not self.free_batch:
            return
        free = self.total_swap_pages - self.swap_used
        if not self.cache_active:
            if free > self.cpus * THRESHOLD_ACTIVATE:
                self.cache_active = True
        elif free < self.cpus * THRESHOLD_DEACTIVATE:
            self.cache_active = False
            self._drain()

    def _drain(self) -> None:
        batch, self.slots_ret = self.slots_ret, []
        for idx in batch:
            self._notify(idx)

    def _notify(self, idx: int) -> None:
        """zram_slot_free_notify (from swap_range_free)."""
        self.notify_free += 1
        self.swap_used -= 1
        self.flags[idx] &= ~ZEROMAP
        self._free_page(idx)

    def _free_page(self, idx: int) -> None:
        """zram_free_page: the index keeps only its zeromap bit."""
        flags = self.flags
        f = flags[idx]
        if not f & ALLOCATED:
            return
        if f & HUGE:
            self.huge_pages -= 1
        if f & WB:
            self.bd_count -= 1
        elif f & SAME:
            self.same_pages -= 1
        else:
            self.alloc.free(self.words[idx])
            self.compr_data_size -= self.sizes[idx]
        flags[idx] = f & ZEROMAP
        self.words[idx] = 0
        if self.keys is not None:
            self.keys[idx] = None
        self.pages_stored -= 1

    def _set(self, idx: int, flags: int, word: int, size: int, key: Hashable | None) -> None:
        """A new entry at a freed index: zram_set_flag/handle/obj_size."""
        self.flags[idx] |= ALLOCATED | flags
        self.words[idx] = word
        self.sizes[idx] = size
        if self.keys is not None:
            self.keys[idx] = key
        self.pages_stored += 1

    # -- the FrontEnd interface ----------------------------------------------------------------
    def store(self, slot: int, key: Hashable) -> bool:
        pages = self.pages
        if self.mode == "swap" and pages.same_filled(key) == 0:
            idx = self._index(slot, create=True)
            assert idx is not None  # create=True always gives an index
            self.flags[idx] |= ZEROMAP  # swap_writepage: no zram call
            self.swpout_zero += 1
            return True
        idx = self._index(slot, create=True)
        assert idx is not None  # create=True always gives an index
        self.flags[idx] &= ~ZEROMAP
        ok = self.write_page(idx, key)
        if ok:
            self.succ_puts += 1
        else:
            self.failed_puts += 1
        return ok

    def write_page(self, idx: int, key: Hashable) -> bool:
        """zram_write_page + zram_accessed."""
        pages = self.pages
        value = pages.same_filled(key)
        if value is not None:
            self._free_page(idx)
            self.same_pages += 1
            self._set(idx, SAME, value, 0, key)
            return True
        clen = pages.clen(key)
        if clen is None:
            return self._fail("compress_fail")
        huge = clen >= self.huge_class_size or clen > PAGE_SIZE
        if huge:
            clen = PAGE_SIZE
        handle = self.alloc.malloc(clen)
        if handle is None:
            self.writestall += 1  # the GFP_NOIO retry fails alike
            handle = self.alloc.malloc(clen)
            if handle is None:
                return self._fail("alloc_fail")
        alloced = self.alloc.pool_pages()
        if alloced > self.max_used_pages:
            self.max_used_pages = alloced
        if self.limit_pages and alloced > self.limit_pages:
            self.alloc.free(handle)
            return self._fail("mem_limit")
        if pages.keep_compressed:  # --verify: the object holds the real bytes
            self.alloc.write(handle, pages.data(key) if huge else pages.compressed(key) or b"")
        self.compr_data_size += clen
        self._free_page(idx)
        if huge:
            self.huge_pages += 1
            self.huge_pages_since += 1
        self._set(idx, HUGE if huge else 0, handle, clen, key)
        return True

    def _fail(self, reason: str) -> bool:
        self.failed_writes += 1
        self.rejects[reason] = self.rejects.get(reason, 0) + 1
        return False

    def load(self, slot: int) -> bool:
        """A read: block mode reads the block; swap mode swaps in through the bypass
        path and frees the slot afterwards."""
        idx = self._index(slot, create=False)
        if idx is None:
            return False
        held = False
        f = self.flags[idx]
        if self.mode == "swap" and f & ZEROMAP:
            self.swpin_zero += 1
            held = True
        elif f & ALLOCATED:
            held = True
            self.flags[idx] = f & ~IDLE
            if f & WB:
                self.bd_reads += 1
        if self.mode == "swap":
            self.invalidate(slot)
        return held

    def invalidate(self, slot: int) -> bool:
        """Block: a discard of the page.  Swap: free_swap_slot."""
        if self.mode == "block":
            idx = self.row_of.get(slot)
            self.notify_free += 1
            if not idx:
                return False
            held = bool(self.flags[idx] & ALLOCATED)
            self._free_page(idx)
            return held
        idx = self.row_of.pop(slot)
        if not idx:
            return False
        if self.free_batch and self.cache_active:
            if len(self.slots_ret) >= SWAP_SLOTS_CACHE_SIZE:
                self._drain()
            self.slots_ret.append(idx)
        else:
            self._notify(idx)
        return True

    def compact(self) -> int:
        freed = self.alloc.compact() if self.alloc.supports_compaction else 0
        self.pages_compacted += freed
        return freed

    @property
    def stored_pages(self) -> int:
        return self.pages_stored

    # -- idle, recompression, writeback ------------------------------------------------------
    def _in_index_order(self) -> Iterator[int]:
        """The allocated indexes in zram index order (what recompress_store and
        writeback_store walk)."""
        flags = self.flags
        rows = range(1, len(flags)) if self.mode == "swap" else self.row_of.rows_by_slot()
        return (idx for idx in rows if flags[idx] & ALLOCATED)

    def mark_idle(self) -> int:
        flags = self.flags
        n = sum(map(flags.count, _IDLE_MARKABLE))
        flags[:] = flags.translate(_IDLE_MARK)
        return n

    def recompress(self) -> int:
        """recompress_store with the configured algorithm and parameters; pages kept."""
        if self.recomp is None:
            raise InputError("recompression needs --recompress ALGO")
        assert self._recomp_pages is not None and self.keys is not None
        _, rtype, threshold, max_pages = self.recomp
        huge_only = rtype in ("huge", "huge_idle")
        idle_only = rtype in ("idle", "huge_idle")
        flags, sizes, keys = self.flags, self.sizes, self.keys
        done = 0
        for idx in self._in_index_order():
            f = flags[idx]
            if f & (SAME | WB | INCOMPRESSIBLE | RECOMPRESSED):
                continue
            if (huge_only and not f & HUGE) or (idle_only and not f & IDLE):
                continue
            if max_pages and done >= max_pages:
                break
            size = sizes[idx]
            if threshold and size < threshold:
                continue
            flags[idx] = f = f & ~IDLE
            done += 1
            class_old = lookup_class_index(self.alloc, size)
            key = keys[idx]
            new = self._recomp_pages.clen(key)
            if new is None:
                break  # a backend error ends the pass
            if lookup_class_index(self.alloc, new) >= class_old:
                flags[idx] = f | INCOMPRESSIBLE  # the only secondary was tried
                continue
            if threshold and new >= threshold:
                continue  # smaller class, above threshold: keep
            handle = self.alloc.malloc(new)
            if handle is None:
                break
            if self._recomp_pages.keep_compressed:
                self.alloc.write(handle, self._recomp_pages.compressed(key) or b"")
            self._free_page(idx)
            self._set(idx, RECOMPRESSED, handle, new, key)
            self.compr_data_size += new
            self.recompressed += 1
        return done

    def writeback(self) -> int:
        if self.writeback_mode is None:
            raise InputError("writeback needs --writeback huge|idle|huge_idle|incompressible")
        mode = self.writeback_mode
        huge_only = mode in ("huge", "huge_idle")
        idle_only = mode in ("idle", "huge_idle")
        incompressible_only = mode == "incompressible"
        flags = self.flags
        n = 0
        for idx in self._in_index_order():
            f = flags[idx]
            if f & (SAME | WB):
                continue
            if (
                (huge_only and not f & HUGE)
                or (idle_only and not f & IDLE)
                or (incompressible_only and not f & INCOMPRESSIBLE)
            ):
                continue
            if self.writeback_limit is not None and self.writeback_limit == 0:
                break
            block = self._next_block
            self._next_block += 1
            self.bd_count += 1
            self.bd_writes += 1
            key = self.keys[idx] if self.keys is not None else None
            self._free_page(idx)
            self._set(idx, WB, block, 0, key)
            if self.writeback_limit is not None:
                self.writeback_limit -= 1
            n += 1
        return n

    # -- statistics ------------------------------------------------------------------------------
    def mm_stat(self) -> dict[str, int]:
        return {
            "orig_data_size": self.pages_stored * PAGE_SIZE,
            "compr_data_size": self.compr_data_size,
            "mem_used_total": self.alloc.pool_pages() * PAGE_SIZE,
            "mem_limit": self.limit_pages * PAGE_SIZE,
            "mem_used_max": self.max_used_pages * PAGE_SIZE,
            "same_pages": self.same_pages,
            "pages_compacted": self.pages_compacted,
            "huge_pages": self.huge_pages,
            "huge_pages_since": self.huge_pages_since,
        }

    def stats(self) -> dict[str, Any]:
        mm = self.mm_stat()
        io = {
            "failed_reads": self.failed_reads,
            "failed_writes": self.failed_writes,
            "invalid_io": 0,
            "notify_free": self.notify_free,
        }
        bd = {
            "bd_count": self.bd_count,
            "bd_reads": self.bd_reads,
            "bd_writes": self.bd_writes,
        }
        dbg = {"writestall": self.writestall, "miss_free": self.miss_free}
        out: dict[str, Any] = {
            "mm_stat": mm,
            "io_stat": io,
            "bd_stat": bd,
            "debug_stat": dbg,
            "lines": {
                "mm_stat": mm_stat_line(mm),
                "io_stat": io_stat_line(io),
                "bd_stat": bd_stat_line(bd),
                "debug_stat": debug_stat_text(dbg),
            },
            "zramctl": {
                "ALGORITHM": self.pages.compressor.name,
                "DATA": mm["orig_data_size"],
                "COMPR": mm["compr_data_size"],
                "TOTAL": mm["mem_used_total"],
                "ZERO-PAGES": mm["same_pages"],
            },
            "zram": {
                "mode": self.mode,
                "huge_class_size": self.huge_class_size,
                "recompressed": self.recompressed,
                "pending_frees": len(self.slots_ret),
                "free_cache_active": self.cache_active,
                "writeback_limit": self.writeback_limit,
            },
        }
        if self.mode == "swap":
            out["vmstat"] = {"swpout_zero": self.swpout_zero, "swpin_zero": self.swpin_zero}
        return out

    def check(self) -> int:
        """With --verify: read every stored page back through the allocator and
        decompress it (a huge page is stored raw; a same-filled page is its fill word;
        a recompressed one decompresses with the recompression algorithm); the number of
        pages that do not come back as written.  A page written back to the backing
        device is not held by zram (the model keeps no backing-device bytes)."""
        errors = 0
        pages = self.pages
        flags, words, keys = self.flags, self.words, self.keys
        assert keys is not None  # --verify keeps them
        for idx in self._in_index_order():
            f = flags[idx]
            if f & WB:
                continue
            page = pages.data(keys[idx])
            if f & SAME:
                ok = page == words[idx].to_bytes(8, "little") * (PAGE_SIZE // 8)
            else:
                data = self.alloc.read(words[idx])
                comp = pages.compressor
                if f & RECOMPRESSED:
                    assert self._recomp_pages is not None
                    comp = self._recomp_pages.compressor
                try:
                    ok = len(data) == self.sizes[idx] and (
                        data == page if f & HUGE else comp.decompress(data) == page
                    )
                except ValueError:
                    ok = False
            errors += not ok
        return errors
