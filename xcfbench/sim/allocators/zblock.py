"""zblock: a fixed number of same-size slots per multi-page block (never merged).

Follows the last posted zblock, Vitaly Wool's "[PATCH v4] mm: add zblock allocator" as it
stood in mm-new in July 2025 with its fixes folded in (the version Andrew Morton quoted
on 2025-07-19; it was expected to be dropped and the zpool removal in 2025-08 took away
the hook it needed).  The constants changed between postings; this is the final set:
SLOT_BITS 6 on 4 KiB pages, blocks of 1..8 pages from vmalloc.

Block layout.  A block of type t is num_pages[t] contiguous (virtually) pages:

    +--------+--------+--------+-- ... --+----------------+-------+
    | header | slot 0 | slot 1 |         | slot n[t] - 1  | slack |
    +--------+--------+--------+-- ... --+----------------+-------+
    0       48                                          4096 * num_pages[t]

The header is struct zblock_block (a 64-bit slot bitmap, the list link, an rcu_head and
two u16), rounded up to sizeof(long): 48 bytes on x86_64.  Slots follow it back to back,
slot_size = round_down((4096 * num_pages - 48) / n, 8), so a slot may straddle a page
boundary inside its block.  The derived table has 37 types, from 28 slots of 144 bytes in
one page to 4 slots of 4080 bytes in four pages (BLOCK_TABLE below).

Size classes.  zblock_alloc refuses size 0 (-EINVAL) and sizes above the last slot size,
4080 (-ENOSPC).  The type comes from an rbtree of [slot_size[i], slot_size[i+1]) ranges:
size < slot_size[0] gives type 0, otherwise the i with slot_size[i] <= size <
slot_size[i+1] gives type i + 1.  So a size exactly equal to a slot size goes to the next,
larger type, and size == 4080 (the last node's range ends at 2 * PAGE_SIZE) gives type 37,
one past the table: the kernel then indexes past block_lists[] and block_desc[]
(undefined behaviour).  With edge_bug=True (the default, as posted) such an allocation is
refused and counted in stats()["edge_bug_hits"]; edge_bug=False puts it in the last type
as a fixed version would.

Free lists.  Each type has an active list of blocks with a free slot.  zblock_alloc claims
the lowest free slot of the list's first block, removing the block when it becomes full,
or allocates a new block (slot 0 taken) and adds it at the head.  zblock_free clears the
slot; a block that was full goes back at the tail, a block that becomes empty is freed.

Counted: pool_pages() = sum over types of block_count[t] * num_pages[t]
(zblock_get_total_pages; debugfs zblock/blocks lists the per-type counts).  Block headers
live inside the blocks; a handle is (block address | slot) and needs no memory.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Any, ClassVar

from xcfbench.errors import InputError
from xcfbench.sim.allocators.base import Allocator, need_store, register
from xcfbench.sim.arch import I386, PAGE_SIZE, Arch

SLOT_BITS = 6
SLOT_MASK = (1 << SLOT_BITS) - 1
MAX_SLOTS = 1 << SLOT_BITS
ZBLOCK_HEADER_SIZE = 48  # round_up(8 + 16 + 16 + 2 + 2, 8) on x86_64
HEADER_FILL = 0xB1  # what store=True writes into headers

# (slots_per_block, num_pages) of the final 4 KiB-page table, in order.
BLOCK_TABLE = (
    (28, 1),
    (18, 1),
    (12, 1),
    (10, 1),
    (17, 2),
    (15, 2),
    (13, 2),
    (6, 1),
    (11, 2),
    (5, 1),
    (19, 4),
    (9, 2),
    (17, 4),
    (4, 1),
    (23, 6),
    (11, 3),
    (7, 2),
    (10, 3),
    (19, 6),
    (6, 2),
    (14, 5),
    (8, 3),
    (5, 2),
    (12, 5),
    (9, 4),
    (15, 7),
    (2, 1),
    (15, 8),
    (9, 5),
    (12, 7),
    (13, 8),
    (6, 4),
    (11, 8),
    (9, 7),
    (6, 5),
    (9, 8),
    (4, 4),
)


def header_size(sizeof_long: int = 8) -> int:
    """round_up(sizeof(struct zblock_block), sizeof(long)) for a given long size."""
    raw = MAX_SLOTS // 8 + 2 * (2 * sizeof_long) + 2 + 2
    return -(-raw // sizeof_long) * sizeof_long


def slot_size(slots: int, pages: int, header: int = ZBLOCK_HEADER_SIZE, align: int = 8) -> int:
    """SLOT_SIZE(nslots, num): the block's data bytes split n ways, rounded down."""
    return (PAGE_SIZE * pages - header) // slots // align * align


class _Block:
    __slots__ = ("type", "bid", "free_slots", "used", "prev", "next", "buf")

    def __init__(self, block_type: int) -> None:
        self.type = block_type
        self.bid = -1  # index in Zblock._blocks, the handle's high bits
        self.free_slots = 0
        self.used = 0  # slot_info bitmap
        self.prev: _Block = self  # active-list links (a lone block links to itself)
        self.next: _Block = self
        self.buf: bytearray | None = None


@register
class Zblock(Allocator):
    name = "zblock"
    summary = (
        "zblock (2025, never merged; final mm-new version): fixed slots per "
        "1-8 page block, 37 block types"
    )
    objects_span_pages = True
    options: ClassVar[dict[str, Any]] = {"edge_bug": True, "arch_header": False}

    def __init__(
        self,
        arch: Arch = I386,
        store: bool = False,
        edge_bug: bool = True,
        arch_header: bool = False,
    ) -> None:
        """edge_bug: reproduce the posted type lookup, where size == 4080 falls off the
        table (refused here, counted in edge_bug_hits); False files it under the last
        type.  arch_header: [INFERENCE] derive the header size and slot alignment from
        the arch's sizeof(long) (28 bytes and 4 on i386) instead of the spec's 48 and 8;
        zblock was only ever posted and measured on 64-bit machines."""
        super().__init__(arch, store)
        for opt, value in (("edge_bug", edge_bug), ("arch_header", arch_header)):
            if not isinstance(value, bool):
                raise InputError(f"zblock: option {opt} must be true or false, not {value!r}")
        self.edge_bug = edge_bug
        if arch_header:
            self.header = header_size(arch.sizeof_long)
            align = arch.sizeof_long
        else:
            self.header = ZBLOCK_HEADER_SIZE
            align = 8
        self.slots_per_block = [s for s, _ in BLOCK_TABLE]
        self.num_pages = [p for _, p in BLOCK_TABLE]
        self.slot_sizes = [slot_size(s, p, self.header, align) for s, p in BLOCK_TABLE]
        if any(b <= a for a, b in zip(self.slot_sizes, self.slot_sizes[1:], strict=False)):
            raise ValueError("zblock: block descriptors not in ascending order")
        self.max_slot = self.slot_sizes[-1]
        self.max_alloc_size = self.max_slot - 1 if self.edge_bug else self.max_slot
        ntypes = len(BLOCK_TABLE)
        # size -> block type for every size up to the last slot size.
        self._type_of = [bisect_right(self.slot_sizes, size) for size in range(self.max_slot + 1)]
        if not self.edge_bug:
            self._type_of[self.max_slot] = ntypes - 1
        self._active = [_Block(t) for t in range(ntypes)]  # list heads (sentinels)
        self.block_count = [0] * ntypes
        self._blocks: list[_Block | None] = []
        self._free_ids: list[int] = []
        self._pages = 0
        self._sizes: dict[int, int] = {}
        self.edge_bug_hits = 0

    # -- zblock_alloc -----------------------------------------------------------------------------
    def malloc(self, size: int) -> int | None:
        if size <= 0 or size > self.max_slot:
            return None
        t = self._type_of[size]
        if t == len(self._active):
            self.edge_bug_hits += 1
            return None
        head = self._active[t]
        block = head.next
        if block is not head:
            block.free_slots -= 1
            if block.free_slots == 0:
                block.prev.next = block.next
                block.next.prev = block.prev
                block.prev = block.next = block
            used = block.used
            bit = ~used & (used + 1)
            block.used = used | bit
            slot = bit.bit_length() - 1
            bid = block.bid
        else:
            block, bid = self._new_block(t)
            slot = 0
        handle = bid << SLOT_BITS | slot
        if self.store:
            self._sizes[handle] = size
        return handle

    def _new_block(self, t: int) -> tuple[_Block, int]:
        block = _Block(t)
        block.free_slots = self.slots_per_block[t] - 1
        block.used = 1
        head = self._active[t]
        block.prev = head
        block.next = head.next
        head.next.prev = block
        head.next = block
        self.block_count[t] += 1
        self._pages += self.num_pages[t]
        if self.store:
            block.buf = bytearray(PAGE_SIZE * self.num_pages[t])
            block.buf[: self.header] = bytes([HEADER_FILL]) * self.header
        if self._free_ids:
            bid = self._free_ids.pop()
            self._blocks[bid] = block
        else:
            bid = len(self._blocks)
            self._blocks.append(block)
        block.bid = bid
        return block, bid

    # -- zblock_free ------------------------------------------------------------------------------
    def free(self, handle: int) -> None:
        bid = handle >> SLOT_BITS
        block = self._blocks[bid]
        assert block is not None  # the handle is live
        block.used &= ~(1 << (handle & SLOT_MASK))
        block.free_slots += 1
        t = block.type
        if block.free_slots == self.slots_per_block[t]:
            block.prev.next = block.next
            block.next.prev = block.prev
            self.block_count[t] -= 1
            self._pages -= self.num_pages[t]
            self._blocks[bid] = None
            self._free_ids.append(bid)
        elif block.free_slots == 1:
            head = self._active[t]
            block.next = head
            block.prev = head.prev
            head.prev.next = block
            head.prev = block
        if self.store:
            del self._sizes[handle]

    # -- storage ----------------------------------------------------------------------------------
    def write(self, handle: int, data: bytes) -> None:
        need_store(self)
        if len(data) > self._sizes[handle]:
            raise ValueError(f"zblock: {len(data)} bytes into a {self._sizes[handle]}-byte object")
        block = self._blocks[handle >> SLOT_BITS]
        assert block is not None and block.buf is not None
        off = self.header + (handle & SLOT_MASK) * self.slot_sizes[block.type]
        block.buf[off : off + len(data)] = data

    def read(self, handle: int) -> bytes:
        need_store(self)
        block = self._blocks[handle >> SLOT_BITS]
        assert block is not None and block.buf is not None
        off = self.header + (handle & SLOT_MASK) * self.slot_sizes[block.type]
        return bytes(block.buf[off : off + self._sizes[handle]])

    # -- accounting -------------------------------------------------------------------------------
    def pool_pages(self) -> int:
        return self._pages

    pages_held = pool_pages

    def stats(self) -> dict[str, Any]:
        return {
            "block_types": len(BLOCK_TABLE),
            "header_size": self.header,
            "blocks": sum(self.block_count),
            "edge_bug_hits": self.edge_bug_hits,
            "block_count": list(self.block_count),
        }

    def type_for(self, size: int) -> int | None:
        """The block type zblock_alloc would use for size, None when it refuses it."""
        if size <= 0 or size > self.max_slot:
            return None
        t = self._type_of[size]
        return None if t == len(BLOCK_TABLE) else t

    def check(self) -> None:
        live = [b for b in self._blocks if b is not None]
        counts = [0] * len(BLOCK_TABLE)
        for block in live:
            counts[block.type] += 1
        assert counts == self.block_count, "block_count disagrees with live blocks"
        assert self._pages == sum(c * p for c, p in zip(counts, self.num_pages, strict=False))
        on_lists = set()
        for t, head in enumerate(self._active):
            block, prev = head.next, head
            while block is not head:
                assert block.prev is prev, f"type {t}: broken list link"
                assert block.type == t and block.free_slots > 0, f"type {t}: bad list entry"
                assert block not in on_lists, f"type {t}: block listed twice"
                on_lists.add(block)
                prev, block = block, block.next
            assert head.prev is prev
        for block in live:
            n = self.slots_per_block[block.type]
            assert 0 <= block.free_slots < n, "empty block kept"
            assert block.used >> n == 0, "slot bit beyond the block"
            assert block.used.bit_count() == n - block.free_slots, "free_slots wrong"
            assert (block in on_lists) == (block.free_slots > 0), "active list wrong"
            if self.store:
                assert block.buf is not None, "live block without a buffer"
                assert block.buf[: self.header] == bytes([HEADER_FILL]) * self.header, (
                    "header overwritten"
                )
                assert self.header + n * self.slot_sizes[block.type] <= len(block.buf)
        if self.store:
            for handle, size in self._sizes.items():
                owner = self._blocks[handle >> SLOT_BITS]
                assert owner is not None and owner.used >> (handle & SLOT_MASK) & 1
                assert size <= self.slot_sizes[owner.type], "object larger than its slot"
