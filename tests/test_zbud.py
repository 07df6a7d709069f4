"""zbud (Linux 6.12 mm/zbud.c): the spec's constants, buddy placement and list order,
the constant-size steady state, and a store-on state machine.

The reference traces (tests/test_reference.py -k zbud) pin the page totals.  The
scenarios below pin what those totals hardly show: which page an allocation lands in
(the head of the first fitting unbuddied list) and where in the page the bytes go.

make_allocator_machine() is shared with test_z3fold.py and test_zblock.py.
"""

from __future__ import annotations

import pytest
from hypothesis import strategies as st

from tests.helpers import make_allocator_machine
from xcfbench.sim.allocators import create
from xcfbench.sim.allocators.zbud import MAX_ALLOC_SIZE, NCHUNKS, Zbud
from xcfbench.sim.arch import I386, PAGE_SIZE, X86_64

ARCHES = (I386, X86_64)


def zbud(store=False):
    return create("zbud", I386, store=store)


# -- the spec's integers ---------------------------------------------------------------------


def test_constants():
    assert NCHUNKS == 63
    assert MAX_ALLOC_SIZE == 3968 == PAGE_SIZE - 64 - 64
    assert zbud().max_alloc_size == 3968


@pytest.mark.parametrize("arch", ARCHES, ids=lambda a: a.name)
def test_refuses_zero_and_over_3968(arch):
    a = create("zbud", arch)
    assert a.malloc(0) is None
    assert a.malloc(3969) is None
    assert a.malloc(PAGE_SIZE) is None
    assert a.pool_pages() == 0
    assert a.malloc(3968) is not None
    assert a.pool_pages() == 1


# -- steady state: one size only, objects per page ------------------------------------------

# (size, objects, pages): two buddies fit while 2 * ceil(size / 64) <= 63.
STEADY = [
    (1, 100, 50),
    (64, 100, 50),
    (1000, 100, 50),
    (1984, 100, 50),
    (1985, 100, 100),
    (2048, 100, 100),
    (3968, 100, 100),
    (80, 65859, 32930),
]


@pytest.mark.parametrize("size,n,pages", STEADY)
def test_steady_state(size, n, pages):
    a = zbud()
    for _ in range(n):
        assert a.malloc(size) is not None
    assert a.pool_pages() == pages
    a.check()


# -- placement and list order -----------------------------------------------------------------


def test_first_left_aligned_last_right_aligned():
    a = zbud(store=True)
    first = a.malloc(1000)  # 16 chunks, FIRST, right after the 64-byte header
    last = a.malloc(100)  # 2 chunks, LAST, the page's final 128 bytes
    assert a.pool_pages() == 1
    a.write(first, b"F" * 1000)
    a.write(last, b"L" * 100)
    buf = a._bufs[first >> 1]
    assert buf[64:1064] == b"F" * 1000 and buf[1063] != 0 and buf[1064] == 0
    assert buf[PAGE_SIZE - 128 : PAGE_SIZE - 28] == b"L" * 100
    assert buf[PAGE_SIZE - 129] == 0
    a.check()


def test_takes_the_head_of_the_list():
    a = zbud()
    first = a.malloc(3000)  # page 1, 47 chunks, 16 free
    second = a.malloc(3000)  # page 2, also on unbuddied[16], at its head
    small = a.malloc(1000)  # 16 chunks: the head of unbuddied[16] is page 2
    assert a.pool_pages() == 2
    a.free(first)  # page 1 is empty now; page 2 keeps two buddies
    assert a.pool_pages() == 1
    a.free(second)
    assert a.pool_pages() == 1
    a.free(small)
    assert a.pool_pages() == 0


def test_smallest_fitting_list_first():
    a = zbud()
    a.malloc(3000)  # page 1: 47 chunks, on unbuddied[16]
    b = a.malloc(3300)  # page 2: 52 chunks, on unbuddied[11]
    a.malloc(640)  # 10 chunks: unbuddied[11] comes before [16]
    a.malloc(1000)  # 16 chunks: page 1 still has them
    assert a.pool_pages() == 2
    a.free(b)  # page 2 keeps the 640-byte object
    assert a.pool_pages() == 2
    a.check()


def test_freed_buddy_reused_and_page_released():
    a = zbud()
    x, y = a.malloc(2000), a.malloc(1900)
    assert a.pool_pages() == 1
    a.free(x)
    z = a.malloc(1984)  # 31 chunks fit beside y's 30
    assert a.pool_pages() == 1
    a.free(y)
    a.free(z)
    assert a.pool_pages() == 0
    a.check()


def test_read_needs_store():
    a = zbud()  # the twin by default: it refuses read() the same way
    h = a.malloc(10)
    with pytest.raises(RuntimeError):
        a.read(h)


def test_check_catches_overlap():
    a = Zbud(I386)  # the Python reference, whose state the test can corrupt
    h = a.malloc(1000)
    a._first[h >> 1] = 63  # a FIRST buddy running into the LAST one
    a.malloc(64)
    with pytest.raises(AssertionError):
        a.check()


# -- the state machine -----------------------------------------------------------------------

SIZES = st.one_of(
    st.integers(1, 4100), st.integers(1, 2100), st.sampled_from([0, 64, 65, 1984, 1985, 3968, 3969])
)

TestZbudI386 = make_allocator_machine("zbud", I386, SIZES).TestCase
TestZbudX86_64 = make_allocator_machine("zbud", X86_64, SIZES).TestCase


def test_summary():
    assert "v6.15" in Zbud.summary
