"""zbud: two compressed objects ("buddies") per page.

Follows Linux 6.12.117 mm/zbud.c (zbud was merged for zswap in v3.11 and removed in v6.15).

A zbud page is divided into 64 chunks of 64 bytes (NCHUNKS_ORDER 6).  The first chunk
holds the zbud header, so NCHUNKS = 63 chunks are left for objects:

    +--------+------------------+ - - - free - - - +------------------+
    | header | FIRST buddy ...  |                    |  ... LAST buddy  |
    +--------+------------------+ - - - - - - - - - +------------------+
    0        64                                                     4096

The FIRST buddy is left-aligned right after the header, the LAST buddy right-aligned at
the end of the page, so that whatever is freed coalesces with the slack in between.  An
object occupies ceil(size / 64) chunks; the largest that fits next to a one-chunk buddy
is PAGE - header - 64 = 3968 bytes, and zbud_alloc refuses anything larger (-ENOSPC) and
a size of 0 (-EINVAL).

Free lists: unbuddied[i] (i = 1..62) holds the pages with exactly one buddy and i free
chunks; pages with both buddies sit on the "buddied" list (the kernel overlays it on
unbuddied[0], which is never searched).  zbud_alloc takes the head of the first non-empty
unbuddied[i] with i >= the object's chunks, else a new page; the page then goes back to
the head of unbuddied[free chunks] or onto buddied.  zbud_free re-files the page the same
way, or frees it when both buddies are gone.

Counted: pool_pages() = pages_nr, the pages holding a header (zbud_get_pool_pages; zswap
reports it as pool_total_size).  zbud keeps no metadata outside its pages.

The LRU list and zbud_reclaim_page() are not modelled: a trace never evicts.
"""

from __future__ import annotations

from typing import Any, ClassVar

from xcfbench.sim.allocators.base import Allocator, need_store, register
from xcfbench.sim.arch import I386, PAGE_SIZE, Arch

CHUNK_SHIFT = 6
CHUNK_SIZE = 1 << CHUNK_SHIFT  # PAGE_SIZE >> NCHUNKS_ORDER
ZHDR_SIZE_ALIGNED = CHUNK_SIZE  # the header takes the first chunk
NCHUNKS = (PAGE_SIZE - ZHDR_SIZE_ALIGNED) >> CHUNK_SHIFT  # 63
MAX_ALLOC_SIZE = PAGE_SIZE - ZHDR_SIZE_ALIGNED - CHUNK_SIZE  # 3968

FIRST, LAST = 0, 1
BUDDIED = 0  # list index of a full page (unbuddied[0])
HEADER_FILL = 0x5A  # what store=True writes into headers


@register
class Zbud(Allocator):
    name = "zbud"
    summary = (
        "zbud (Linux 3.11-6.14 mm/zbud.c): two buddies per page, objects up to "
        "3968 B; removed in v6.15"
    )
    options: ClassVar[dict[str, Any]] = {}

    def __init__(self, arch: Arch = I386, store: bool = False) -> None:
        super().__init__(arch, store)
        self.max_alloc_size = MAX_ALLOC_SIZE
        # Per page id: chunks of each buddy (0 = free) and the list the page is on
        # (its free-chunk count, BUDDIED, or -1 when the id is not in use).
        self._first: list[int] = []
        self._last: list[int] = []
        self._on_list: list[int] = []
        self._free_ids: list[int] = []
        # unbuddied[i]: dict used as a stack, its last key is the list head.
        self._unbuddied: list[dict[int, None]] = [{} for _ in range(NCHUNKS)]
        self._nonempty = 0  # bit i set <=> unbuddied[i] is not empty
        self._pages_nr = 0
        self._buddied_nr = 0
        self._bufs: list[bytearray | None] = []
        self._sizes: dict[int, int] = {}

    # -- zpool operations -------------------------------------------------------------------
    def malloc(self, size: int) -> int | None:
        if size <= 0 or size > MAX_ALLOC_SIZE:
            return None
        chunks = (size + CHUNK_SIZE - 1) >> CHUNK_SHIFT
        first, last = self._first, self._last
        candidates = self._nonempty >> chunks
        if candidates:
            i = chunks + (candidates & -candidates).bit_length() - 1
            lst = self._unbuddied[i]
            page = lst.popitem()[0]
            if not lst:
                self._nonempty ^= 1 << i
            if first[page] == 0:
                bud = FIRST
                first[page] = chunks
            else:
                bud = LAST
                last[page] = chunks
        else:
            page = self._new_page()
            bud = FIRST
            first[page] = chunks
        if first[page] and last[page]:
            self._on_list[page] = BUDDIED
            self._buddied_nr += 1
        else:
            free = NCHUNKS - first[page] - last[page]
            self._unbuddied[free][page] = None
            self._nonempty |= 1 << free
            self._on_list[page] = free
        handle = page << 1 | bud
        if self.store:
            self._sizes[handle] = size
        return handle

    def free(self, handle: int) -> None:
        page = handle >> 1
        first, last, on_list = self._first, self._last, self._on_list
        if handle & 1:
            last[page] = 0
        else:
            first[page] = 0
        # Off its current list...
        i = on_list[page]
        if i == BUDDIED:
            self._buddied_nr -= 1
        else:
            lst = self._unbuddied[i]
            del lst[page]
            if not lst:
                self._nonempty ^= 1 << i
        # ...and onto the list of its new free-chunk count, unless it is empty now.
        free = NCHUNKS - first[page] - last[page]
        if free == NCHUNKS:
            on_list[page] = -1
            self._free_ids.append(page)
            self._pages_nr -= 1
            if self.store:
                self._bufs[page] = None
        else:
            self._unbuddied[free][page] = None
            self._nonempty |= 1 << free
            on_list[page] = free
        if self.store:
            del self._sizes[handle]

    def _new_page(self) -> int:
        self._pages_nr += 1
        if self._free_ids:
            page = self._free_ids.pop()
        else:
            page = len(self._first)
            self._first.append(0)
            self._last.append(0)
            self._on_list.append(-1)
            self._bufs.append(None)
        if self.store:
            buf = bytearray(PAGE_SIZE)
            buf[:ZHDR_SIZE_ALIGNED] = bytes([HEADER_FILL]) * ZHDR_SIZE_ALIGNED
            self._bufs[page] = buf
        return page

    # -- storage ------------------------------------------------------------------------------
    def _offset(self, handle: int) -> int:
        if handle & 1:
            return PAGE_SIZE - (self._last[handle >> 1] << CHUNK_SHIFT)
        return ZHDR_SIZE_ALIGNED

    def write(self, handle: int, data: bytes) -> None:
        need_store(self)
        if len(data) > self._sizes[handle]:
            raise ValueError(f"zbud: {len(data)} bytes into a {self._sizes[handle]}-byte object")
        off = self._offset(handle)
        buf = self._bufs[handle >> 1]
        assert buf is not None  # a live handle's page has its buffer
        buf[off : off + len(data)] = data

    def read(self, handle: int) -> bytes:
        need_store(self)
        off = self._offset(handle)
        size = self._sizes[handle]
        buf = self._bufs[handle >> 1]
        assert buf is not None  # a live handle's page has its buffer
        return bytes(buf[off : off + size])

    # -- accounting ---------------------------------------------------------------------------
    def pool_pages(self) -> int:
        return self._pages_nr

    pages_held = pool_pages

    def stats(self) -> dict[str, Any]:
        return {
            "nchunks": NCHUNKS,
            "buddied_pages": self._buddied_nr,
            "unbuddied_pages": self._pages_nr - self._buddied_nr,
        }

    def check(self) -> None:
        pages = buddied = 0
        for page, i in enumerate(self._on_list):
            if i < 0:
                assert page in self._free_ids, f"page {page} lost"
                continue
            pages += 1
            first, last = self._first[page], self._last[page]
            assert first or last, f"empty page {page} kept"
            assert first + last <= NCHUNKS, (
                f"page {page}: buddies overlap ({first} + {last} chunks)"
            )
            if first and last:
                assert i == BUDDIED, f"full page {page} on unbuddied[{i}]"
                buddied += 1
            else:
                assert i == NCHUNKS - first - last, f"page {page} on unbuddied[{i}]"
                assert page in self._unbuddied[i], f"page {page} missing from its list"
            if self.store:
                buf = self._bufs[page]
                assert buf is not None, f"page {page} in use without a buffer"
                hdr = buf[:ZHDR_SIZE_ALIGNED]
                assert hdr == bytes([HEADER_FILL]) * ZHDR_SIZE_ALIGNED, (
                    f"page {page}: header overwritten"
                )
        assert pages == self._pages_nr, f"pages_nr {self._pages_nr} != {pages} pages in use"
        assert buddied == self._buddied_nr
        assert sum(map(len, self._unbuddied)) == pages - buddied
        for i, lst in enumerate(self._unbuddied):
            assert bool(lst) == bool(self._nonempty >> i & 1), f"bitmap wrong for list {i}"
        if self.store:
            for handle, size in self._sizes.items():
                page = handle >> 1
                chunks = self._last[page] if handle & 1 else self._first[page]
                assert size <= chunks << CHUNK_SHIFT, f"handle {handle}: {size} B > buddy"
