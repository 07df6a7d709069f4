"""z3fold: up to three compressed objects per page, plus "headless" pages.

Follows Linux 6.12.117 mm/z3fold.c (merged 2016, deprecated in 6.12, removed in v6.15),
with the pool's deferred work run the way the reference build ran it: after every
operation (option deferred="each-op").

Page layout.  A page is 64 chunks of 64 bytes.  The z3fold header (struct z3fold_header,
rounded up to whole chunks: ZHDR_SIZE_ALIGNED = 64 bytes on i386, 128 on x86_64, taken
from Arch.z3fold_zhdr) comes first, leaving NCHUNKS = 63 or 62 chunks for objects:

    +--------+-----------+ - - +------------+ - - +-----------+
    | header | FIRST ... |     | MIDDLE ... |     | ... LAST  |
    +--------+-----------+ - - +------------+ - - +-----------+
    0      ZHDR                start_middle                 4096

FIRST is left-aligned after the header, LAST right-aligned at the end, MIDDLE starts at
chunk start_middle, which is first_chunks + ZHDR_CHUNKS when it is placed (FIRST and LAST
both taken).  An object occupies ceil(size / 64) chunks.  An object larger than
PAGE - ZHDR - 64 bytes (3968 on i386, 3904 on x86_64) gets a "headless" page of its own,
with no header; above PAGE_SIZE z3fold_alloc fails with -ENOSPC, size 0 with -EINVAL.

Free lists.  unbuddied[i] (i < NCHUNKS; one array per CPU in the kernel, one CPU here)
holds the pages with a free buddy, filed by num_free_chunks(): NCHUNKS - first - last
without a middle object, else the larger gap beside the middle one that can still take a
buddy.  Pages are always added at the head.  z3fold_alloc takes the head of the first
non-empty unbuddied[chunks..NCHUNKS-1] (the "other CPUs, exact size" pass finds nothing
more with one CPU), puts the object in FIRST if free (and, with a middle object, if it
fits before it), else LAST, else MIDDLE, and re-files the page unless all three buddies
are used; full pages are on no list.

Freeing and the deferred work.  z3fold_free clears the buddy.  A page whose last object
goes is released at once (pages_nr drops; the page itself is returned to the system by
the pool's release work).  Otherwise the page is marked NEEDS_COMPACTING and compacted
by do_compact_page(): synchronously if the page was full (it belongs to no CPU), else by a
work item queued on its CPU.  do_compact_page takes the page off its list, then
  * if one object is left and no "foreign" handle points into the page, moves that
    object into another unbuddied page (compact_single_buddy, found as z3fold_alloc
    would, without creating a page) and releases this one;
  * otherwise slides the middle object: to the start if it is alone (it becomes FIRST),
    next to FIRST if LAST is free, or next to LAST if FIRST is free, the latter two only
    when that gains at least BIG_CHUNK_GAP = 3 chunks;
and re-files the page at the head of its list.

Handles.  A handle points into a per-page "slots" structure (from a kmem_cache, not
counted in pages_nr).  When compact_single_buddy moves an object, its handle stays in the
old page's slots, so the new page counts it in foreign_handles; a page with foreign
handles never has its last object moved out.  Here a handle is an int index into
_h_page (its current page); the page's h_first/h_middle/h_last say which buddy it is, and
the set _moved holds the handles that are foreign where they live.  Both are updated when
an object moves.

Deferred work.  With deferred="each-op" a queued compaction runs before the free
returns, exactly as if the workqueue ran right after the operation; with "never" it stays
queued until run_deferred_work(), and meanwhile the page keeps NEEDS_COMPACTING and the
extra page reference the queued work holds: z3fold_alloc drops such a page from its list
when it meets it, a second free on it queues nothing, and if its last object goes it
stays counted until the work runs and releases it.

Counted: pool_pages() = pages_nr (z3fold_get_pool_size), headless pages included.
stats(): zhdr_size_aligned, nchunks and work_items_run: the work items run, i.e. the
queued compactions (not the synchronous ones of full pages) plus one run of the pool's
page-release work after each operation that released a page; the reference reports the
same count (42356 on i386, 41525 on x86_64 for churn.trace).
Not modelled: page migration, mapping (a trace's map is always unmapped before the next
operation, so MIDDLE_CHUNK_MAPPED is never seen set), reclaim.
"""

from __future__ import annotations

from typing import Any, ClassVar

from xcfbench.errors import InputError
from xcfbench.sim.allocators.base import Allocator, need_store, register
from xcfbench.sim.arch import I386, PAGE_SIZE, Arch

CHUNK_SHIFT = 6
CHUNK_SIZE = 1 << CHUNK_SHIFT
TOTAL_CHUNKS = PAGE_SIZE >> CHUNK_SHIFT  # 64
BIG_CHUNK_GAP = 3

HEADLESS, FIRST, MIDDLE, LAST = 0, 1, 2, 3
HEADER_FILL = 0x3F  # what store=True writes into headers

DEFERRED_MODES = ("each-op", "never")


class _Z3Page:
    """One pool page: the fields of struct z3fold_header the allocator decides with.

    The defaults are class attributes, so that a new page costs one small object; each
    instance overrides what changes."""

    first = middle = last = 0  # chunks of each buddy, 0 = free
    start_middle = 0  # chunk where the middle buddy starts
    foreign = 0  # foreign_handles: objects moved in from other pages
    refs = 1  # kref: one per object, one per queued compaction
    lst = -1  # index of the unbuddied list it is on, -1 for none
    cpu = -1  # -1 until add_to_unbuddied files it on "this" CPU
    compacting = False  # the NEEDS_COMPACTING page flag
    headless = False
    h_first = h_middle = h_last = 0  # the handle of each buddy, 0 = none
    buf: bytearray | None = None


@register
class Z3fold(Allocator):
    name = "z3fold"
    summary = (
        "z3fold (Linux 4.8-6.14 mm/z3fold.c): three buddies per page, headless "
        "pages, deferred in-page compaction; removed in v6.15"
    )
    options: ClassVar[dict[str, Any]] = {"deferred": "each-op"}

    def __init__(self, arch: Arch = I386, store: bool = False, deferred: str = "each-op") -> None:
        """deferred: when the queued compaction work items run.  "each-op" (the
        reference): right after the free that queued them.  "never": they stay queued;
        the pages concerned stay marked NEEDS_COMPACTING, which makes z3fold_alloc skip
        them and keeps a page whose last object is freed counted, until
        run_deferred_work() is called."""
        super().__init__(arch, store)
        if deferred not in DEFERRED_MODES:
            raise InputError(
                f"z3fold: option deferred must be one of "
                f"{', '.join(DEFERRED_MODES)}, not {deferred!r}"
            )
        self.deferred = deferred
        self._each_op = deferred == "each-op"
        self.zhdr_size = arch.z3fold_zhdr
        self.zhdr_chunks = self.zhdr_size >> CHUNK_SHIFT
        self.nchunks = TOTAL_CHUNKS - self.zhdr_chunks
        self.headless_over = PAGE_SIZE - self.zhdr_size - CHUNK_SIZE
        self.max_alloc_size = PAGE_SIZE
        self._unbuddied: list[dict[_Z3Page, None]] = [{} for _ in range(self.nchunks)]
        self._nonempty = 0  # bit i set <=> unbuddied[i] is not empty
        self._pages_nr = 0
        # A handle is an index into _h_page (0 is never used: the kernel's "no handle");
        # the page's h_first/h_middle/h_last say which buddy it is.
        self._h_page: list[_Z3Page | None] = [None]
        self._h_size: dict[int, int] = {}  # object sizes, kept with store=True only
        self._free_handles: list[int] = []
        self._moved: set[int] = set()  # handles whose object was moved to a new page
        self._queue: list[_Z3Page] = []  # compaction work items not yet run
        self._release_queued = False  # the pool's page-release work is pending
        self.work_items_run = 0

    # -- z3fold_alloc ---------------------------------------------------------------------------
    def malloc(self, size: int) -> int | None:
        if size <= 0 or size > PAGE_SIZE:
            return None
        h_page = self._h_page
        free_handles = self._free_handles
        handle = free_handles.pop() if free_handles else len(h_page)
        page: _Z3Page | None
        if size > self.headless_over:
            page = self._new_page()
            page.headless = True
        else:
            chunks = (size + CHUNK_SIZE - 1) >> CHUNK_SHIFT
            page = self._take_unbuddied(chunks) if self._nonempty >> chunks else None
            if page is None:
                page = self._new_page()
                page.first = chunks
                page.h_first = handle
                free = self.nchunks - chunks
                # add_to_unbuddied() of a page holding one object, inline: it is hot
                self._unbuddied[free][page] = None
                self._nonempty |= 1 << free
                page.lst = free
                page.cpu = 0
            else:
                page.refs += 1
                self._place(page, chunks, handle)
                self._add_to_unbuddied(page)
        if handle == len(h_page):
            h_page.append(page)
        else:
            h_page[handle] = page
        if self.store:
            self._h_size[handle] = size
        return handle

    def _new_page(self) -> _Z3Page:
        page = _Z3Page()
        self._pages_nr += 1
        if self.store:
            page.buf = bytearray(PAGE_SIZE)
            page.buf[: self.zhdr_size] = bytes([HEADER_FILL]) * self.zhdr_size
        return page

    def _take_unbuddied(self, chunks: int) -> _Z3Page | None:
        """__z3fold_alloc: the head of the first non-empty unbuddied[chunks..], off its list."""
        while True:
            candidates = self._nonempty >> chunks
            if not candidates:
                return None
            i = chunks + (candidates & -candidates).bit_length() - 1
            lst = self._unbuddied[i]
            page = lst.popitem()[0]
            if not lst:
                self._nonempty ^= 1 << i
            page.lst = page.cpu = -1
            if not page.compacting:
                return page
            # A page waiting for its compaction work is dropped from the lists and the
            # search starts over (only possible with deferred="never").

    def _place(self, page: _Z3Page, chunks: int, handle: int) -> int:
        """get_free_buddy() for a page from unbuddied[>= chunks], and fill that buddy."""
        if page.middle:
            if not page.first and chunks <= page.start_middle - self.zhdr_chunks:
                page.first = chunks
                page.h_first = handle
                return FIRST
            if page.last:
                raise AssertionError("z3fold: unbuddied page has no room")  # cannot be
        elif not page.first:
            page.first = chunks
            page.h_first = handle
            return FIRST
        elif page.last:
            page.middle = chunks
            page.start_middle = page.first + self.zhdr_chunks
            page.h_middle = handle
            return MIDDLE
        page.last = chunks
        page.h_last = handle
        return LAST

    def _num_free_chunks(self, page: _Z3Page) -> int:
        if page.middle:
            before = 0 if page.first else page.start_middle - self.zhdr_chunks
            after = 0 if page.last else TOTAL_CHUNKS - page.start_middle - page.middle
            return before if before > after else after
        return self.nchunks - page.first - page.last

    def _add_to_unbuddied(self, page: _Z3Page) -> None:
        """File the page at the head of unbuddied[free chunks], unless it is full."""
        if page.first and page.middle and page.last:
            return
        free = self._num_free_chunks(page)
        self._unbuddied[free][page] = None
        self._nonempty |= 1 << free
        page.lst = free
        page.cpu = 0

    def _list_del(self, page: _Z3Page) -> None:
        i = page.lst
        if i >= 0:
            lst = self._unbuddied[i]
            del lst[page]
            if not lst:
                self._nonempty ^= 1 << i
            page.lst = -1

    # -- z3fold_free ----------------------------------------------------------------------------
    def free(self, handle: int) -> None:
        page = self._h_page[handle]
        self._h_page[handle] = None
        self._free_handles.append(handle)
        if self.store:
            del self._h_size[handle]
        assert page is not None  # the handle was live
        if page.headless:
            self._pages_nr -= 1
            return
        if page.h_first == handle:
            page.first = page.h_first = 0
        elif page.h_last == handle:
            page.last = page.h_last = 0
        else:
            page.middle = page.h_middle = 0
        if handle in self._moved:
            self._moved.remove(handle)
            page.foreign -= 1
        page.refs -= 1
        if page.refs == 0:
            self._list_del(page)
            self._release(page)
        elif page.compacting:
            return
        else:
            page.compacting = True
            page.refs += 1
            if page.cpu < 0:
                # A full page belongs to no CPU's lists: z3fold_free compacts it itself.
                self._do_compact_page(page)
            elif self._each_op:
                self.work_items_run += 1
                self._do_compact_page(page)
            else:
                self._queue.append(page)
                return
        if self._release_queued and self._each_op:
            self._release_queued = False
            self.work_items_run += 1

    def _release(self, page: _Z3Page) -> None:
        """__release_z3fold_page: pages_nr drops now, the release work frees the page."""
        self._pages_nr -= 1
        self._release_queued = True

    def run_deferred_work(self) -> int:
        """Run every queued work item (what the workqueues would do); return how many."""
        before = self.work_items_run
        while self._queue:
            self.work_items_run += 1
            self._do_compact_page(self._queue.pop(0))
        if self._release_queued:
            self._release_queued = False
            self.work_items_run += 1
        return self.work_items_run - before

    # -- compaction -----------------------------------------------------------------------------
    def _do_compact_page(self, page: _Z3Page) -> None:
        page.compacting = False
        self._list_del(page)
        page.refs -= 1
        if page.refs == 0:
            self._release(page)
            return
        # With the work's reference dropped, refs counts the objects, so buddy_single()
        # is refs == 1.
        if page.refs == 1 and not page.foreign and self._compact_single_buddy(page):
            page.refs = 0
            self._release(page)
            return
        if page.middle:
            self._compact_page(page)
        self._add_to_unbuddied(page)

    def _compact_single_buddy(self, page: _Z3Page) -> bool:
        """Move the page's one object into another unbuddied page; False if none fits."""
        if page.first:
            chunks, handle, off = page.first, page.h_first, self.zhdr_size
        elif page.middle:
            chunks, handle = page.middle, page.h_middle
            off = page.start_middle << CHUNK_SHIFT
        else:
            chunks, handle = page.last, page.h_last
            off = PAGE_SIZE - (chunks << CHUNK_SHIFT)
        new = self._take_unbuddied(chunks) if self._nonempty >> chunks else None
        if new is None:
            return False
        new.refs += 1
        new.foreign += 1
        bud = self._place(new, chunks, handle)
        if self.store:
            size = chunks << CHUNK_SHIFT
            new_off = self._bud_offset(new, bud)
            assert new.buf is not None and page.buf is not None
            new.buf[new_off : new_off + size] = page.buf[off : off + size]
        self._h_page[handle] = new
        self._moved.add(handle)
        self._add_to_unbuddied(new)
        page.first = page.middle = page.last = 0
        page.h_first = page.h_middle = page.h_last = 0
        return True

    def _compact_page(self, page: _Z3Page) -> None:
        """z3fold_compact_page: slide the middle object where that pays."""
        zc = self.zhdr_chunks
        if not page.first and not page.last:
            self._move_middle(page, zc)
            page.first, page.h_first = page.middle, page.h_middle
            page.middle = page.h_middle = page.start_middle = 0
        elif (
            page.first and not page.last and page.start_middle - (page.first + zc) >= BIG_CHUNK_GAP
        ):
            self._move_middle(page, page.first + zc)
        elif (
            page.last
            and not page.first
            and TOTAL_CHUNKS - (page.last + page.start_middle + page.middle) >= BIG_CHUNK_GAP
        ):
            self._move_middle(page, TOTAL_CHUNKS - page.last - page.middle)

    def _move_middle(self, page: _Z3Page, dst_chunk: int) -> None:
        if self.store:
            size = page.middle << CHUNK_SHIFT
            src = page.start_middle << CHUNK_SHIFT
            dst = dst_chunk << CHUNK_SHIFT
            assert page.buf is not None
            page.buf[dst : dst + size] = page.buf[src : src + size]
        page.start_middle = dst_chunk

    # -- storage ----------------------------------------------------------------------------------
    def _bud_offset(self, page: _Z3Page, bud: int) -> int:
        if bud == FIRST:
            return self.zhdr_size
        if bud == MIDDLE:
            return page.start_middle << CHUNK_SHIFT
        if bud == LAST:
            return PAGE_SIZE - (page.last << CHUNK_SHIFT)
        return 0

    def _bud_of(self, page: _Z3Page, handle: int) -> int:
        if page.headless:
            return HEADLESS
        if page.h_first == handle:
            return FIRST
        if page.h_middle == handle:
            return MIDDLE
        if page.h_last == handle:
            return LAST
        raise AssertionError(f"z3fold: page does not know handle {handle}")

    def _object(self, handle: int) -> tuple[bytearray, int]:
        need_store(self)
        page = self._h_page[handle]
        if page is None:
            raise KeyError(f"z3fold: handle {handle} is not allocated")
        assert page.buf is not None  # store=True gives every page a buffer
        return page.buf, self._bud_offset(page, self._bud_of(page, handle))

    def write(self, handle: int, data: bytes) -> None:
        if len(data) > self._h_size[handle]:
            raise ValueError(f"z3fold: {len(data)} bytes into a {self._h_size[handle]}-byte object")
        buf, off = self._object(handle)
        buf[off : off + len(data)] = data

    def read(self, handle: int) -> bytes:
        buf, off = self._object(handle)
        return bytes(buf[off : off + self._h_size[handle]])

    # -- accounting -------------------------------------------------------------------------------
    def pool_pages(self) -> int:
        return self._pages_nr

    pages_held = pool_pages

    def stats(self) -> dict[str, Any]:
        headless = sum(1 for p in self._h_page if p is not None and p.headless)
        return {
            "zhdr_size_aligned": self.zhdr_size,
            "nchunks": self.nchunks,
            "work_items_run": self.work_items_run,
            "headless_pages": headless,
            "work_items_pending": len(self._queue) + self._release_queued,
        }

    def check(self) -> None:
        zc = self.zhdr_chunks
        objects: dict[_Z3Page, list[int]] = {p: [] for p in self._queue}
        for handle, page in enumerate(self._h_page):
            if page is not None:
                objects.setdefault(page, []).append(handle)
        assert len(objects) == self._pages_nr, (
            f"pages_nr {self._pages_nr} != {len(objects)} pages in use"
        )
        assert self._moved <= {h for hs in objects.values() for h in hs}, (
            "a freed handle is still marked moved"
        )
        listed = 0
        for page, handles in objects.items():
            if page.headless:
                assert len(handles) == 1 and page.lst < 0, "headless page misused"
                continue
            by_bud = {
                FIRST: (page.first, page.h_first),
                MIDDLE: (page.middle, page.h_middle),
                LAST: (page.last, page.h_last),
            }
            assert sorted(h for c, h in by_bud.values() if c) == sorted(handles), (
                "buddy chunk counts disagree with live handles"
            )
            assert all(bool(c) == bool(h) for c, h in by_bud.values()), "stale handle"
            assert page.refs == len(handles) + page.compacting, "refcount wrong"
            assert page.foreign == sum(h in self._moved for h in handles), "foreign_handles wrong"
            if page.middle:
                assert zc + page.first <= page.start_middle, "FIRST overlaps MIDDLE"
                assert page.start_middle + page.middle + page.last <= TOTAL_CHUNKS, (
                    "MIDDLE overlaps LAST"
                )
            else:
                assert zc + page.first + page.last <= TOTAL_CHUNKS, "FIRST overlaps LAST"
            if self.store:
                for chunks, h in by_bud.values():
                    assert not h or self._h_size[h] <= chunks << CHUNK_SHIFT, (
                        "object larger than its buddy"
                    )
                assert page.buf is not None, "page without a buffer"
                assert page.buf[: self.zhdr_size] == bytes([HEADER_FILL]) * self.zhdr_size, (
                    "header overwritten"
                )
            full = bool(page.first and page.middle and page.last)
            if page.lst >= 0:
                listed += 1
                assert page in self._unbuddied[page.lst], "page not on its list"
                assert not full, "full page on an unbuddied list"
                if not page.compacting:
                    assert page.lst == self._num_free_chunks(page), "page on the wrong list"
            elif self._each_op:
                assert full, "unlisted page with a free buddy"
        assert listed == sum(map(len, self._unbuddied)), "a released page is still listed"
        for i, lst in enumerate(self._unbuddied):
            assert bool(lst) == bool(self._nonempty >> i & 1), f"bitmap wrong for list {i}"
