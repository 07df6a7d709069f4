"""The front-end interface: the kernel path a pushed-out page takes to the allocator.

A front end owns one allocator.  The engine hands it pages by swap slot and key; the front
end decides, by its kernel's rules, what is stored, and counts what happened under the
kernel's own names.

  store(slot, key)  reclaim pushed the page out to this swap slot (or block): compress,
                    decide, allocate; True if the front end holds the page afterwards
  load(slot)        the page is read back (swap-in); True if the front end held it
  invalidate(slot)  the slot is freed (the page's owner is gone, or a discard)
  compact()         run the allocator's compaction as the front end triggers it
  swapin_frees_slot after load(), the swap layer has freed the slot (zram's synchronous
                    bypass); otherwise the page stays in the swap cache with its slot
  swapin_dirties    a load that found the page leaves it dirty (zswap frees its entry
                    and marks the folio dirty): its next eviction writes it again
  stats()           the front end's counters, nested under the kernel's file names
                    (frontswap, zcache's debugfs, mm_stat, ...): a result's frontend_stats
  check()           with real bytes: read back every stored page, count the wrong ones

Options that belong to one front end are its own (``options``: name -> kernel default).
``calls`` says which compressor call the front end makes (zram's backend, zswap's crypto
path, or the 2011 zcache's plain lzo1x).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, ClassVar

from xcfbench.sim.allocators.base import Allocator
from xcfbench.sim.arch import Arch
from xcfbench.sim.pages import PageCache


class FrontEnd:
    name: ClassVar[str]
    summary: ClassVar[str]
    call: ClassVar[str]  # the compressor call it makes
    options: ClassVar[dict[str, Any]] = {}  # its own options with the kernel's defaults
    kernel_allocators: ClassVar[tuple[str, ...]] = ()  # pairings the kernel had
    swapin_dirties: ClassVar[bool] = False
    # A store the front end refuses leaves the page resident (zram in swap mode: the swap
    # layer re-dirties it) instead of sending it to a swap device behind.
    failed_write_stays_resident: ClassVar[bool] = False
    # The front end charges its compressed memory to the cgroup (zswap), so reclaim must
    # make room for it too.
    charges_memcg: ClassVar[bool] = False
    # Pages written back to the swap device behind, counted over the run (zswap); None
    # where the front end has no such path.  Samples carry it as a fifth field.
    written_back_pages: int | None = None

    @property
    def swapin_frees_slot(self) -> bool:
        return False

    @property
    def memcg_charge_pages(self) -> int:
        """Pages of the cgroup's memory the front end's own storage takes."""
        return 0

    def __init__(
        self,
        allocator: Allocator,
        arch: Arch,
        pages: PageCache,
        *,
        totalram_pages: int,
        **options: Any,
    ) -> None:
        self.alloc = allocator
        self.arch = arch
        self.pages = pages
        self.totalram_pages = totalram_pages
        # What every front end counts; the run's headline figures come from these.
        self.succ_puts = 0  # pages stored
        self.failed_puts = 0  # pages refused (they went to the swap device)
        self.rejects: dict[str, int] = {}  # refusals by reason, under kernel names
        self.compr_data_size = 0  # sum of compressed lengths of the stored pages
        self.hdr_size = 0  # bytes the front end adds to every object

    def store(self, slot: int, key: Hashable) -> bool:
        raise NotImplementedError

    def load(self, slot: int) -> bool:
        raise NotImplementedError

    def invalidate(self, slot: int) -> bool:
        raise NotImplementedError

    def compact(self) -> int:
        """The allocator's compaction; nothing to do for one without (a page trace's c
        line, as zram's compact knob does on such a pool)."""
        return self.alloc.compact() if self.alloc.supports_compaction else 0

    @property
    def stored_pages(self) -> int:
        raise NotImplementedError

    def stats(self) -> dict[str, Any]:
        raise NotImplementedError

    def check(self) -> int:
        raise NotImplementedError


# The registry, filled by @register as each front end's module is imported.
FRONTENDS: dict[str, type[FrontEnd]] = {}


def register(cls: type[FrontEnd]) -> type[FrontEnd]:
    if cls.name in FRONTENDS:
        raise RuntimeError(f"front end {cls.name!r} registered twice")
    FRONTENDS[cls.name] = cls
    return cls
