"""xvmalloc: the zram/zcache allocator of Linux 3.1, simulated block for block.

Follows drivers/staging/zram/xvmalloc.c and xvmalloc_int.h of Linux 3.1 (Nitin Gupta,
2008-2010), as specified in ../shared/spec/xvmalloc.md (§3).  It is the allocator that
xcfmalloc replaced in the 2011 zcache patches, and the reference the seed table compares
against.

Page layout
-----------
A pool page is a chain of blocks that tile it exactly.  Every block, used or free, starts
with a 4-byte header; the object (or the free space) follows it:

    0                                                                        4096
    | h | object A       | h | object B | h | free ...            | h | obj C |
      '- u16 size, u16 prev (little endian)

    size   used block: the caller's unaligned size (xv_get_object_size returns it);
           free block: its payload in bytes, always a multiple of 4
    prev   page offset of the physically previous block.  Offsets are multiples of 4,
           so its two low bits hold the flags BLOCK_FREE (bit 0) and PREV_FREE (bit 1).

A used object costs align4(size) + 4 bytes of its page and never crosses a page boundary;
XV_MAX_ALLOC_SIZE is therefore 4092.  A fresh page is one free block of payload 4092.

Free lists
----------
508 LIFO lists, 8 bytes apart.  A free block of payload p goes on list
index_for_insert(p) = (floor8(p) - 32) / 8, so list i holds payloads 32+8i .. 39+8i (list
507 also 4088..4092).  A request of s bytes starts at index_for_request(s) =
(align8(max(s, 32)) - 32) / 8, the first list whose every block is big enough, and takes
the head of the lowest non-empty list at or above it: an approximate best fit that never
looks at a block's size.  The kernel finds that list through a two-level bitmap (one word
saying which words of list bits are non-zero); here a single int has bit i set while list i
is non-empty and the lowest set bit at or above the start index answers the same question.

Free payloads below XV_MIN_ALLOC_SIZE (32) go on no list.  Such fragments (even of payload
0, a bare header) still carry BLOCK_FREE and are recovered only when a neighbour is freed.

Allocation and free
-------------------
xv_malloc takes the block found, and whatever it leaves after align4(size) + 4 bytes becomes
a new free block (listed if its payload is >= 32).  When no list can serve, it grows the
pool by one page first, and then searches again.  A request of 4089..4092 bytes aligns to
4092 and maps to list 508, which does not exist: it grows the pool, still fails, and the new
page stays in the pool as a free 4092 block.  Size 0 and sizes above 4092 fail at once.

xv_free merges the block with a free neighbour on either side (so no two free blocks are
ever adjacent) and releases the page at once when the merged block covers all of it; there
is no reserve of empty pages.

Accounting
----------
pool_pages() is total_pages, i.e. xv_get_total_size_bytes() >> PAGE_SHIFT, every page the
pool owns however empty, and zcache's zv_page_count for the xvmalloc rows of the seed table
(zcache-2011.md §1.4).  pages_held() is the same number.  The xv_pool struct (bitmaps and
508 list heads, kzalloc'd and rounded up to a page) is not counted by the kernel, so
metadata_bytes() is 0.

Architectures
-------------
A listed free block keeps its list links (struct link_free: 12 bytes on i386, 24 on
x86-64, at block offset 4 resp. 8) inside its payload, which is never smaller than 32 when
the links are written.  The arch therefore changes no decision: i386 and x86-64 account
identically, as the kernel's own answers on the reference traces show.  The links are not
modelled in the page buffers.

Representation
--------------
An address is page_id * 4096 + offset, a plain int.  A handle is the object's address,
i.e. the block's address + 4, exactly the <page, offset> pair xv_malloc returns.  The
state is three dicts, the lists and one int: used blocks (handle -> requested size), free blocks
(address -> payload), free blocks by end address (end -> address, which is how a freed
block finds a free predecessor: the kernel's PREV_FREE flag), the 508 lists (dicts in
insertion order, so popitem() is the LIFO head and del unlinks anywhere), and the list
bitmap.  With store=True every page also has a bytearray(4096) holding the objects'
bytes after their headers and the real 4-byte headers, updated the way the kernel updates
them; check() compares those headers with the dicts.
"""

from __future__ import annotations

import struct
from typing import Any

from xcfbench.sim.allocators.base import Allocator, need_store, register
from xcfbench.sim.arch import I386, PAGE_SHIFT, PAGE_SIZE, Arch

XV_ALIGN = 4
XV_MIN_ALLOC_SIZE = 32
XV_MAX_ALLOC_SIZE = PAGE_SIZE - XV_ALIGN  # 4092
FL_DELTA = 8
NUM_FREE_LISTS = (XV_MAX_ALLOC_SIZE - XV_MIN_ALLOC_SIZE) // FL_DELTA + 1  # 508

BLOCK_FREE = 1 << 0
PREV_FREE = 1 << 1
FLAGS_MASK = XV_ALIGN - 1

_OFFSET_MASK = PAGE_SIZE - 1
_TOP_LIST = NUM_FREE_LISTS - 1
_HEADER = struct.Struct("<HH")


def index_for_insert(size: int) -> int:
    """The list a free block of this payload goes on (get_index_for_insert)."""
    return (min(size, XV_MAX_ALLOC_SIZE) & ~(FL_DELTA - 1)) - XV_MIN_ALLOC_SIZE >> 3


def index_for_request(size: int) -> int:
    """The first list whose every block fits size bytes (get_index); 508 for 4089..4092."""
    size = max(size, XV_MIN_ALLOC_SIZE)
    return (size + FL_DELTA - 1 & ~(FL_DELTA - 1)) - XV_MIN_ALLOC_SIZE >> 3


def objects_per_page(size: int) -> int:
    """How many objects of one size fill a page when allocated one after another (§3.8).

    The k+1-th object fits while the free payload left, 4092 - k * (align4(size) + 4), still
    reaches its request list, i.e. is at least align8(max(align4(size), 32))."""
    if not 0 < size <= XV_MAX_ALLOC_SIZE:
        return 0
    s4 = size + 3 & ~3
    need = max(s4, XV_MIN_ALLOC_SIZE) + 7 & ~7
    if need > XV_MAX_ALLOC_SIZE:
        return 0
    return (XV_MAX_ALLOC_SIZE - need) // (s4 + XV_ALIGN) + 1


@register
class XvMalloc(Allocator):
    name = "xvmalloc"
    aliases = ("xv",)
    summary = "Linux 3.1 zram/zcache allocator: 4-byte block headers, 508 LIFO free lists"
    objects_span_pages = False
    supports_compaction = False

    __slots__ = (
        "max_alloc_size",
        "_used",
        "_free",
        "_free_end",
        "_lists",
        "_bitmap",
        "_total_pages",
        "_spare_ids",
        "_next_id",
        "_pages",
    )

    def __init__(self, arch: Arch = I386, store: bool = False, **options: Any) -> None:
        super().__init__(arch, store, **options)
        # 4092 is the largest size xv_malloc accepts; 4089..4092 still fail (see above).
        self.max_alloc_size = XV_MAX_ALLOC_SIZE
        self._used: dict[int, int] = {}  # handle -> size as requested
        self._free: dict[int, int] = {}  # block address -> payload
        self._free_end: dict[int, int] = {}  # address just past a free block -> its address
        self._lists: list[dict[int, None]] = [{} for _ in range(NUM_FREE_LISTS)]
        self._bitmap = 0  # bit i: list i is non-empty
        self._total_pages = 0
        self._spare_ids: list[int] = []  # ids of released pages, reused first
        self._next_id = 0
        self._pages: dict[int, bytearray] = {}  # page id -> contents, store=True only

    # -- pages -----------------------------------------------------------------------------
    def _grow_pool(self) -> int:
        """grow_pool(): one new page holding one free block of 4092; return its address.

        The caller lists the block (on list 507) only if it does not take it at once."""
        spare = self._spare_ids
        if spare:
            page = spare.pop()
        else:
            page = self._next_id
            self._next_id = page + 1
        self._total_pages += 1
        if self.store:
            buf = self._pages[page] = bytearray(PAGE_SIZE)
            _HEADER.pack_into(buf, 0, XV_MAX_ALLOC_SIZE, BLOCK_FREE)
        return page << PAGE_SHIFT

    def _release_page(self, addr: int) -> None:
        page = addr >> PAGE_SHIFT
        self._spare_ids.append(page)
        self._total_pages -= 1
        if self.store:
            del self._pages[page]

    # -- xv_malloc / xv_free -----------------------------------------------------------------
    def malloc(self, size: int) -> int | None:
        if size <= 0 or size > XV_MAX_ALLOC_SIZE:
            return None
        need = size + 3 & -4
        index = (need - 25) >> 3 if need > XV_MIN_ALLOC_SIZE else 0
        m = self._bitmap >> index
        if m:
            index += (m & -m).bit_length() - 1
            lst = self._lists[index]
            addr = lst.popitem()[0]
            if not lst:
                self._bitmap ^= 1 << index
            payload = self._free.pop(addr)
            end = addr + XV_ALIGN + payload
            if payload == need:  # exact fit: no remainder
                del self._free_end[end]
                self._used[addr + XV_ALIGN] = size
                if self.store:
                    self._malloc_headers(addr, size, end, None)
                return addr + XV_ALIGN
        else:
            # The kernel grows before it knows whether any list could serve the request:
            # 4089..4092 maps to list 508, which does not exist, and leaves the page behind.
            addr = self._grow_pool()
            if index > _TOP_LIST:
                self._free[addr] = XV_MAX_ALLOC_SIZE
                self._free_end[addr + PAGE_SIZE] = addr
                self._lists[_TOP_LIST][addr] = None
                self._bitmap |= 1 << _TOP_LIST
                return None
            # Otherwise list 507 was empty, so the search after growing finds this block.
            payload = XV_MAX_ALLOC_SIZE
            end = addr + PAGE_SIZE
        # The remainder, header included, becomes the free block after the object.
        handle = addr + XV_ALIGN
        tail = handle + need
        rest = payload - need - XV_ALIGN
        self._free[tail] = rest
        self._free_end[end] = tail
        if rest >= XV_MIN_ALLOC_SIZE:
            i = (rest - XV_MIN_ALLOC_SIZE) >> 3
            lst = self._lists[i]
            if not lst:  # spare the big-int op when set
                self._bitmap |= 1 << i
            lst[tail] = None
        self._used[handle] = size
        if self.store:
            self._malloc_headers(addr, size, end, rest)
        return handle

    def free(self, handle: int) -> None:
        try:
            size = self._used.pop(handle)
        except KeyError:
            raise ValueError(
                f"xvmalloc: free of {handle:#x}, which is not a live object"
                " (the kernel BUG()s on a double free)"
            ) from None
        if self.store:
            self._check_header(handle - XV_ALIGN, size, False)
        free = self._free
        free_end = self._free_end
        lists = self._lists
        addr = handle - XV_ALIGN
        payload = size + 3 & -4
        end = handle + payload
        if end & _OFFSET_MASK:
            npayload = free.pop(end, None)
            if npayload is not None:  # merge the next block
                if npayload >= XV_MIN_ALLOC_SIZE:
                    i = (npayload - XV_MIN_ALLOC_SIZE) >> 3
                    lst = lists[i]
                    del lst[end]
                    if not lst:
                        self._bitmap ^= 1 << i
                payload += npayload + XV_ALIGN
                end += npayload + XV_ALIGN  # free_end[end] is rewritten below
        if addr & _OFFSET_MASK:
            prev = free_end.pop(addr, None)
            if prev is not None:  # PREV_FREE: merge into the previous
                ppayload = free.pop(prev)
                if ppayload >= XV_MIN_ALLOC_SIZE:
                    i = (ppayload - XV_MIN_ALLOC_SIZE) >> 3
                    lst = lists[i]
                    del lst[prev]
                    if not lst:
                        self._bitmap ^= 1 << i
                payload += ppayload + XV_ALIGN
                addr = prev
        if payload == XV_MAX_ALLOC_SIZE:  # the page is empty: release it now
            free_end.pop(end, None)
            self._release_page(addr)
            return
        free[addr] = payload
        free_end[end] = addr
        if payload >= XV_MIN_ALLOC_SIZE:
            i = (payload - XV_MIN_ALLOC_SIZE) >> 3
            lst = lists[i]
            if not lst:
                self._bitmap |= 1 << i
            lst[addr] = None
        if self.store:
            self._free_headers(addr, payload, end)

    # -- the in-page headers, store=True only ------------------------------------------------
    # These repeat the kernel's header updates on the page bytes, independently of the dicts
    # above, so that check() can compare the two and a stray write shows up.
    def _malloc_headers(self, addr: int, size: int, end: int, tail_payload: int | None) -> None:
        buf = self._pages[addr >> PAGE_SHIFT]
        off = addr & _OFFSET_MASK
        end_off = end & _OFFSET_MASK  # 0: the block ended the page
        _, prev = _HEADER.unpack_from(buf, off)
        if tail_payload is not None:
            tail_off = off + XV_ALIGN + (size + 3 & -4)
            _HEADER.pack_into(buf, tail_off, tail_payload, off | BLOCK_FREE)
            if end_off:
                nsize, nprev = _HEADER.unpack_from(buf, end_off)
                _HEADER.pack_into(buf, end_off, nsize, tail_off | nprev & FLAGS_MASK)
        elif end_off:
            nsize, nprev = _HEADER.unpack_from(buf, end_off)
            _HEADER.pack_into(buf, end_off, nsize, nprev & ~PREV_FREE)
        _HEADER.pack_into(buf, off, size, prev & ~BLOCK_FREE)

    def _free_headers(self, addr: int, payload: int, end: int) -> None:
        buf = self._pages[addr >> PAGE_SHIFT]
        off = addr & _OFFSET_MASK
        _, prev = _HEADER.unpack_from(buf, off)
        _HEADER.pack_into(buf, off, payload, prev | BLOCK_FREE)
        end_off = end & _OFFSET_MASK
        if end_off:
            nsize, nprev = _HEADER.unpack_from(buf, end_off)
            _HEADER.pack_into(buf, end_off, nsize, off | nprev & FLAGS_MASK | PREV_FREE)

    def _check_header(self, addr: int, size: int, is_free: bool) -> int:
        """Assert the header at addr says (size, BLOCK_FREE = is_free); return its prev word."""
        hsize, prev = _HEADER.unpack_from(self._pages[addr >> PAGE_SHIFT], addr & _OFFSET_MASK)
        assert hsize == size and bool(prev & BLOCK_FREE) == is_free, (
            f"xvmalloc: header at {addr:#x} is (size {hsize}, prev {prev:#x}),"
            f" expected size {size}, {'free' if is_free else 'used'}"
        )
        return prev

    # -- object bytes ------------------------------------------------------------------------
    def write(self, handle: int, data: bytes) -> None:
        need_store(self)
        size = self._used[handle]
        if len(data) != size:
            raise ValueError(f"xvmalloc: writing {len(data)} bytes into a {size}-byte object")
        off = handle & _OFFSET_MASK
        self._pages[handle >> PAGE_SHIFT][off : off + size] = data

    def read(self, handle: int) -> bytes:
        need_store(self)
        size = self._used[handle]
        off = handle & _OFFSET_MASK
        return bytes(self._pages[handle >> PAGE_SHIFT][off : off + size])

    def object_size(self, handle: int) -> int:
        """xv_get_object_size(): the size that was requested."""
        return self._used[handle]

    # -- accounting --------------------------------------------------------------------------
    def pool_pages(self) -> int:
        return self._total_pages

    def pages_held(self) -> int:
        return self._total_pages

    def stats(self) -> dict[str, Any]:
        listed = [p for p in self._free.values() if p >= XV_MIN_ALLOC_SIZE]
        return {
            "free_blocks_listed": len(listed),
            "free_bytes_listed": sum(listed),
            # Payload of free blocks under 32 bytes: on no list, lost until a neighbour frees.
            "fragment_bytes": sum(self._free.values()) - sum(listed),
        }

    def metadata_bytes(self) -> int:
        return 0  # the xv_pool struct is not in total_pages, and not counted here

    # -- invariants --------------------------------------------------------------------------
    def check(self) -> None:
        used, free, free_end = self._used, self._free, self._free_end
        # Every page holds at least one block, so the blocks name the pages.
        page_ids = {a >> PAGE_SHIFT for a in free} | {h >> PAGE_SHIFT for h in used}
        assert self._total_pages == len(page_ids), "a page holds no block"
        assert not page_ids & set(self._spare_ids)
        if self.store:
            assert set(self._pages) == page_ids
        blocks = 0
        for page in sorted(page_ids):
            base = page << PAGE_SHIFT
            off = 0
            prev_off = 0
            prev_free = False
            while off < PAGE_SIZE:
                addr = base + off
                if addr + XV_ALIGN in used:
                    assert addr not in free, f"block {addr:#x} both used and free"
                    size = used[addr + XV_ALIGN]
                    payload = size + 3 & -4
                    is_free = False
                else:
                    assert addr in free, f"page {page}: no block at offset {off}"
                    size = payload = free[addr]
                    is_free = True
                    assert not prev_free, f"free blocks at {prev_off} and {off} not merged"
                    assert payload % XV_ALIGN == 0
                    assert free_end.get(addr + XV_ALIGN + payload) == addr
                    if payload >= XV_MIN_ALLOC_SIZE:
                        assert addr in self._lists[index_for_insert(payload)], (
                            f"free block {addr:#x} ({payload}) not on its list"
                        )
                if self.store:
                    prev = self._check_header(addr, size, is_free)
                    assert prev & ~FLAGS_MASK == prev_off, f"block {addr:#x}: wrong prev"
                    assert bool(prev & PREV_FREE) == prev_free, f"block {addr:#x}: PREV_FREE"
                prev_off, prev_free = off, is_free
                off += XV_ALIGN + payload
                blocks += 1
            assert off == PAGE_SIZE, f"page {page}: blocks overrun the page ({off})"
        assert blocks == len(used) + len(free), "blocks outside the pool's pages"
        assert len(free_end) == len(free)
        listed = 0
        for i, lst in enumerate(self._lists):
            assert bool(lst) == bool(self._bitmap >> i & 1), f"bitmap bit {i} is stale"
            for addr in lst:
                assert index_for_insert(free.get(addr, 0)) == i and free[addr] >= 32, (
                    f"list {i} holds {addr:#x}, which does not belong there"
                )
            listed += len(lst)
        assert listed == sum(1 for p in free.values() if p >= XV_MIN_ALLOC_SIZE)
        assert self._bitmap >> NUM_FREE_LISTS == 0
