"""A memory cgroup with a hard limit and LRU reclaim.

The seed ran its program in a cgroup with memory.limit_in_bytes = 256 MB.  Every page the
program touches is charged to the cgroup; when a new charge would pass the limit, reclaim
pushes the least recently used pages out to swap, where frontswap offers them to zcache.

The model:
  * capacity = limit_pages - overhead_pages is what the workload's own pages may occupy.
    overhead_pages stands for everything else the cgroup is charged for (program text,
    libc, stack, page tables, the page cache the program pulled in).  [ASSUMPTION] Its
    default, 352 pages (1.375 MiB), is chosen so that the seed's curr_pages lands where
    the letter's did (65,845..65,965); the letter gives no breakdown.
  * Reclaim takes reclaim_batch pages at a time from the cold end of the LRU, like the
    kernel's SWAP_CLUSTER_MAX (32) reclaim batches.  So the resident set ends anywhere
    between capacity - batch + 1 and capacity.
  * Kernel memory (zcache's pool, descriptors) is not charged: in Linux 3.1 memcg did not
    account slab or zcache pages.
"""

from __future__ import annotations

from xcfbench.errors import InputError
from xcfbench.sim.arch import PAGE_SIZE
from xcfbench.sim.lru import Lru, new_lru

SWAP_CLUSTER_MAX = 32
DEFAULT_OVERHEAD_PAGES = 352


class MemCg:
    __slots__ = (
        "limit_pages",
        "overhead_pages",
        "reclaim_batch",
        "capacity",
        "lru",
        "evictions",
        "reclaims",
        "kmem_pages",
        "stalls",
        "unlisted",
    )

    def __init__(
        self,
        limit_bytes: int,
        overhead_pages: int = DEFAULT_OVERHEAD_PAGES,
        reclaim_batch: int = SWAP_CLUSTER_MAX,
    ) -> None:
        self.limit_pages = limit_bytes // PAGE_SIZE
        self.overhead_pages = overhead_pages
        self.reclaim_batch = reclaim_batch
        self.capacity = self.limit_pages - overhead_pages
        if reclaim_batch < 1:
            raise InputError(f"reclaim batch must be at least 1 page, not {reclaim_batch}")
        if 0 < self.capacity < reclaim_batch:
            raise InputError(
                f"--reclaim-batch {reclaim_batch} is more than the {self.capacity}"
                f" pages the memory limit leaves the workload ({self.limit_pages}"
                f" pages less {overhead_pages} of overhead)"
            )
        if self.capacity < reclaim_batch:
            raise InputError(
                f"memory limit {limit_bytes} bytes leaves no room for the workload:"
                f" the overhead alone is {overhead_pages} pages"
            )
        self.lru: Lru[None] = new_lru()  # oldest first
        self.evictions = 0
        self.reclaims = 0
        self.kmem_pages = 0  # other charges: zswap's compressed bytes, in pages
        self.stalls = 0  # reclaims that could not bring the cgroup under its limit
        # Resident pages the batched write phase (native/zcache_write.c) keeps as a
        # range of indexes instead of LRU entries; only a run that ends there has any.
        self.unlisted = 0

    def touch(self, page: int) -> list[int]:
        """Charge (or re-reference) page; return the pages reclaim pushed out for it."""
        victims = self.lru.touch(page, self.capacity - self.kmem_pages, self.reclaim_batch)
        if victims is None:
            return []
        self.reclaims += 1
        self.evictions += len(victims)
        return victims

    def over(self) -> bool:
        """Charged past capacity (a forced kmem charge, or pages put back)."""
        return len(self.lru) + self.kmem_pages > self.capacity

    def reclaim(self) -> list[int]:
        """One more reclaim batch from the cold end, when over the limit."""
        if not self.over() or not self.lru:
            return []
        self.reclaims += 1
        evicted = self.lru.pop_oldest(self.reclaim_batch)
        self.evictions += len(evicted)
        return evicted

    def putback(self, pages: list[int]) -> None:
        """Pages whose swap-out failed stay resident (re-dirtied, reactivated)."""
        for page in pages:
            self.lru[page] = None
        self.evictions -= len(pages)

    def fifo_evictions(self, n_pages: int) -> int:
        """How many pages touch() pushes out while pages 0..n_pages-1 are charged once
        each, in order, into an empty cgroup: the first reclaim comes with page
        `capacity`, then one every reclaim_batch pages, each taking a whole batch."""
        if n_pages <= self.capacity:
            return 0
        return self.reclaim_batch * ((n_pages - 1 - self.capacity) // self.reclaim_batch + 1)

    @property
    def resident_pages(self) -> int:
        return len(self.lru) + self.unlisted
