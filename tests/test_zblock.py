"""zblock (final mm-new version, July 2025; never merged): the derived block table, the
type lookup with its off-by-one and its edge bug, active-list order, steady state, and a
store-on state machine.  No kernel reference trace exists for zblock: the integers below
come from the spec's derived table (48-byte header, SLOT_BITS 6).
"""

from __future__ import annotations

import math

import pytest
from hypothesis import strategies as st

from tests.helpers import make_allocator_machine
from xcfbench.errors import InputError
from xcfbench.sim.allocators import create
from xcfbench.sim.allocators.zblock import (
    BLOCK_TABLE,
    ZBLOCK_HEADER_SIZE,
    Zblock,
    header_size,
    slot_size,
)
from xcfbench.sim.arch import I386, PAGE_SIZE, X86_64

# The spec's "derived final block table": (slots, pages) -> slot bytes.
SPEC_TABLE = [
    ((28, 1), 144),
    ((18, 1), 224),
    ((12, 1), 336),
    ((10, 1), 400),
    ((17, 2), 472),
    ((15, 2), 536),
    ((13, 2), 624),
    ((6, 1), 672),
    ((11, 2), 736),
    ((5, 1), 808),
    ((19, 4), 856),
    ((9, 2), 904),
    ((17, 4), 960),
    ((4, 1), 1008),
    ((23, 6), 1064),
    ((11, 3), 1112),
    ((7, 2), 1160),
    ((10, 3), 1224),
    ((19, 6), 1288),
    ((6, 2), 1352),
    ((14, 5), 1456),
    ((8, 3), 1528),
    ((5, 2), 1624),
    ((12, 5), 1696),
    ((9, 4), 1808),
    ((15, 7), 1904),
    ((2, 1), 2024),
    ((15, 8), 2176),
    ((9, 5), 2264),
    ((12, 7), 2384),
    ((13, 8), 2512),
    ((6, 4), 2720),
    ((11, 8), 2968),
    ((9, 7), 3176),
    ((6, 5), 3400),
    ((9, 8), 3632),
    ((4, 4), 4080),
]


def zb(store=False, **options):
    """The allocator as runs get it: the C twin when built (store=False)."""
    return create("zblock", X86_64, store=store, **options)


def zb_ref(store=False, **options):
    """The pure reference, for tests that look inside it (its block table, type lookup,
    blocks): the C twin has only the allocator calls, stats() and check()."""
    return Zblock(X86_64, store=store, **options)


# -- the table -------------------------------------------------------------------------------


def test_header_is_48_bytes():
    assert ZBLOCK_HEADER_SIZE == 48 == header_size(8)
    assert header_size(4) == 28  # i386: 8 + 4 * 4 + 2 + 2
    assert zb().stats()["header_size"] == 48
    assert create("zblock", I386).stats()["header_size"] == 48  # the spec's table on every arch
    assert create("zblock", I386, arch_header=True).stats()["header_size"] == 28


def test_the_37_entry_table():
    assert len(BLOCK_TABLE) == 37
    assert [(sp, slot_size(*sp)) for sp in BLOCK_TABLE] == SPEC_TABLE
    a = zb_ref()  # the table the twin reads from it
    assert (
        list(zip(zip(a.slots_per_block, a.num_pages, strict=True), a.slot_sizes, strict=True))
        == SPEC_TABLE
    )
    assert all(p <= 8 for _, p in BLOCK_TABLE)
    assert all(s <= 64 for s, _ in BLOCK_TABLE)  # SLOT_BITS 6


def test_slots_fit_their_blocks():
    for (slots, pages), size in SPEC_TABLE:
        assert 48 + slots * size <= PAGE_SIZE * pages
        assert 48 + slots * (size + 8) > PAGE_SIZE * pages  # round_down to 8, not less


# -- the type lookup -------------------------------------------------------------------------


def test_a_size_equal_to_a_slot_goes_to_the_next_type():
    a = zb_ref()  # type_for: the twin reads the reference's lookup, and has no type_for
    assert a.type_for(1) == 0
    assert a.type_for(143) == 0
    assert a.type_for(144) == 1  # 144 would fit type 0's slot, but goes up one
    assert a.type_for(223) == 1
    assert a.type_for(224) == 2
    for t, (_, size) in enumerate(SPEC_TABLE[:-1]):
        assert a.type_for(size - 1) == t
        assert a.type_for(size) == t + 1
    assert a.type_for(4079) == 36


def test_edge_bug_4080_falls_off_the_table():
    # The lookup and the option as attributes: the reference's (the twin has neither).
    assert zb_ref().edge_bug is True
    assert zb_ref().type_for(4080) is None
    assert zb_ref(edge_bug=False).type_for(4080) == 36
    # What malloc does with it: the twin, as runs get it.
    a = zb()
    assert a.max_alloc_size == 4079
    assert a.malloc(4080) is None
    assert a.stats()["edge_bug_hits"] == 1
    assert a.pool_pages() == 0
    assert a.malloc(4081) is None and a.malloc(0) is None
    assert a.stats()["edge_bug_hits"] == 1
    fixed = zb(edge_bug=False)
    assert fixed.max_alloc_size == 4080
    assert fixed.malloc(4080) is not None and fixed.pool_pages() == 4
    assert fixed.malloc(4081) is None


def test_bad_option():
    with pytest.raises(InputError):
        zb(edge_bug="maybe")


def test_summary_says_never_merged():
    assert "never merged" in Zblock.summary


# -- steady state: one size only -------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 100, 143, 144, 600, 1000, 2023, 2024, 3000, 4079])
@pytest.mark.parametrize("n", [1, 37, 500])
def test_steady_state(size, n):
    a = zb()
    t = zb_ref().type_for(size)  # the expectation, from the reference's lookup
    slots, pages = BLOCK_TABLE[t]
    for _ in range(n):
        assert a.malloc(size) is not None
    assert a.pool_pages() == math.ceil(n / slots) * pages
    a.check()


# (size, objects, pages), written out: pages per object for a few sizes.
STEADY = [
    (100, 280, 10),
    (144, 180, 10),
    (1000, 120, 30),
    (2023, 120, 60),
    (2024, 120, 64),
    (3000, 90, 70),
    (4079, 100, 100),
    (80, 65859, 2353),
]


@pytest.mark.parametrize("size,n,pages", STEADY)
def test_steady_state_table(size, n, pages):
    a = zb()
    for _ in range(n):
        a.malloc(size)
    assert a.pool_pages() == pages


# -- slots and the active list ----------------------------------------------------------------


def test_lowest_free_slot_and_offsets():
    a = zb_ref(store=True)  # reads _blocks
    hs = [a.malloc(1000) for _ in range(4)]  # type 13: 4 slots of 1008 B
    assert [h & 63 for h in hs] == [0, 1, 2, 3]
    a.free(hs[1])
    h = a.malloc(1000)
    assert h & 63 == 1
    a.write(h, b"z" * 1000)
    block = a._blocks[h >> 6]
    assert block.buf[48 + 1008 : 48 + 2008] == b"z" * 1000
    a.check()


def test_slots_straddle_page_boundaries():
    a = zb(store=True)
    hs = [a.malloc(1100) for _ in range(11)]  # type 15: 11 slots of 1112 B, 3 pages
    assert a.pool_pages() == 3
    for i, h in enumerate(hs):
        a.write(h, bytes([i]) * 1100)
    for i, h in enumerate(hs):
        assert a.read(h) == bytes([i]) * 1100
    a.check()


def test_block_freed_from_full_goes_to_the_tail():
    a = zb()
    size = 2000  # type 26: 2 slots, 1 page
    x1, x2 = a.malloc(size), a.malloc(size)  # block 1, full
    y1, y2 = a.malloc(size), a.malloc(size)  # block 2, full
    a.free(x1)  # block 1 back, at the tail
    a.free(y1)  # block 2 back, behind it
    z = a.malloc(size)  # the head: block 1
    a.free(y2)  # block 2 empty: freed
    assert a.pool_pages() == 1
    assert z >> 6 == x2 >> 6
    a.check()


def test_new_block_goes_to_the_head():
    a = zb()
    size = 1000  # type 13: 4 slots, 1 page
    first = [a.malloc(size) for _ in range(4)]  # block 1, full
    a.free(first[0])  # block 1 active, one free slot
    a.malloc(size)  # fills block 1 again
    extra = a.malloc(size)  # list empty: new block 2
    a.free(first[1])  # block 1 to the tail: [2, 1]
    h = a.malloc(size)  # head is block 2
    assert h >> 6 == extra >> 6
    assert a.pool_pages() == 2
    a.check()


def test_pages_return_to_zero():
    a = zb()
    hs = [a.malloc(s) for s in range(1, 4080, 7)]
    assert a.pool_pages() > 0
    for h in hs:
        a.free(h)
    assert a.pool_pages() == 0 and a.stats()["blocks"] == 0
    a.check()


def test_check_catches_a_lost_slot():
    # Corrupts a block of the reference (the twin has no way in); the twin's check() tests
    # the same bitmap, and tests/test_native.py runs it after each lockstep run.
    a = zb_ref()
    h = a.malloc(100)
    a._blocks[h >> 6].used = 0
    with pytest.raises(AssertionError):
        a.check()


# -- state machine ----------------------------------------------------------------------------

SIZES = st.one_of(
    st.integers(1, 4100),
    st.integers(1, 700),
    st.sampled_from([0, 143, 144, 2023, 2024, 4079, 4080, 4081]),
)

TestZblock = make_allocator_machine("zblock", X86_64, SIZES).TestCase
TestZblockFixedEdge = make_allocator_machine("zblock", X86_64, SIZES, {"edge_bug": False}).TestCase
