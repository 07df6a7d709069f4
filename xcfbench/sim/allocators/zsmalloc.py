"""zsmalloc: today's kernel allocator (Linux 6.12 mm/zsmalloc.c) and its 6.2 form.

Size classes
    A request of L bytes (1 <= L <= PAGE_SIZE) needs L + ZS_HANDLE_SIZE bytes, because the
    object carries its own handle (sizeof(long): 4 on i386, 8 on x86_64).  That size picks
    one of 255 classes, 32 + 16*i bytes, the top one 4096.  Each class has a chain size,
    pages_per_zspage, chosen to waste the least tail space (since 6.3: fewest wasted bytes
    over 1..CONFIG_ZSMALLOC_CHAIN_SIZE pages; 6.2: best integer percent over 1..4 pages),
    and objs_per_zspage = chain * PAGE_SIZE / size.  Built from the top down, a class with
    the same (pages, objects) pair as the class above it shares that class (Joonsoo Kim's
    merging), so its objects occupy the larger size.  The one class with 1 page and
    1 object is the huge class; huge_class_size is the first request size, from the top,
    that lands in a class packing more than one object, minus ZS_HANDLE_SIZE - 1.

Zspages
    A zspage is pages_per_zspage pages seen as one run of bytes; object (slot) i starts at
    i * size and may straddle two pages; sizes are multiples of ZS_ALIGN (8), so the
    word at the start of a slot never does.  Its first sizeof(long) bytes hold the handle
    with the OBJ_ALLOCATED_TAG bit (value handle << 1 | 1 here, little-endian) and the
    caller's data follows.  A free slot holds a link instead: the next free slot index
    << 1 (tag clear), the chain ending in -1 << 1.  A new zspage links its slots in index
    order, and a freed slot goes on the head of that list, so the last freed slot is the
    next one used (LIFO).  The huge class keeps its handle in the page descriptor and its
    data at offset 0.

    Each class keeps its zspages in fullness groups, one list each, by inuse/objs:
    6.12: 0%, 10%, 20% .. 90%, 99% (any non-full above 90%), 100% - group
    (100 * inuse // objs) // 10 + 1 for a partly used zspage.  zs_malloc takes the head of
    the fullest non-full group (99% down to 10%), else allocates a new zspage; a zspage
    whose group changes goes to the head of its new list; one that empties is freed at
    once.  6.2: ZS_EMPTY, ZS_ALMOST_EMPTY (inuse <= 3 * objs / 4), ZS_ALMOST_FULL,
    ZS_FULL; zs_malloc tries ALMOST_FULL then ALMOST_EMPTY; a zspage with fewer objects
    in use than the current head goes second instead of first.

Compaction (zs_compact)
    Classes are visited from the largest down, each merged class once.  6.12: while the
    class could free a whole zspage ((obj_allocated - obj_used) / objs_per_zspage > 0),
    keep one destination, the head of the fullest non-full group, and take sources from
    the head of the emptiest group; move the source's objects in slot order into the
    destination's free slots until one of them is full or empty; free an emptied source;
    put a full destination back and pick another.  6.2: the source comes from
    ALMOST_EMPTY then ALMOST_FULL, destinations from ALMOST_FULL then ALMOST_EMPTY, and
    the source is emptied through as many destinations as it takes.  Moving an object
    rewrites its handle, so handles stay valid.

What is counted
    pool_pages() is zs_get_total_pages(): pages in zspages, nothing else.  The handle slab
    (sizeof(long) per live object) is what metadata_bytes() reports - an estimate: slab
    rounding and the struct zspage cache (one per zspage) are not counted.  stats() has
    huge_class_size, the cumulative pages_compacted (zs_pool_stats) and the debugfs
    `classes` rows of every class that holds zspages.

Sources: Linux 6.12.117 mm/zsmalloc.c as built for ../shared/reference (CONFIG_
ZSMALLOC_CHAIN_SIZE=8, no CONFIG_ZSMALLOC_STAT/CONFIG_COMPACTION, so page migration and
deferred frees never happen).  The chain-size rule arrived in 6.3, the ratio groups,
head-only insertion and the compaction loop in 6.4 (Sergey Senozhatsky, 2023); the
legacy rules are Linux 6.2's (see ZsMallocLegacy), so 6.3's mix is not modelled.
ZS_MIN_ALLOC_SIZE is 32, as on x86_64 and on i386 without PAE (with PAE it would be
larger; not modelled).
"""

from __future__ import annotations

from typing import Any, ClassVar, cast

from xcfbench.errors import InputError
from xcfbench.sim.allocators.base import Allocator, need_store, register
from xcfbench.sim.arch import I386, PAGE_SHIFT, PAGE_SIZE, Arch

ZS_MIN_ALLOC_SIZE = 32
CLASS_BITS = 8
ZS_SIZE_CLASS_DELTA = PAGE_SIZE >> CLASS_BITS  # 16
ZS_SIZE_CLASSES = -(-(PAGE_SIZE - ZS_MIN_ALLOC_SIZE) // ZS_SIZE_CLASS_DELTA) + 1  # 255
PAGE_MASK = PAGE_SIZE - 1

CHAIN_SIZE_DEFAULT = 8  # CONFIG_ZSMALLOC_CHAIN_SIZE
CHAIN_SIZE_MIN, CHAIN_SIZE_MAX = 4, 16
LEGACY_MAX_PAGES = 4  # 1 << ZS_MAX_ZSPAGE_ORDER before v6.3

# 6.12 fullness groups: ZS_INUSE_RATIO_0, _10 .. _90, _99, _100.
INUSE_RATIO_0, INUSE_RATIO_10, INUSE_RATIO_99, INUSE_RATIO_100 = 0, 1, 10, 11
RATIO_GROUP_NAMES = (
    "0%",
    "10%",
    "20%",
    "30%",
    "40%",
    "50%",
    "60%",
    "70%",
    "80%",
    "90%",
    "99%",
    "100%",
)
# 6.2 fullness groups, numbered so that "fuller" is a higher number, as in 6.2's enum.
ZS_EMPTY, ZS_ALMOST_EMPTY, ZS_ALMOST_FULL, ZS_FULL = 0, 1, 2, 3
LEGACY_GROUP_NAMES = ("empty", "almost_empty", "almost_full", "full")


def chain_size(class_size: int, max_pages: int) -> int:
    """6.3+ calculate_zspage_chain_size: fewest wasted tail bytes, ties to fewer pages."""
    if class_size & (class_size - 1) == 0:
        return 1
    best, best_waste = 1, PAGE_SIZE % class_size
    for n in range(2, max_pages + 1):
        waste = (n * PAGE_SIZE) % class_size
        if waste < best_waste:
            best, best_waste = n, waste
    return best


def legacy_pages_per_zspage(class_size: int, max_pages: int = LEGACY_MAX_PAGES) -> int:
    """6.2 get_pages_per_zspage: highest integer percent used, ties to fewer pages."""
    best, best_pc = 1, 0
    for n in range(1, max_pages + 1):
        span = n * PAGE_SIZE
        used_pc = (span - span % class_size) * 100 // span
        if used_pc > best_pc:
            best, best_pc = n, used_pc
    return best


def class_index(size: int) -> int:
    """get_size_class_index for size = request + ZS_HANDLE_SIZE."""
    if size <= ZS_MIN_ALLOC_SIZE:
        return 0
    return min(
        ZS_SIZE_CLASSES - 1,
        (size - ZS_MIN_ALLOC_SIZE + ZS_SIZE_CLASS_DELTA - 1) // ZS_SIZE_CLASS_DELTA,
    )


def ratio_fullness(inuse: int, objs: int) -> int:
    """6.4+ get_fullness_group."""
    if inuse == 0:
        return INUSE_RATIO_0
    if inuse == objs:
        return INUSE_RATIO_100
    # A zspage using 1 of 127 objects has ratio 0 but belongs in the 10% group.
    return (100 * inuse // objs) // 10 + 1


def legacy_fullness(inuse: int, objs: int) -> int:
    """Pre-6.4 get_fullness_group: 3/4 threshold (fullness_threshold_frac = 4)."""
    if inuse == 0:
        return ZS_EMPTY
    if inuse == objs:
        return ZS_FULL
    if inuse <= 3 * objs // 4:
        return ZS_ALMOST_EMPTY
    return ZS_ALMOST_FULL


class _SizeClass:
    """struct size_class, with its fullness lists as doubly linked zspage chains."""

    __slots__ = (
        "index",
        "size",
        "pages_per_zspage",
        "objs_per_zspage",
        "huge",
        "fullness_of",
        "heads",
        "nonempty",
        "obj_allocated",
        "obj_used",
    )

    def __init__(
        self, index: int, size: int, pages: int, objs: int, fullness, ngroups: int
    ) -> None:
        self.index = index
        self.size = size
        self.pages_per_zspage = pages
        self.objs_per_zspage = objs
        self.huge = pages == 1 and objs == 1
        # inuse -> fullness group, so the hot paths index instead of dividing.
        self.fullness_of = [fullness(n, objs) for n in range(objs + 1)]
        self.heads: list[_ZsPage | None] = [None] * ngroups
        self.nonempty = 0  # bit g set <=> heads[g] is not None
        self.obj_allocated = 0  # ZS_OBJS_ALLOCATED
        self.obj_used = 0  # ZS_OBJS_INUSE

    def zspages(self, group: int):
        z = self.heads[group]
        while z is not None:
            yield z
            z = z.next


class _ZsPage:
    """struct zspage: a chain of pages holding objs_per_zspage slots.

    objs[slot] is the handle stored in a slot (None once freed); slots at and past
    len(objs) were never used.  The kernel's in-page free list is `free` (freed slots,
    the last freed on top) followed by the never-used slots in index order, exactly the
    order init_zspage links them in.  pages and huge_handle exist with store=True only."""

    __slots__ = ("cls", "inuse", "fullness", "prev", "next", "free", "objs", "pages", "huge_handle")
    # Set by ZsMalloc._new_zspage with store=True only (slots, so no class default).
    pages: list[bytearray]
    huge_handle: int

    def __init__(self, cls: _SizeClass) -> None:
        self.cls = cls
        self.inuse = 0
        self.fullness = 0
        self.prev: _ZsPage | None = None
        self.next: _ZsPage | None = None
        self.free: list[int] = []
        self.objs: list[list | None] = []


def _link_head(cls: _SizeClass, z: _ZsPage, group: int) -> None:
    """insert_zspage (6.4+): list_add at the head of the group's list."""
    heads = cls.heads
    head = heads[group]
    z.fullness = group
    z.prev = None
    z.next = head
    if head is None:
        cls.nonempty |= 1 << group
    else:
        head.prev = z
    heads[group] = z


def _link_by_inuse(cls: _SizeClass, z: _ZsPage, group: int) -> None:
    """insert_zspage (before 6.4): behind the head if it has fewer objects in use, so that
    the head stays the fuller zspage."""
    head = cls.heads[group]
    if head is None or z.inuse >= head.inuse:
        _link_head(cls, z, group)
        return
    after = head.next
    z.fullness = group
    z.prev = head
    z.next = after
    if after is not None:
        after.prev = z
    head.next = z


def _unlink(cls: _SizeClass, z: _ZsPage) -> None:
    """remove_zspage."""
    prev, after = z.prev, z.next
    if after is not None:
        after.prev = prev
    if prev is None:
        group = z.fullness
        cls.heads[group] = after
        if after is None:
            cls.nonempty &= ~(1 << group)
    else:
        prev.next = after


@register
class ZsMalloc(Allocator):
    """zsmalloc of Linux 6.12 (fine-grained fullness groups, chain size option)."""

    name = "zsmalloc"
    aliases = ("zs",)
    summary = "Linux 6.12 zsmalloc: 255 classes, zspages of up to chain_size (8) pages"
    objects_span_pages = True
    supports_compaction = True
    has_size_classes = True
    options: ClassVar[dict[str, Any]] = {"chain_size": CHAIN_SIZE_DEFAULT}

    # What distinguishes a kernel version: chain rule, fullness groups, list insertion.
    _group_names: ClassVar[tuple[str, ...]] = RATIO_GROUP_NAMES
    _full_group: ClassVar[int] = INUSE_RATIO_100
    _stat_groups: ClassVar[tuple[int, ...]] = tuple(range(INUSE_RATIO_10, INUSE_RATIO_100 + 1))
    _fullness = staticmethod(ratio_fullness)
    _insert_by_inuse: ClassVar[bool] = False

    def __init__(
        self, arch: Arch = I386, store: bool = False, chain_size: Any = CHAIN_SIZE_DEFAULT
    ) -> None:
        super().__init__(arch, store)
        self.chain_size = self._check_chain_size(chain_size)
        self.handle_size = arch.sizeof_long  # ZS_HANDLE_SIZE
        self.max_alloc_size = PAGE_SIZE  # ZS_MAX_ALLOC_SIZE
        self.pages_allocated = 0
        self.pages_compacted = 0
        self._next_hid = 0
        # zs_malloc looks at every group below full, fullest first.
        self._search_mask = (1 << self._full_group) - 1
        self._classes, self._distinct, self.huge_class_size = self._build_classes()
        # Request size -> class, the handle already added (get_size_class_index).  Entry 0
        # is a placeholder that is never read: malloc refuses size 0 before the lookup.
        self._class_of = cast(
            "list[_SizeClass]",
            [None]
            + [self._classes[class_index(n + self.handle_size)] for n in range(1, PAGE_SIZE + 1)],
        )
        self._link = _link_by_inuse if self._insert_by_inuse else _link_head
        # The hot paths, bound once: with store=True they also write the in-page words.
        if store:
            self.malloc = self._malloc_store  # type: ignore[method-assign]
            self.free = self._free_store  # type: ignore[method-assign]
        else:
            self.malloc = self._malloc  # type: ignore[method-assign]
            self.free = self._free  # type: ignore[method-assign]

    @staticmethod
    def _check_chain_size(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(
                f"zsmalloc option chain_size={value!r}: expected an integer"
                f" {CHAIN_SIZE_MIN}..{CHAIN_SIZE_MAX}"
            )
        if not CHAIN_SIZE_MIN <= value <= CHAIN_SIZE_MAX:
            raise InputError(
                f"zsmalloc option chain_size={value}: CONFIG_ZSMALLOC_CHAIN_SIZE"
                f" must be {CHAIN_SIZE_MIN}..{CHAIN_SIZE_MAX}"
            )
        return value

    def _pages_per_zspage(self, size: int) -> int:
        return chain_size(size, self.chain_size)

    def _build_classes(self) -> tuple[list[_SizeClass], list[_SizeClass], int]:
        """zs_create_pool: from the top down, merging equal (pages, objects) neighbours."""
        classes: list[_SizeClass | None] = [None] * ZS_SIZE_CLASSES
        huge_class_size = 0
        prev: _SizeClass | None = None
        ngroups = self._full_group + 1
        for i in range(ZS_SIZE_CLASSES - 1, -1, -1):
            size = min(ZS_MIN_ALLOC_SIZE + i * ZS_SIZE_CLASS_DELTA, PAGE_SIZE)
            pages = self._pages_per_zspage(size)
            objs = pages * PAGE_SIZE // size
            if not huge_class_size and pages != 1 and objs != 1:
                # zs_malloc adds the handle before the lookup, hence the - (H - 1).
                huge_class_size = size - (self.handle_size - 1)
            if prev is not None and prev.pages_per_zspage == pages and prev.objs_per_zspage == objs:
                classes[i] = prev
                continue
            prev = classes[i] = _SizeClass(i, size, pages, objs, self._fullness, ngroups)
        filled = cast("list[_SizeClass]", classes)  # the loop set every index
        distinct = [c for i, c in enumerate(filled) if c.index == i]
        return filled, distinct, huge_class_size

    # -- zs_malloc / zs_free -----------------------------------------------------------
    def malloc(self, size: int) -> list | None:
        """Handle: [zspage, slot, size, handle id], updated in place by compaction."""
        return self._malloc(size)  # rebound in __init__

    def free(self, handle: list) -> None:
        self._free(handle)  # rebound in __init__

    def _new_zspage(self, cls: _SizeClass) -> _ZsPage:
        """alloc_zspage; the caller links it into its fullness group."""
        z = _ZsPage(cls)
        self.pages_allocated += cls.pages_per_zspage
        cls.obj_allocated += cls.objs_per_zspage
        if self.store:
            z.pages = [bytearray(PAGE_SIZE) for _ in range(cls.pages_per_zspage)]
            z.huge_handle = 0
            self._init_links(z)
        return z

    def _malloc(self, size: int) -> list | None:
        if not 0 < size <= PAGE_SIZE:  # -EINVAL / -ENOSPC
            return None
        cls = self._class_of[size]
        groups = cls.nonempty & self._search_mask
        if groups:
            z = cls.heads[groups.bit_length() - 1]  # find_get_zspage
            assert z is not None  # its nonempty bit is set
        else:
            z = self._new_zspage(cls)
        objs = z.objs
        free = z.free
        if free:  # obj_malloc: LIFO
            slot = free.pop()
            h = [z, slot, size, 0]
            objs[slot] = h
        else:
            h = [z, len(objs), size, 0]
            objs.append(h)
        inuse = z.inuse = z.inuse + 1
        cls.obj_used += 1
        group = cls.fullness_of[inuse]
        if group != z.fullness:  # fix_fullness_group
            heads = cls.heads
            if groups:
                # remove_zspage; z was its list's head.
                after = z.next
                if after is None:
                    heads[z.fullness] = None
                    cls.nonempty &= ~(1 << z.fullness)
                else:
                    after.prev = None
                    heads[z.fullness] = after
            head = heads[group]
            if head is not None and head.inuse > inuse and self._insert_by_inuse:
                _link_by_inuse(cls, z, group)
            else:
                _link_head(cls, z, group)
        return h

    def _free(self, handle: list) -> None:
        z, slot = handle[0], handle[1]
        if z is None:
            raise ValueError("zsmalloc: free of a handle that was already freed")
        handle[0] = None
        z.objs[slot] = None
        z.free.append(slot)  # obj_free
        inuse = z.inuse = z.inuse - 1
        cls = z.cls
        cls.obj_used -= 1
        group = cls.fullness_of[inuse]
        if group != z.fullness:
            _unlink(cls, z)
            if group == 0:  # free_zspage
                self.pages_allocated -= cls.pages_per_zspage
                cls.obj_allocated -= cls.objs_per_zspage
                z.cls = None
            else:
                self._link(cls, z, group)

    def _malloc_store(self, size: int) -> list | None:
        h = self._malloc(size)
        if h is not None:
            self._next_hid += 1
            h[3] = self._next_hid
            self._record_handle(h[0], h[1], h[3])
        return h

    def _free_store(self, handle: list) -> None:
        if handle[0] is not None:
            self._write_link(handle[0], handle[1])
        self._free(handle)

    # -- bytes (store=True) ----------------------------------------------------------
    def _put(self, z: _ZsPage, off: int, data: bytes) -> None:
        """Copy data to byte off of the zspage, across a page boundary if need be."""
        n = len(data)
        page, po = off >> PAGE_SHIFT, off & PAGE_MASK
        first = PAGE_SIZE - po
        if n <= first:
            z.pages[page][po : po + n] = data
        else:
            z.pages[page][po:] = data[:first]
            z.pages[page + 1][: n - first] = data[first:]

    def _get(self, z: _ZsPage, off: int, n: int) -> bytes:
        page, po = off >> PAGE_SHIFT, off & PAGE_MASK
        first = PAGE_SIZE - po
        if n <= first:
            return bytes(z.pages[page][po : po + n])
        return bytes(z.pages[page][po:]) + bytes(z.pages[page + 1][: n - first])

    def _word(self, value: int) -> bytes:
        """An unsigned long as the machine stores it (both arches are little-endian)."""
        return (value & ((1 << 8 * self.handle_size) - 1)).to_bytes(self.handle_size, "little")

    def _record_handle(self, z: _ZsPage, slot: int, hid: int) -> None:
        """obj_malloc: the handle, tagged allocated, in the object's first word."""
        if z.cls.huge:
            z.huge_handle = hid << 1 | 1
        else:
            self._put(z, slot * z.cls.size, self._word(hid << 1 | 1))

    def _write_link(self, z: _ZsPage, slot: int) -> None:
        """obj_free: the freed slot points at the old free-list head (untagged)."""
        if z.cls.huge:
            z.huge_handle = 0
        else:
            self._put(z, slot * z.cls.size, self._word(self._free_head(z) << 1))

    @staticmethod
    def _free_head(z: _ZsPage) -> int:
        if z.free:
            return z.free[-1]
        return len(z.objs) if len(z.objs) < z.cls.objs_per_zspage else -1

    def _init_links(self, z: _ZsPage) -> None:
        """init_zspage: slot i links to i + 1, the last one ends the chain."""
        objs = z.cls.objs_per_zspage
        if z.cls.huge:
            return
        for slot in range(objs):
            self._put(z, slot * z.cls.size, self._word((slot + 1 if slot + 1 < objs else -1) << 1))

    def _data_offset(self, z: _ZsPage, slot: int) -> int:
        return slot * z.cls.size + (0 if z.cls.huge else self.handle_size)

    def write(self, handle: list, data: bytes) -> None:
        need_store(self)
        z, slot, size = handle[0], handle[1], handle[2]
        if len(data) > size:
            raise ValueError(f"zsmalloc: {len(data)} bytes written to a {size}-byte object")
        self._put(z, self._data_offset(z, slot), data)

    def read(self, handle: list) -> bytes:
        need_store(self)
        z, slot, size = handle[0], handle[1], handle[2]
        return self._get(z, self._data_offset(z, slot), size)

    # -- compaction ------------------------------------------------------------------
    @staticmethod
    def can_compact(cls: _SizeClass) -> int:
        """zs_can_compact: pages freeable if the class's free slots were packed."""
        wasted = cls.obj_allocated - cls.obj_used
        if wasted <= 0:
            return 0
        return wasted // cls.objs_per_zspage * cls.pages_per_zspage

    def compact(self) -> int:
        """zs_compact: every class from the largest down; returns pages freed."""
        freed = 0
        for cls in reversed(self._distinct):
            freed += self._compact_class(cls)
        self.pages_compacted += freed
        return freed

    def _isolate(self, cls: _SizeClass, groups: int, fullest: bool) -> _ZsPage | None:
        """Take the head of the fullest (or emptiest) non-empty group among groups."""
        groups &= cls.nonempty
        if not groups:
            return None
        if not fullest:
            groups &= -groups
        z = cls.heads[groups.bit_length() - 1]
        _unlink(cls, z)  # type: ignore[arg-type]
        return z

    def _putback(self, cls: _SizeClass, z: _ZsPage) -> int:
        """putback_zspage; an emptied zspage is freed (free_zspage) instead."""
        group = cls.fullness_of[z.inuse]
        if group == 0:
            self.pages_allocated -= cls.pages_per_zspage
            cls.obj_allocated -= cls.objs_per_zspage
            z.cls = None  # type: ignore[assignment]
        else:
            self._link(cls, z, group)
        return group

    def _move(self, src: _ZsPage, slot: int, dst: _ZsPage) -> None:
        """Move the object in src's slot to dst's next free slot (obj_malloc,
        zs_object_copy, record_obj, obj_free)."""
        h = src.objs[slot]
        free = dst.free
        if free:
            dslot = free.pop()
            dst.objs[dslot] = h
        else:
            dslot = len(dst.objs)
            dst.objs.append(h)
        if self.store:
            size = src.cls.size
            self._put(dst, dslot * size, self._get(src, slot * size, size))
            if src.cls.huge:
                dst.huge_handle = src.huge_handle
            self._write_link(src, slot)
        dst.inuse += 1
        h[0], h[1] = dst, dslot  # type: ignore[index]
        src.objs[slot] = None
        src.free.append(slot)
        src.inuse -= 1

    def _compact_class(self, cls: _SizeClass) -> int:
        """6.12 __zs_compact: one destination is filled from as many sources as it takes."""
        partial = ((1 << self._full_group) - 1) & ~1  # groups 10% .. 99%
        opz = cls.objs_per_zspage
        freed = 0
        dst = None
        while self.can_compact(cls):
            if dst is None:
                dst = self._isolate(cls, partial, fullest=True)
                if dst is None:
                    break
            src = self._isolate(cls, partial, fullest=False)
            if src is None:
                break
            # migrate_zspage: source slots in index order, stop when either side is done.
            objs = src.objs
            for slot in range(len(objs)):
                if objs[slot] is not None:
                    self._move(src, slot, dst)
                    if dst.inuse == opz or src.inuse == 0:
                        break
            if self._putback(cls, src) == 0:
                freed += cls.pages_per_zspage
            if dst.inuse == opz:
                self._putback(cls, dst)
                dst = None
        if dst is not None:
            self._putback(cls, dst)
        return freed

    # -- accounting ------------------------------------------------------------------
    def merged_class_index(self, idx: int) -> int:
        """The index of the class that serves class idx (zs_lookup_class_index's result)."""
        return self._classes[idx].index

    def pool_pages(self) -> int:
        return self.pages_allocated

    def metadata_bytes(self) -> int:
        """Handle slab estimate: one sizeof(long) zs_handle object per live object."""
        return sum(c.obj_used for c in self._distinct) * self.handle_size

    def class_table(self, all: bool = False) -> list[dict[str, Any]]:
        """The debugfs `classes` rows: every distinct class, or (all=False) those with
        zspages."""
        rows = []
        for cls in self._distinct:
            if not all and not cls.obj_allocated:
                continue
            row: dict[str, Any] = {"class": cls.index, "size": cls.size}
            for group in self._stat_groups:
                row[self._group_names[group]] = sum(1 for _ in cls.zspages(group))
            row.update(
                obj_allocated=cls.obj_allocated,
                obj_used=cls.obj_used,
                pages_used=cls.obj_allocated // cls.objs_per_zspage * cls.pages_per_zspage,
                pages_per_zspage=cls.pages_per_zspage,
                objs_per_zspage=cls.objs_per_zspage,
                freeable=self.can_compact(cls),
            )
            rows.append(row)
        return rows

    def stats(self) -> dict[str, Any]:
        return {
            "huge_class_size": self.huge_class_size,
            "pages_compacted": self.pages_compacted,
            "classes": self.class_table(),
        }

    def check(self) -> None:
        pages = 0
        seen: set[int] = set()
        for cls in self._distinct:
            zspages = used = 0
            for group, head in enumerate(cls.heads):
                assert (head is not None) == bool(cls.nonempty >> group & 1), (
                    f"class {cls.index}: group {group} bit disagrees with its list"
                )
                prev = None
                for z in cls.zspages(group):
                    assert id(z) not in seen, f"class {cls.index}: zspage on two lists"
                    seen.add(id(z))
                    assert z.prev is prev, f"class {cls.index}: broken back link"
                    assert z.cls is cls and z.fullness == group
                    assert cls.fullness_of[z.inuse] == group != 0, (
                        f"class {cls.index}: zspage with {z.inuse} in use in group {group}"
                    )
                    self._check_zspage(z)
                    zspages += 1
                    used += z.inuse
                    prev = z
            assert cls.obj_allocated == zspages * cls.objs_per_zspage, (
                f"class {cls.index}: obj_allocated {cls.obj_allocated} != {zspages} zspages"
            )
            assert cls.obj_used == used, f"class {cls.index}: obj_used {cls.obj_used} != {used}"
            pages += zspages * cls.pages_per_zspage
        assert pages == self.pages_allocated, (
            f"pages_allocated {self.pages_allocated} != {pages} pages in listed zspages"
        )

    def _check_zspage(self, z: _ZsPage) -> None:
        cls = z.cls
        objs = cls.objs_per_zspage
        free_order = z.free[::-1] + list(range(len(z.objs), objs))
        assert len(set(free_order)) == len(free_order) == objs - z.inuse, (
            f"class {cls.index}: free list {free_order} vs {z.inuse} of {objs} in use"
        )
        for slot, h in enumerate(z.objs):
            if h is None:
                assert slot in free_order, f"class {cls.index}: slot {slot} lost"
                continue
            assert h[0] is z and h[1] == slot, f"class {cls.index}: handle points elsewhere"
            assert slot not in free_order
            if self.store:
                want = h[3] << 1 | 1
                got = (
                    z.huge_handle
                    if cls.huge
                    else int.from_bytes(self._get(z, slot * cls.size, self.handle_size), "little")
                )
                assert got == want, f"class {cls.index} slot {slot}: header {got:#x}"
        if self.store and not cls.huge:
            # The in-page chain, from the head, must list the free slots in order.
            mask = (1 << 8 * self.handle_size) - 1
            slot = free_order[0] if free_order else -1
            for want in free_order:
                assert slot == want, f"class {cls.index}: in-page free list at {slot}"
                word = int.from_bytes(self._get(z, slot * cls.size, self.handle_size), "little")
                assert not word & 1, f"class {cls.index}: free slot {slot} tagged allocated"
                slot = word >> 1
                if slot == mask >> 1:
                    slot = -1


@register
class ZsMallocLegacy(ZsMalloc):
    """zsmalloc as of Linux 6.2, the last release before the 2023 rework.

    Followed: get_pages_per_zspage (integer percent used, 1..4 pages), four fullness
    groups with the 3/4 threshold, insert_zspage's "fewer in use goes behind the head",
    find_get_zspage (ALMOST_FULL, then ALMOST_EMPTY), and the old __zs_compact: isolate a
    source (ALMOST_EMPTY first), stop if the class cannot free a zspage, then empty it
    into destinations (ALMOST_FULL first), putting each filled destination back.
    Inferred: 6.2's zpool LRU writeback (zs_reclaim_page) is left out - it only acts when
    zswap asks for reclaim, which a trace never does; lock contention never breaks a
    compaction pass.  Source: the 6.2-era mm/zsmalloc.c text and the 2023 patches that
    replaced it (Sergey Senozhatsky, "zsmalloc: remove insert_zspage() ->inuse
    optimization", "fine-grained inuse ratio based fullness grouping", "rework compaction
    algorithm")."""

    name = "zsmalloc-legacy"
    aliases = ("zs-legacy",)
    summary = "Linux 6.2 zsmalloc: chain of up to 4 pages, four fullness groups"
    options: ClassVar[dict[str, Any]] = {}

    _group_names = LEGACY_GROUP_NAMES
    _full_group = ZS_FULL
    # The 6.2 debugfs table shows almost_full and almost_empty only.
    _stat_groups = (ZS_ALMOST_FULL, ZS_ALMOST_EMPTY)
    _fullness = staticmethod(legacy_fullness)
    _insert_by_inuse = True

    def __init__(self, arch: Arch = I386, store: bool = False) -> None:
        super().__init__(arch, store, chain_size=LEGACY_MAX_PAGES)

    def _pages_per_zspage(self, size: int) -> int:
        return legacy_pages_per_zspage(size, LEGACY_MAX_PAGES)

    def _compact_class(self, cls: _SizeClass) -> int:
        partial = 1 << ZS_ALMOST_EMPTY | 1 << ZS_ALMOST_FULL
        opz = cls.objs_per_zspage
        freed = 0
        while True:
            # isolate_zspage(source): ALMOST_EMPTY before ALMOST_FULL.
            src = self._isolate(cls, partial, fullest=False)
            if src is None:
                break
            if not self.can_compact(cls):
                self._putback(cls, src)
                break
            cursor = 0  # zs_compact_control position
            while True:
                # isolate_zspage(destination): ALMOST_FULL before ALMOST_EMPTY.
                dst = self._isolate(cls, partial, fullest=True)
                if dst is None:
                    break
                # migrate_zspage: each next object, unless the destination is full.
                objs = src.objs
                while cursor < len(objs) and objs[cursor] is None:
                    cursor += 1
                while cursor < len(objs) and dst.inuse < opz:
                    self._move(src, cursor, dst)
                    cursor += 1
                    while cursor < len(objs) and objs[cursor] is None:
                        cursor += 1
                if cursor >= len(objs):  # source emptied
                    break
                self._putback(cls, dst)
            if dst is None:  # no room anywhere
                self._putback(cls, src)
                break
            self._putback(cls, dst)
            if self._putback(cls, src) == ZS_EMPTY:
                freed += cls.pages_per_zspage
        return freed
