"""xcfmalloc: the 2011 scatter-gather allocator proposed for zcache, plus its compaction.

Source: Seth Jennings, "staging: zcache: xcfmalloc memory allocator for zcache" (v2, Sep 2011,
against Linux 3.1-rc4; never merged).  Only v1's drivers/staging/zcache/xcfmalloc.c
survives; v2 changed one test in find_remove_block (below).  Behaviour follows
../shared/spec/xcfmalloc.md §2 and zcache-2011.md §1.4 and §5.

Page layout
-----------
A pool page (4 KiB, __GFP_HIGHMEM) is tiled by *blocks*.  Each block is a multiple of 64 bytes
and starts on a 64-byte boundary.  Every block, used or free, begins with an in-page header:

        struct xcf_blkhdr { desc; prevoffset; sentinel }	12 bytes on i386 (8 without
                                                                XCFM_DEBUG), 16 on x86_64

The blocks of a page form a list: forward by the block size kept in the descriptor, backward
by prevoffset (the page offset of the physically previous block; 0 for the first block).  An
allocation's bytes follow the header of each of its blocks:

        0      12                          1216  1228          2048  2060        4096
        | hdr | A, part 1 ................ | hdr | free ...... | hdr | B .. pad  |
                                                   ^ on free list 12 (832 bytes)

Descriptors and free lists
--------------------------
Each block has a descriptor outside the page (struct xcf_blkdesc, from a slab of 24-byte
objects on i386 and 32-byte objects on x86_64): page, offset|flags, size, next, prev.  A free
block's descriptor is on one of 64 doubly linked LIFO lists.  List i holds free blocks of
exactly (i+1)*64 bytes; list 63 holds whole free pages, the "reserve".  For a used block,
next/prev chain the blocks of one allocation in order, at most XCF_MAX_BLOCKS_PER_ALLOC = 2
of them.  The handle is the first descriptor.  A used block's size counts the bytes it really
uses, header included, so the last block of an allocation records an unaligned size.

Allocation (find_remove_block) tries three lists in turn:
1. the best-fit list: take its head;
2. for the first block only (v2), the largest smaller list, f down to 1.  This lets an
   allocation span two blocks anywhere in the pool;
3. the smallest larger list, up to the reserve (list 63).
Only the last block is split, and the remainder goes back on its list.  The surviving v1
text scans smaller lists only for the *second* block.  That scan is never reached, so a v1
allocation is always one block (rule="v1").

The reserve drives pool growth.  Every malloc starts by topping list 63 up to 32 whole free
pages.  Every free ends by releasing the surplus above 32, head of list 63 first.  A freed
block merges with its free physical neighbours, in its own page only.  A page goes back to
the kernel only when its blocks have coalesced into one 4096-byte free block.

What is counted where
---------------------
        pool_pages()     = page_count - reserve_count  (zcache's zv_page_count)
        pages_held()     = page_count                  (reserve pages included)
        stats desc_count = desc_count - reserve_count  (zv_desc_count, as reference.json has it)
        metadata_bytes() = zv_desc_count * arch.xcf_desc_slab: the descriptor slab objects that
                           the seed's effective-compression formula adds to the pool pages
                           (§5.1).  The formula leaves out the descriptors of reserve pages,
                           just as it leaves out the reserve pages themselves.

Simulator representation
------------------------
A descriptor is a small int (0 is NULL).  Its fields are parallel lists: _slot (page * 64 +
offset / 64, so page and offset are one int), _size, _next and _prev (free-list or chain
links), _used.  The in-page headers are represented by two more links per descriptor, _pp
and _pn: the physically previous and next block in the same page, 0 at either end.  _pp is
exactly what prevoffset points at, and _pn is the block at offset + size, so merging reads
the same neighbours as the kernel.  Arrays sized by descriptors stay small.  Arrays of 64
header slots per page would cost more time and memory than the allocator itself.  A 64-bit
mask of non-empty free lists turns every list scan into one bit operation.

With store=True every page is also a bytearray.  It holds the real headers (the descriptor
id standing in for the pointer, prevoffset, 0xdeadbeef) and the objects' bytes, exactly where
xcf_write() puts them.  check() compares those headers with the metadata.

Compaction (not in 2011: "NOTE: Compaction is not yet implemented")
--------------------------------------------------------------------
The design rests on relocatable blocks.  Callers hold descriptors, never addresses, so a
block may move as long as its descriptor follows it.  compact() does that in five steps:

1. Census.  For every non-reserve page, count u (bytes in used blocks) and
   room (the bytes in its free blocks of 128 bytes or more: smaller holes only take tiny
   objects).
2. Sources.  Sort the pages by (u, page) ascending, sparsest first.  The first K pages are
   the sources.  K is the largest count whose used bytes fit in the room of the other
   pages.  (Splits need a few more bytes; a shortfall is covered by step 3's reserve
   fallback, and allowing a header per block instead gave the same pages.)  Every source's
   free blocks come off the free lists ("isolated"), so nothing is ever moved onto a page
   that is about to be emptied.
3. Moves, source by source, block by block in address order.
   * If the block's allocation has its other block on a kept page, the block moves alone,
     into the best-fit (else the smallest larger) free block.
   * Otherwise the whole allocation is re-placed by the v2 rule: best fit; else the largest
     smaller free block, filled completely, plus a best-fit block for the rest; else the
     smallest larger block.  A one-block allocation may become two blocks (one more
     descriptor and header); a two-block allocation may become one.  Never more than two.
   * A free reserve page is used only when the kept pages have no room, and only while at
     least two are left.  It takes the blocks of the page being emptied, and then of the
     following sources, so a run of sparse pages packs into few fresh ones.  (Without this
     fallback the phase-change workloads ended 6-10% higher.)
   Moving swaps places (page, offset, size, neighbours) between the moving descriptor and
   the descriptor of the free block it lands in.  The handle, the first descriptor, stays
   valid, and the descriptor count changes only through splits and merges.
4. Re-tiling.  Each source page's free blocks coalesce; an emptied page becomes one
   4096-byte block on list 63.  If a source cannot be emptied, it keeps its remaining
   blocks and the pass stops; the sources not yet reached are re-tiled untouched.
5. Passes repeat while they free pages, at most max_compact_passes.  Finally the reserve
   is trimmed to reserve_pages, exactly as decrease_pool does after a free.

Cost: each moved block copies its payload once (compact_bytes_moved counts those bytes).
Sparse pages go first, so each freed page costs as few bytes as possible.

Termination: every move goes to a kept page or a reserve page, never to a source, so a
block moves at most once per pass.  A pass that frees no page ends compaction.  Pool pages
do not grow.  They could only grow if a source were left half-emptied after a reserve page
had been taken for it, which needs the reserve to run dry within one page; the tests'
state machine, with reserves of 1 to 3 pages, checks that compact() never returns less
than 0.

compact() returns the drop in zv_page_count.
"""

from __future__ import annotations

import struct
import time
from typing import Any, ClassVar

from xcfbench.errors import InputError
from xcfbench.sim.allocators.base import Allocator, need_store, register
from xcfbench.sim.arch import I386, PAGE_SIZE, Arch

BLOCK_SHIFT = 6  # XCF_BLOCK_SHIFT: 64-byte blocks
BLOCK_ALIGN = 1 << BLOCK_SHIFT
SLOTS_PER_PAGE = PAGE_SIZE >> BLOCK_SHIFT  # = XCF_NUM_FREELISTS = 64
RESERVED_INDEX = SLOTS_PER_PAGE - 1  # list 63: whole free pages
MAX_RESERVE_PAGES = 32  # XCF_MAX_RESERVE_PAGES
MAX_BLOCKS_PER_ALLOC = 2  # XCF_MAX_BLOCKS_PER_ALLOC
SENTINEL = 0xDEADBEEF
MIN_HOLE = 2 * BLOCK_ALIGN  # the smaller-block scan stops at list 1
FALLBACK_MIN_RESERVE = 2  # compaction leaves the reserve >= 1 page


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        low = value.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise InputError(f"xcfmalloc: not a boolean: {value!r}")
    return bool(value)


# Upper bounds of the numeric options, so that a typo cannot make a run take all memory
# or all night: 65536 pages is a 256 MiB pool; 1000 compaction passes is far past the point
# where a pass frees nothing.
MAX_OPTION_PAGES = 65536
MAX_COMPACT_PASSES = 1000


def _as_int(value: Any, name: str, minimum: int, maximum: int) -> int:
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise InputError(f"xcfmalloc option {name} must be an integer, got {value!r}") from None
    if not minimum <= n <= maximum:
        raise InputError(f"xcfmalloc option {name} must be {minimum}..{maximum}, got {n}")
    return n


@register
class XcfMalloc(Allocator):
    """xcfmalloc v2 (with the find_remove_block fix); see the module docstring."""

    name = "xcfmalloc"
    aliases: ClassVar[tuple[str, ...]] = ("xcf",)
    summary = (
        "2011 scatter-gather allocator for zcache: 64-byte blocks, 64 LIFO free lists,"
        " allocations of up to 2 blocks anywhere in the pool, 32 reserve pages"
    )
    objects_span_pages = True
    supports_compaction = True
    options = {
        # "v2": smaller blocks are considered for the first block (the reconstructed v2 fix,
        # spec §2.5 [INFERENCE]); "v1": only for the second, as the surviving text reads.
        "rule": "v2",
        # XCFM_DEBUG: a 4-byte sentinel in every block header (spec §2.2 [ASSUMPTION]).
        "debug": True,
        # XCF_MAX_RESERVE_PAGES: whole free pages kept on list 63 (the only source of new
        # pages, so at least 1).
        "reserve_pages": MAX_RESERVE_PAGES,
        # Pages the page allocator will hand out (None: unlimited).  Simulates alloc_page()
        # failing under GFP_NOWAIT, which is what makes xcf_malloc's undo path reachable.
        "max_pages": None,
        # At most this many compaction passes; each pass after the first runs only if the
        # previous one freed a page.
        "max_compact_passes": 4,
    }
    default_rule = "v2"

    __slots__ = (
        "rule",
        "debug",
        "hdr",
        "reserve_pages",
        "max_pages",
        "max_compact_passes",
        "reserve_count",
        "page_count",
        "desc_count",
        "_first_smaller",
        "_second_smaller",
        "_heads",
        "_mask",
        "_slot",
        "_size",
        "_next",
        "_prev",
        "_used",
        "_pp",
        "_pn",
        "_spare_descs",
        "_first",
        "_mem",
        "_page_live",
        "_isolated",
        "_spare_pages",
        "_npages",
        "_hdr_fmt",
        "_sentinel_at",
        "compact_pages_freed",
        "compact_bytes_moved",
        "compact_blocks_moved",
        "compact_passes",
        "compact_seconds",
    )

    def __init__(
        self,
        arch: Arch = I386,
        store: bool = False,
        *,
        rule: str | None = None,
        debug: Any = True,
        reserve_pages: Any = MAX_RESERVE_PAGES,
        max_pages: Any = None,
        max_compact_passes: Any = 4,
    ) -> None:
        super().__init__(arch, store)
        rule = self.default_rule if rule is None else str(rule).lower()
        if rule not in ("v1", "v2"):
            raise InputError(f"xcfmalloc rule must be 'v1' or 'v2', got {rule!r}")
        if "rule" not in self.options and rule != self.default_rule:
            raise InputError(f"{self.name} always uses rule {self.default_rule}")
        self.rule = rule
        self.debug = _as_bool(debug)
        self.hdr = arch.xcf_blkhdr if self.debug else arch.xcf_blkhdr_no_debug
        self.max_alloc_size = PAGE_SIZE - self.hdr  # MAX_ALLOC_SIZE
        self.reserve_pages = _as_int(reserve_pages, "reserve_pages", 1, MAX_OPTION_PAGES)
        self.max_pages = (
            None
            if max_pages in (None, "", "none", "None")
            else _as_int(max_pages, "max_pages", 0, 1 << 40)
        )
        self.max_compact_passes = _as_int(
            max_compact_passes, "max_compact_passes", 1, MAX_COMPACT_PASSES
        )
        # find_remove_block(size, blocknum) scans the smaller lists when blocknum != MAX (v2)
        # or blocknum == MAX (v1); decided here once per block number.
        self._first_smaller = rule == "v2"
        self._second_smaller = rule == "v1"

        self.reserve_count = 0
        self.page_count = 0
        self.desc_count = 0
        self._heads = [0] * SLOTS_PER_PAGE
        self._mask = 0
        # Descriptor fields, index 0 being NULL.
        self._slot = [0]
        self._size = [0]
        self._next = [0]
        self._prev = [0]
        self._used = [0]
        self._pp = [0]
        self._pn = [0]
        self._spare_descs: list[int] = []
        # Page fields.  _first: the descriptor at offset 0 (malloc and free never change it).
        self._first: list[int] = []
        self._mem: list[bytearray | None] = []
        self._page_live: list[bool] = []
        self._isolated: list[bool] = []
        self._spare_pages: list[int] = []
        self._npages = 0
        ptr = "I" if arch.sizeof_long == 4 else "Q"
        fmt = "<" + ptr + "i" + ("I" if self.debug else "")
        pad = self.hdr - struct.calcsize(fmt)
        self._hdr_fmt = struct.Struct(fmt + (f"{pad}x" if pad else ""))
        self._sentinel_at = arch.sizeof_long + 4

        self.compact_pages_freed = 0
        self.compact_bytes_moved = 0
        self.compact_blocks_moved = 0
        self.compact_passes = 0
        self.compact_seconds = 0.0

        self._increase_pool()  # xcf_create_pool

    # -- descriptors and pages -------------------------------------------------------------
    # Descriptor and page ids come from LIFO stacks of spare ids.  The arrays grow in chunks,
    # so the hot paths only ever pop.
    def _grow_descs(self) -> None:
        old = len(self._slot)
        n = max(256, old >> 1)
        zeros = [0] * n
        for field in (
            self._slot,
            self._size,
            self._next,
            self._prev,
            self._used,
            self._pp,
            self._pn,
        ):
            field += zeros
        self._spare_descs.extend(range(old + n - 1, old - 1, -1))

    def _grow_pages(self) -> None:
        old = self._npages
        n = max(64, old >> 1)
        self._first += [0] * n
        self._mem += [None] * n
        self._page_live += [False] * n
        self._isolated += [False] * n
        self._spare_pages.extend(range(old + n - 1, old - 1, -1))
        self._npages = old + n

    def _alloc_desc(self) -> int:
        if not self._spare_descs:
            self._grow_descs()
        self.desc_count += 1
        return self._spare_descs.pop()

    def _free_desc(self, d: int) -> None:
        self._spare_descs.append(d)
        self.desc_count -= 1

    def _put_hdr(self, d: int) -> None:
        """Write block d's header into its page (store=True only)."""
        slot = self._slot[d]
        p = self._pp[d]
        prevoffset = (self._slot[p] & 63) << 6 if p else 0
        buf = self._mem[slot >> 6]
        assert buf is not None  # a block's page is live, so it has bytes
        if self.debug:
            self._hdr_fmt.pack_into(buf, (slot & 63) << 6, d, prevoffset, SENTINEL)
        else:
            self._hdr_fmt.pack_into(buf, (slot & 63) << 6, d, prevoffset)

    def _clear_sentinel(self, slot: int) -> None:
        """CLEAR_SENTINEL on the header of a block that a merge has absorbed."""
        if self.debug:
            at = ((slot & 63) << 6) + self._sentinel_at
            buf = self._mem[slot >> 6]
            assert buf is not None
            buf[at : at + 4] = bytes(4)

    # -- free lists ---------------------------------------------------------------------------
    # malloc() and free() inline these three for speed; compaction calls them.
    def _insert_block(self, d: int) -> None:
        """insert_block: realign the size, mark FREE, push on the list of that size."""
        size = (self._size[d] + BLOCK_ALIGN - 1) & -BLOCK_ALIGN
        self._size[d] = size
        i = (size >> BLOCK_SHIFT) - 1
        if i == RESERVED_INDEX:
            self.reserve_count += 1
        head = self._heads[i]
        self._next[d] = head
        self._prev[d] = 0
        if head:
            self._prev[head] = d
        else:
            self._mask |= 1 << i
        self._heads[i] = d
        self._used[d] = 0

    def _remove_block(self, d: int) -> None:
        """remove_block: unlink a free block from anywhere in its list."""
        i = (self._size[d] >> BLOCK_SHIFT) - 1
        if i == RESERVED_INDEX:
            self.reserve_count -= 1
        p, n = self._prev[d], self._next[d]
        if p:
            self._next[p] = n
        else:
            self._heads[i] = n
            if not n:
                self._mask &= ~(1 << i)
        if n:
            self._prev[n] = p
        self._next[d] = self._prev[d] = 0

    def _find_remove_block(self, size: int, smaller: bool, top: int = RESERVED_INDEX) -> int:
        """find_remove_block (spec §2.5) for size payload bytes, on lists <= top.

        smaller: whether this block may be the largest smaller one.  Returns the
        descriptor, unlinked, or 0."""
        f = ((size + self.hdr + BLOCK_ALIGN - 1) >> BLOCK_SHIFT) - 1
        mask = self._mask & ((2 << top) - 1)
        if mask >> f & 1:
            i = f  # best fit
        else:
            i = -1
            if smaller:  # lists f..1, largest first
                m = mask & ((2 << f) - 2)
                if m:
                    i = m.bit_length() - 1
            if i < 0:  # smallest larger
                m = mask >> (f + 1)
                if not m:
                    return 0
                i = f + (m & -m).bit_length()
        d = self._heads[i]
        self._remove_block(d)
        return d

    # -- pool management --------------------------------------------------------------------
    def _increase_pool(self) -> None:
        """Top list 63 up to reserve_pages whole free pages (start of every malloc)."""
        deficit = self.reserve_pages - self.reserve_count
        if self.max_pages is not None:
            # alloc_page() fails: the descriptor just taken is freed and the loop stops
            deficit = min(deficit, self.max_pages - self.page_count)
        if deficit <= 0:
            return
        heads, nxt, prv = self._heads, self._next, self._prev
        for _ in range(deficit):
            if not self._spare_descs:
                self._grow_descs()
            d = self._spare_descs.pop()
            if not self._spare_pages:
                self._grow_pages()
            p = self._spare_pages.pop()
            self._page_live[p] = True
            self._first[p] = d
            self._slot[d] = p << 6
            self._size[d] = PAGE_SIZE
            self._used[d] = 0
            self._pp[d] = self._pn[d] = 0
            head = heads[RESERVED_INDEX]  # insert_block on list 63
            nxt[d] = head
            prv[d] = 0
            if head:
                prv[head] = d
            heads[RESERVED_INDEX] = d
            if self.store:
                self._mem[p] = bytearray(PAGE_SIZE)
                self._put_hdr(d)
        self._mask |= 1 << RESERVED_INDEX
        self.desc_count += deficit
        self.page_count += deficit
        self.reserve_count += deficit

    def _decrease_pool(self) -> None:
        """Release whole free pages above reserve_pages, head of list 63 first."""
        for _ in range(self.reserve_count - self.reserve_pages):
            d = self._heads[RESERVED_INDEX]
            self._remove_block(d)
            p = self._slot[d] >> 6
            self._page_live[p] = False
            self._mem[p] = None
            self._spare_pages.append(p)
            self.page_count -= 1
            self._free_desc(d)

    # -- malloc / free -----------------------------------------------------------------------
    def malloc(self, size: int) -> int | None:
        """xcf_malloc: the first descriptor of the allocation, or None.

        find_remove_block, remove_block, the split and insert_block are inlined."""
        if size > self.max_alloc_size or size < 0:
            return None
        if self.reserve_count < self.reserve_pages:
            self._increase_pool()
        hdr = self.hdr
        heads = self._heads
        nxt = self._next
        prv = self._prev
        sz = self._size
        mask = self._mask
        need = size + hdr
        f = ((need + 63) >> 6) - 1
        d = heads[f]
        if not d:  # no best fit
            m = mask & ((2 << f) - 2) if self._first_smaller else 0
            if m:  # largest smaller: lists f..1
                f = m.bit_length() - 1
            else:  # smallest larger
                m = mask >> (f + 1)
                if not m:
                    return None
                f += (m & -m).bit_length()
            d = heads[f]
        n = nxt[d]  # pop the head of list f
        heads[f] = n
        if n:
            prv[n] = 0
        else:
            mask &= ~(1 << f)
        nxt[d] = 0
        if f == RESERVED_INDEX:
            self.reserve_count -= 1
        used = self._used
        used[d] = 1
        last = d
        bsize = sz[d]
        if bsize < need:  # d is used whole; find a second block
            size -= bsize - hdr
            need = size + hdr
            f = ((need + 63) >> 6) - 1
            last = heads[f]
            if not last:
                m = mask & ((2 << f) - 2) if self._second_smaller else 0
                if m:
                    f = m.bit_length() - 1
                else:
                    m = mask >> (f + 1)
                    if not m:  # undo: re-insert the first block, no merge
                        self._mask = mask
                        self._insert_block(d)
                        return None
                    f += (m & -m).bit_length()
                last = heads[f]
            n = nxt[last]
            heads[f] = n
            if n:
                prv[n] = 0
            else:
                mask &= ~(1 << f)
            if f == RESERVED_INDEX:
                self.reserve_count -= 1
            bsize = sz[last]
            if bsize < need:  # v1 never gets here; v2 never scans smaller
                raise AssertionError("xcfmalloc: a third block would be needed")
            used[last] = 1
            nxt[d] = last
            prv[last] = d
            nxt[last] = 0
        aneed = (need + 63) & -64
        if bsize > aneed:  # split the last block
            spare = self._spare_descs
            if not spare:
                self._grow_descs()
            s = spare.pop()
            self.desc_count += 1
            slots = self._slot
            slots[s] = slots[last] + (aneed >> 6)
            rem = bsize - aneed
            sz[s] = rem
            used[s] = 0
            pn, pp = self._pn, self._pp
            after = pn[last]
            pn[s] = after
            pp[s] = last
            pn[last] = s
            if after:
                pp[after] = s
            i = (rem >> 6) - 1  # insert_block: never list 63
            head = heads[i]
            nxt[s] = head
            prv[s] = 0
            if head:
                prv[head] = s
            else:
                mask |= 1 << i
            heads[i] = s
            if self.store:
                self._put_hdr(s)
                if after:
                    self._put_hdr(after)
        sz[last] = need  # a used block records its real byte use
        self._mask = mask
        return d

    def _split(self, d: int, aneed: int, bsize: int) -> None:
        """Cut the free remainder beyond aneed bytes off block d (of bsize bytes)."""
        s = self._alloc_desc()
        self._slot[s] = self._slot[d] + (aneed >> 6)
        self._size[s] = bsize - aneed
        pn, pp = self._pn, self._pp
        after = pn[d]
        pn[s] = after
        pp[s] = d
        pn[d] = s
        if after:
            pp[after] = s
        self._insert_block(s)
        if self.store:
            self._put_hdr(s)
            if after:
                self._put_hdr(after)

    def free(self, handle: int) -> None:
        """xcf_free: free each block of the chain and merge it with its free neighbours in
        the page (merge_free_block, remove_block and insert_block inlined), then trim the
        reserve."""
        sz = self._size
        used = self._used
        pp = self._pp
        pn = self._pn
        heads = self._heads
        nxt = self._next
        prv = self._prev
        spare = self._spare_descs
        store = self.store
        mask = self._mask
        d = handle
        for _ in range(MAX_BLOCKS_PER_ALLOC):
            if not d:
                break
            chained = nxt[d]
            used[d] = 0
            size = (sz[d] + 63) & -64
            p = pp[d]
            q = pn[d]
            if p and not used[p]:  # merge into the previous block
                psize = sz[p]
                i = (psize >> 6) - 1
                a, b = prv[p], nxt[p]
                if a:
                    nxt[a] = b
                else:
                    heads[i] = b
                    if not b:
                        mask &= ~(1 << i)
                if b:
                    prv[b] = a
                size += psize
                spare.append(d)
                self.desc_count -= 1
                if store:
                    self._clear_sentinel(self._slot[d])
                d = p
            if q and not used[q]:  # absorb the next block
                qsize = sz[q]
                i = (qsize >> 6) - 1
                a, b = prv[q], nxt[q]
                if a:
                    nxt[a] = b
                else:
                    heads[i] = b
                    if not b:
                        mask &= ~(1 << i)
                if b:
                    prv[b] = a
                size += qsize
                spare.append(q)
                self.desc_count -= 1
                if store:
                    self._clear_sentinel(self._slot[q])
                q = pn[q]
            pn[d] = q  # the block after us points back at us
            if q:
                pp[q] = d
                if store:
                    self._put_hdr(q)
            sz[d] = size
            i = (size >> 6) - 1  # insert_block
            if i == RESERVED_INDEX:
                self.reserve_count += 1
            head = heads[i]
            nxt[d] = head
            prv[d] = 0
            if head:
                prv[head] = d
            else:
                mask |= 1 << i
            heads[i] = d
            d = chained
        self._mask = mask
        if self.reserve_count > self.reserve_pages:
            self._decrease_pool()

    # -- object bytes ------------------------------------------------------------------------
    def _chain(self, handle: int) -> list[int]:
        n = self._next[handle]
        return [handle, n] if n else [handle]

    def alloc_size(self, handle: int) -> int:
        """xcf_get_alloc_size: the payload bytes of the chain, i.e. the requested size."""
        return sum(self._size[d] - self.hdr for d in self._chain(handle))

    def write(self, handle: int, data: bytes) -> None:
        """xcf_write: scatter data into the blocks, each part just after its header."""
        need_store(self)
        if len(data) != self.alloc_size(handle):
            raise ValueError(
                f"xcfmalloc: write of {len(data)} bytes into an allocation of "
                f"{self.alloc_size(handle)}"
            )
        hdr = self.hdr
        at = 0
        for d in self._chain(handle):
            n = self._size[d] - hdr
            slot = self._slot[d]
            start = ((slot & 63) << 6) + hdr
            buf = self._mem[slot >> 6]
            assert buf is not None
            buf[start : start + n] = data[at : at + n]
            at += n

    def read(self, handle: int) -> bytes:
        """xcf_read: gather the allocation's bytes from its blocks."""
        need_store(self)
        hdr = self.hdr
        parts = []
        for d in self._chain(handle):
            slot = self._slot[d]
            start = ((slot & 63) << 6) + hdr
            buf = self._mem[slot >> 6]
            assert buf is not None
            parts.append(buf[start : start + self._size[d] - hdr])
        return b"".join(parts)

    # -- accounting ----------------------------------------------------------------------------
    def pool_pages(self) -> int:
        """zv_page_count = xcf_get_total_size_bytes() >> PAGE_SHIFT: reserve excluded."""
        return self.page_count - self.reserve_count

    def pages_held(self) -> int:
        return self.page_count

    def metadata_bytes(self) -> int:
        """Descriptor slab bytes as the seed counts them: zv_desc_count (reserve-page
        descriptors left out, like the reserve pages) times the slab object size, the
        zv_desc_count * 24 of the cover letter's formula on i386 (§5.1)."""
        return (self.desc_count - self.reserve_count) * self.arch.xcf_desc_slab

    def stats(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "block_header_bytes": self.hdr,
            "desc_count": self.desc_count - self.reserve_count,  # zv_desc_count
            "desc_count_total": self.desc_count,
            "reserve_count": self.reserve_count,
            "page_count": self.page_count,
            "zv_page_count": self.page_count - self.reserve_count,
            "zv_desc_count": self.desc_count - self.reserve_count,
            "compact_pages_freed": self.compact_pages_freed,
            "compact_bytes_moved": self.compact_bytes_moved,
            "compact_blocks_moved": self.compact_blocks_moved,
            "compact_passes": self.compact_passes,
        }

    # -- compaction ----------------------------------------------------------------------------
    def _page_blocks(self, p: int) -> list[int]:
        """The descriptors of page p's blocks, in address order."""
        pn = self._pn
        out = []
        d = self._first[p]
        while d:
            out.append(d)
            d = pn[d]
        return out

    def compact(self) -> int:
        """Empty sparse pages into the free blocks of dense ones (see the module
        docstring); return the drop in pool pages (zv_page_count)."""
        t0 = time.perf_counter()
        before = self.pool_pages()
        for _ in range(self.max_compact_passes):
            self.compact_passes += 1
            start = self.pool_pages()
            self._compact_pass()
            if self.pool_pages() >= start:
                break
        if self.reserve_count > self.reserve_pages:
            self._decrease_pool()
        freed = before - self.pool_pages()
        self.compact_pages_freed += freed
        self.compact_seconds += time.perf_counter() - t0
        return freed

    def _compact_pass(self) -> None:
        sz, used = self._size, self._used
        census = []  # (used bytes, page, bytes in free blocks >= 128)
        for p in range(self._npages):
            if not self._page_live[p]:
                continue
            live = room = 0
            for d in self._page_blocks(p):
                if used[d]:
                    live += (sz[d] + 63) & -64
                elif sz[d] >= MIN_HOLE:
                    room += sz[d]
            if live:
                census.append((live, p, room))
        census.sort()
        # The largest K whose used bytes fit into the room left on the other pages.
        room_left = sum(c[2] for c in census)
        demand = 0
        k = 0
        for live, _p, room in census:
            demand += live
            room_left -= room
            if demand > room_left:
                break
            k += 1
        sources = [c[1] for c in census[:k]]
        for p in sources:  # isolate
            self._isolated[p] = True
            for d in self._page_blocks(p):
                if not used[d]:
                    self._remove_block(d)
        for n, p in enumerate(sources):
            ok = self._evacuate(p)
            self._retile(p)
            if not ok:
                for q in sources[n + 1 :]:
                    self._retile(q)
                break

    def _evacuate(self, p: int) -> bool:
        slot_of, used = self._slot, self._used
        for d in [d for d in self._page_blocks(p) if used[d]]:
            # d may already have left, with the other block of its allocation.
            if used[d] and slot_of[d] >> 6 == p:
                if not self._relocate(d):
                    return False
        return True

    def _take(self, payload: int, top: int) -> list[int] | None:
        """Used blocks for payload bytes on lists <= top, by the v2 rule; None if no room."""
        hdr = self.hdr
        first = self._find_remove_block(payload, True, top)
        if not first:
            return None
        self._used[first] = 1
        bsize = self._size[first]
        if bsize >= payload + hdr:
            self._finish_block(first, payload + hdr)
            return [first]
        rest = payload - (bsize - hdr)
        second = self._find_remove_block(rest, False, top)
        if not second:
            self._insert_block(first)
            return None
        self._used[second] = 1
        self._finish_block(second, rest + hdr)
        return [first, second]

    def _take_one(self, need: int, top: int) -> int:
        """One used block of need bytes (header included) on lists <= top, or 0."""
        d = self._find_remove_block(need - self.hdr, False, top)
        if d:
            self._used[d] = 1
            self._finish_block(d, need)
        return d

    def _finish_block(self, d: int, need: int) -> None:
        aneed = (need + 63) & -64
        bsize = self._size[d]
        if bsize > aneed:
            self._split(d, aneed, bsize)
        self._size[d] = need

    def _swap_places(self, a: int, b: int) -> None:
        """Exchange the blocks that descriptors a and b describe: page, offset, size and
        physical neighbours (a and b may be neighbours)."""
        slot_of, sz, pp, pn = self._slot, self._size, self._pp, self._pn
        sa, sb = slot_of[a], slot_of[b]
        slot_of[a], slot_of[b] = sb, sa
        sz[a], sz[b] = sz[b], sz[a]

        def other(x: int) -> int:
            return b if x == a else a if x == b else x

        around = {pp[a], pn[a], pp[b], pn[b]} - {0, a, b}
        pp[a], pn[a], pp[b], pn[b] = other(pp[b]), other(pn[b]), other(pp[a]), other(pn[a])
        for x in around:
            pp[x] = other(pp[x])
            pn[x] = other(pn[x])
        if not sa & 63:
            self._first[sa >> 6] = b
        if not sb & 63:
            self._first[sb >> 6] = a
        if self.store:
            for x in (a, b, *around):
                self._put_hdr(x)

    def _release(self, d: int) -> None:
        """Free the block d now describes.  On an isolated page it waits for _retile."""
        if self._isolated[self._slot[d] >> 6]:
            self._used[d] = 0
            self._size[d] = (self._size[d] + 63) & -64
        else:
            self.free(d)  # d was taken as a single block: its chain link is NULL

    def _relocate(self, d: int) -> bool:
        """Move the allocation holding block d off d's page; False if there is no room."""
        hdr = self.hdr
        nxt, prv, sz = self._next, self._prev, self._size
        h = prv[d] or d
        chain = self._chain(h)
        store = self.store
        if len(chain) == 2:
            other = chain[1] if d == h else h
            if not self._isolated[self._slot[other] >> 6]:
                t = self._take_one(sz[d], RESERVED_INDEX - 1)
                if t:  # d moves alone, its size unchanged
                    data = self._block_bytes(d) if store else b""
                    self._swap_places(d, t)
                    if store:
                        self._set_block_bytes(d, data)
                    self._release(t)
                    self.compact_blocks_moved += 1
                    self.compact_bytes_moved += sz[d] - hdr
                    return True
        payload = sum(sz[c] - hdr for c in chain)
        new = self._take(payload, RESERVED_INDEX - 1)
        if not new and self.reserve_count >= FALLBACK_MIN_RESERVE:
            new = self._take(payload, RESERVED_INDEX)  # a reserve page as the destination
        if not new:
            return False
        data = self.read(h) if store else b""
        members = []
        released = []
        for i, t in enumerate(new):
            if i < len(chain):  # chain[i] moves into t's block
                self._swap_places(chain[i], t)
                members.append(chain[i])
                released.append(t)
            else:  # a second block: t joins the chain
                members.append(t)
        if len(chain) > len(new):
            released.append(chain[1])
        nxt[h] = prv[h] = 0
        if len(members) == 2:
            nxt[h] = members[1]
            prv[members[1]] = h
            nxt[members[1]] = 0
        if store:
            self.write(h, data)
        for t in released:
            self._release(t)
        self.compact_blocks_moved += len(chain)
        self.compact_bytes_moved += payload
        return True

    def _block_bytes(self, d: int) -> bytes:
        slot = self._slot[d]
        start = ((slot & 63) << 6) + self.hdr
        buf = self._mem[slot >> 6]
        assert buf is not None
        return bytes(buf[start : start + self._size[d] - self.hdr])

    def _set_block_bytes(self, d: int, data: bytes) -> None:
        slot = self._slot[d]
        start = ((slot & 63) << 6) + self.hdr
        buf = self._mem[slot >> 6]
        assert buf is not None
        buf[start : start + len(data)] = data

    def _retile(self, p: int) -> None:
        """Coalesce the free blocks of an isolated page and put them on the free lists."""
        sz, used, pp, pn = self._size, self._used, self._pp, self._pn
        run = 0  # the free block being extended
        for d in self._page_blocks(p):
            if used[d]:
                if run:
                    self._insert_block(run)
                    run = 0
            elif run:  # run absorbs d
                sz[run] += sz[d]
                after = pn[d]
                pn[run] = after
                if after:
                    pp[after] = run
                    if self.store:
                        self._put_hdr(after)
                if self.store:
                    self._clear_sentinel(self._slot[d])
                self._free_desc(d)
            else:
                run = d
        if run:
            self._insert_block(run)
        self._isolated[p] = False

    # -- invariants ------------------------------------------------------------------------------
    def check(self) -> None:
        hdr = self.hdr
        sz, used, slot_of, nxt, prv, pp, pn = (
            self._size,
            self._used,
            self._slot,
            self._next,
            self._prev,
            self._pp,
            self._pn,
        )
        spare_descs = set(self._spare_descs)
        assert len(spare_descs) == len(self._spare_descs), "descriptor freed twice"
        on_lists: dict[int, int] = {}
        for i, head in enumerate(self._heads):
            assert bool(head) == bool(self._mask >> i & 1), f"mask bit {i} wrong"
            back = 0
            d = head
            while d:
                assert d not in on_lists, f"descriptor {d} on two lists, or a cycle"
                assert prv[d] == back, f"list {i}: broken prev link at {d}"
                assert not used[d], f"list {i}: used block {d}"
                assert sz[d] == (i + 1) * BLOCK_ALIGN, f"list {i}: block {d} of {sz[d]} bytes"
                on_lists[d] = i
                back = d
                d = nxt[d]
        reserve = sum(1 for i in on_lists.values() if i == RESERVED_INDEX)
        assert reserve == self.reserve_count, (reserve, self.reserve_count)
        spare_pages = set(self._spare_pages)
        seen_free = set()
        descs = pages = 0
        for p in range(self._npages):
            if not self._page_live[p]:
                assert p in spare_pages, f"page {p} neither live nor spare"
                continue
            assert not self._isolated[p], f"page {p} left isolated"
            pages += 1
            off = 0
            back = 0
            prev_free = False
            d = self._first[p]
            while d:
                assert d not in spare_descs, f"page {p} offset {off}: dead descriptor {d}"
                assert slot_of[d] == (p << 6) + (off >> 6), f"page {p}: block {d} misplaced"
                assert pp[d] == back, f"page {p}: bad prevoffset link at {off}"
                if self.store:
                    buf = self._mem[p]
                    assert buf is not None, f"live page {p} without bytes"
                    fields = self._hdr_fmt.unpack_from(buf, off)
                    want: tuple[int, ...] = (d, (slot_of[back] & 63) << 6 if back else 0)
                    if self.debug:
                        want += (SENTINEL,)
                    assert fields == want, f"page {p}: header bytes at {off}: {fields} {want}"
                size = sz[d]
                descs += 1
                if used[d]:
                    assert hdr <= size <= PAGE_SIZE - off, f"used block {d} of {size} bytes"
                    n, b = nxt[d], prv[d]
                    assert not (n and b), f"allocation of more than 2 blocks at {d}"
                    if n:
                        assert used[n] and prv[n] == d and not nxt[n], f"chain at {d}"
                        assert size % BLOCK_ALIGN == 0, f"non-last block {d} not full"
                    if b:
                        assert used[b] and nxt[b] == d and not prv[b], f"chain at {d}"
                    prev_free = False
                else:
                    assert on_lists.get(d) == (size >> BLOCK_SHIFT) - 1, f"free {d} off list"
                    assert not prev_free, f"page {p}: adjacent free blocks at {off}"
                    seen_free.add(d)
                    prev_free = True
                back = d
                off += (size + 63) & -64
                d = pn[d]
            assert off == PAGE_SIZE, f"page {p}: blocks cover {off} bytes"
        assert seen_free == set(on_lists), "free-list blocks that are in no page"
        assert pages == self.page_count, (pages, self.page_count)
        assert descs == self.desc_count, (descs, self.desc_count)
        assert descs + len(spare_descs) == len(slot_of) - 1, "descriptors lost"


@register
class XcfMallocV1(XcfMalloc):
    """The verbatim v1 text: smaller blocks only for the second block, so never spanning."""

    name = "xcfmalloc-v1"
    aliases = ("xcf-v1", "xcfmalloc-v1src")
    summary = (
        "xcfmalloc as the surviving 2011 text reads (find_remove_block blocknum =="
        " MAX): every allocation is one block"
    )
    options = {k: v for k, v in XcfMalloc.options.items() if k != "rule"}
    default_rule = "v1"
    __slots__ = ()
