"""zcache's persistent ("zv") path over frontswap, as in Linux 3.1 staging.

When reclaim swaps a page out, frontswap offers it to zcache before the swap device
(spec zcache-2011.md §1.1, source drivers/staging/zcache/zcache-main.c):

  1. policy cap: refuse if curr_pers_pampd_count > zv_page_count_policy_percent% of
     totalram_pages (no compression attempted);
  2. compress the page with lzo1x-1; clen excludes the header;
  3. refuse if clen > zv_max_zsize                                   (compress_poor);
  4. if clen > zv_max_mean_zsize and the pool is not empty, refuse if the pool's mean
     bytes per object, pool_bytes // curr_pers_pampd_count, exceeds zv_max_mean_zsize
                                                                     (mean_compress_poor);
  5. allocate clen + sizeof(struct zv_hdr) bytes, write the header then the data.

A refused put goes to the real swap device; frontswap counts it in failed_puts.  Both
thresholds compare clen WITHOUT the header even though sysfs says "including metadata".
pool_bytes is the allocator's reported pool size (xv_get_total_size_bytes, or
xcf_get_total_size_bytes, which leaves out xcfmalloc's reserve pages).

Counters use the kernel's names: frontswap's curr_pages, succ_puts, failed_puts, flushes;
zcache's compress_poor, mean_compress_poor, zv_curr_dist_counts, zv_cumul_dist_counts.
policy_percent_exceeded and zv_alloc_fail have no counter of their own in 3.1 (they end
up only in failed_puts); we count them separately so that every refusal has a reason.
"""

from __future__ import annotations

import struct
from collections.abc import Hashable
from typing import Any

from xcfbench.errors import InputError
from xcfbench.sim.allocators.base import Allocator
from xcfbench.sim.arch import PAGE_SIZE, Arch
from xcfbench.sim.frontends.base import FrontEnd, register
from xcfbench.sim.pages import PageCache

ZV_MAX_ZSIZE_LIMIT = PAGE_SIZE // 8 * 7  # 3584: the largest value sysfs accepts
ZV_DEFAULT_MAX_ZSIZE = PAGE_SIZE // 8 * 7
ZV_DEFAULT_MAX_MEAN_ZSIZE = PAGE_SIZE // 8 * 5  # 2560 in 3.1; the letter set 3584
ZV_DEFAULT_POLICY_PERCENT = 75
ZVH_SENTINEL = 0x43214321
ZV_CHUNK_SHIFT = 6  # zv_*_dist_counts buckets of 64 bytes
SWIZ_BITS = 4  # frontswap offset bits kept in the oid
REJECT_REASONS = ("policy_percent_exceeded", "compress_poor", "mean_compress_poor", "zv_alloc_fail")


@register
class Zcache31(FrontEnd):
    name = "zcache"
    summary = "Linux 3.1 zcache persistent pool over frontswap (the 2011 seed)"
    call = "zcache"
    options = {
        "zv_max_zsize": ZV_DEFAULT_MAX_ZSIZE,
        "zv_max_mean_zsize": ZV_DEFAULT_MAX_MEAN_ZSIZE,
        "policy_percent": ZV_DEFAULT_POLICY_PERCENT,
        "sentinels": True,
    }
    kernel_allocators = ("xvmalloc", "xcfmalloc", "xcfmalloc-v1")

    def __init__(
        self,
        allocator: Allocator,
        arch: Arch,
        pages: PageCache | None = None,
        *,
        zv_max_zsize: int = ZV_DEFAULT_MAX_ZSIZE,
        zv_max_mean_zsize: int = ZV_DEFAULT_MAX_MEAN_ZSIZE,
        policy_percent: int = ZV_DEFAULT_POLICY_PERCENT,
        totalram_pages: int,
        sentinels: bool = True,
    ) -> None:
        for knob, value in (
            ("zv_max_zsize", zv_max_zsize),
            ("zv_max_mean_zsize", zv_max_mean_zsize),
        ):
            if not 1 <= value <= ZV_MAX_ZSIZE_LIMIT:
                raise InputError(
                    f"{knob} {value} is out of range: sysfs accepts 1..{ZV_MAX_ZSIZE_LIMIT}"
                )
        if not 1 <= policy_percent <= 150:
            raise InputError(
                f"zv_page_count_policy_percent {policy_percent} is out of range 1..150"
            )
        self.alloc = allocator
        self.arch = arch
        self.pages = pages  # type: ignore[assignment]  # None: put() is called with lengths
        self.totalram_pages = totalram_pages
        self.zv_max_zsize = zv_max_zsize
        self.zv_max_mean_zsize = zv_max_mean_zsize
        self.policy_pages = policy_percent * totalram_pages // 100
        self.hdr_size = arch.zv_hdr if sentinels else arch.zv_hdr_no_sentinel
        # i386 aligns u64 to 4 inside structs; x86_64 pads pool_id to 8.
        layout = "<I" + ("4x" if arch.sizeof_long == 8 else "") + "3QI" + ("I" if sentinels else "")
        self._hdr = struct.Struct(layout)
        self._sentinels = sentinels
        self.handles: dict[int, object] = {}  # swap offset -> allocator handle
        self.clens: dict[int, int] = {}
        self.keys: dict[int, Hashable] = {}  # swap offset -> page key, with real bytes
        self.curr_pers_pampd_count = 0
        self.succ_puts = self.failed_puts = self.flushes = 0
        self.rejects = dict.fromkeys(REJECT_REASONS, 0)
        self.compr_data_size = 0  # Σ clen of stored pages
        self.zv_curr_dist_counts = [0] * (PAGE_SIZE >> ZV_CHUNK_SHIFT)
        self.zv_cumul_dist_counts = [0] * (PAGE_SIZE >> ZV_CHUNK_SHIFT)

    @property
    def curr_pages(self) -> int:
        return self.curr_pers_pampd_count

    def header(self, offset: int, pool_id: int = 0) -> bytes:
        """struct zv_hdr for swap type 0 at this offset, as zv_create writes it."""
        fields = [pool_id, offset & ((1 << SWIZ_BITS) - 1), 0, 0, offset >> SWIZ_BITS]
        if self._sentinels:
            fields.append(ZVH_SENTINEL)
        return self._hdr.pack(*fields)

    def store(self, slot: int, key: Hashable) -> bool:
        assert self.pages is not None
        clen = self.pages.clen(key)
        assert clen is not None, "the 3.1 lzo1x call never fails"
        stored = self.put(slot, clen, self.pages.compressed(key))
        if stored and self.pages.keep_compressed:
            self.keys[slot] = key  # check() reads the page back by it
        return stored

    def load(self, slot: int) -> bool:
        # In 3.1 a frontswap get copies the page out and leaves the object in place; the
        # slot's later free (flush) releases it.
        return slot in self.handles

    def invalidate(self, slot: int) -> bool:
        return self.flush(slot)

    @property
    def stored_pages(self) -> int:
        return self.curr_pers_pampd_count

    def adopt(self, done: dict[str, Any]) -> None:
        """Take the counters of a write phase run in C (native/zcache_write.c).  The
        objects' handles stay there: such a run ends without touching a stored page."""
        self.curr_pers_pampd_count = done["curr"]
        self.succ_puts, self.failed_puts = done["succ_puts"], done["failed_puts"]
        self.compr_data_size = done["compr_data_size"]
        self.rejects = dict(zip(REJECT_REASONS, done["rejects"], strict=True))
        self.zv_curr_dist_counts = done["zv_curr_dist_counts"]
        self.zv_cumul_dist_counts = done["zv_cumul_dist_counts"]

    def knobs(self) -> tuple[int, int, int, int]:
        """(policy_pages, zv_max_zsize, zv_max_mean_zsize, hdr_size) for the C write phase."""
        return self.policy_pages, self.zv_max_zsize, self.zv_max_mean_zsize, self.hdr_size

    def stats(self) -> dict[str, Any]:
        """frontswap's and zcache's debugfs/sysfs counters, under their 3.1 names."""
        return {
            "frontswap": {
                "curr_pages": self.curr_pages,
                "succ_puts": self.succ_puts,
                "failed_puts": self.failed_puts,
                "flushes": self.flushes,
            },
            "zcache": {
                "curr_pers_pampd_count": self.curr_pers_pampd_count,
                "compress_poor": self.rejects["compress_poor"],
                "mean_compress_poor": self.rejects["mean_compress_poor"],
                "zv_page_count": self.alloc.pool_pages(),
            },
        }

    def check(self) -> int:
        """Read every stored page back, check its zv_hdr and decompress it; the number
        of pages that do not come back as written."""
        assert self.pages is not None
        errors = 0
        decompress = self.pages.compressor.decompress
        for offset, key in self.keys.items():
            try:
                if decompress(self.get(offset)) != self.pages.data(key):
                    errors += 1
            except (AssertionError, ValueError):
                errors += 1
        return errors

    def put(self, offset: int, clen: int, data: bytes | None = None) -> bool:
        """Offer the page at swap offset; True if zcache stored it.  data (the compressed
        bytes) is written into the allocation when the allocator keeps real bytes."""
        if offset in self.handles:  # a dup put replaces the old copy
            self.flush(offset)
        reason = None
        if self.curr_pers_pampd_count > self.policy_pages:
            reason = "policy_percent_exceeded"
        elif clen > self.zv_max_zsize:
            reason = "compress_poor"
        elif (
            clen > self.zv_max_mean_zsize
            and self.curr_pers_pampd_count > 0
            and self.alloc.pool_pages() * PAGE_SIZE // self.curr_pers_pampd_count
            > self.zv_max_mean_zsize
        ):
            reason = "mean_compress_poor"
        else:
            size = clen + self.hdr_size
            handle = self.alloc.malloc(size)
            if handle is None:
                reason = "zv_alloc_fail"
            else:
                if data is not None:
                    self.alloc.write(handle, self.header(offset) + data)
                self.handles[offset] = handle
                self.clens[offset] = clen
                self.curr_pers_pampd_count += 1
                self.compr_data_size += clen
                chunk = (size + (1 << ZV_CHUNK_SHIFT) - 1) >> ZV_CHUNK_SHIFT
                self.zv_curr_dist_counts[chunk] += 1
                self.zv_cumul_dist_counts[chunk] += 1
                self.succ_puts += 1
                return True
        self.rejects[reason] += 1
        self.failed_puts += 1
        return False

    def flush(self, offset: int) -> bool:
        """The swap slot was freed: drop its page if zcache holds it."""
        handle = self.handles.pop(offset, None)
        if handle is None:
            return False
        clen = self.clens.pop(offset)
        self.keys.pop(offset, None)
        chunk = (clen + self.hdr_size + (1 << ZV_CHUNK_SHIFT) - 1) >> ZV_CHUNK_SHIFT
        self.zv_curr_dist_counts[chunk] -= 1
        self.compr_data_size -= clen
        self.curr_pers_pampd_count -= 1
        self.flushes += 1
        self.alloc.free(handle)
        return True

    def get(self, offset: int) -> bytes:
        """The stored bytes (header, then compressed data) of a page; needs real storage.
        In 3.1 a frontswap get leaves the object in place."""
        data = self.alloc.read(self.handles[offset])
        if data[: self.hdr_size] != self.header(offset):
            raise AssertionError(f"zv_hdr of swap offset {offset} is corrupt")
        return data[self.hdr_size :]
