"""xvmalloc (Linux 3.1): exact numbers from the spec, edge cases, and a kernel-literal model.

The fast simulator in xcfbench/allocators/xvmalloc.py keeps dicts and one bitmap int.
KernelModel below is a second, independent transcription of the spec's pseudocode (§3.4-
§3.6) that works the way the C code does: headers in page bytes, doubly linked free lists,
and the real two-level bitmap search for the arch's BITS_PER_LONG.  The state machine runs
both, plus the simulator with and without storage, in lockstep and demands identical
placements.
"""

from __future__ import annotations

import math
import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from tests.helpers import load_trace
from xcfbench.sim.allocators import create, get_allocator_class
from xcfbench.sim.allocators.xvmalloc import (
    NUM_FREE_LISTS,
    XV_MAX_ALLOC_SIZE,
    XvMalloc,
    index_for_insert,
    index_for_request,
    objects_per_page,
)
from xcfbench.sim.arch import I386, PAGE_SIZE, X86_64
from xcfbench.sim.trace import Trace, replay

ARCHES = [pytest.param(I386, id="i386"), pytest.param(X86_64, id="x86_64")]


def fill(size: int, count: int, arch=I386, store: bool = False) -> XvMalloc:
    alloc = create("xvmalloc", arch, store=store)
    malloc = alloc.malloc
    for _ in range(count):
        malloc(size)
    return alloc


# -- constants and index functions (§3.1, §3.3) ------------------------------------------
def test_registry_and_class_attributes():
    assert get_allocator_class("xv") is XvMalloc
    alloc = create("xvmalloc", I386)
    assert alloc.name == "xvmalloc" and alloc.aliases == ("xv",)
    assert alloc.max_alloc_size == 4092
    assert not alloc.objects_span_pages and not alloc.supports_compaction
    assert alloc.pool_pages() == alloc.pages_held() == 0
    assert alloc.metadata_bytes() == 0
    assert NUM_FREE_LISTS == 508


@pytest.mark.parametrize(
    "size,index",
    [
        (32, 0),
        (39, 0),
        (40, 1),
        (47, 1),
        (100, 8),
        (104, 9),
        (4087, 506),
        (4088, 507),
        (4092, 507),
        (5000, 507),
    ],
)
def test_index_for_insert(size, index):
    assert index_for_insert(size) == index


@pytest.mark.parametrize(
    "size,index",
    [
        (1, 0),
        (32, 0),
        (33, 1),
        (40, 1),
        (41, 2),
        (100, 9),
        (104, 9),
        (4081, 507),
        (4088, 507),
        (4092, 508),
    ],
)
def test_index_for_request(size, index):
    assert index_for_request(size) == index


# -- §3.8 closed form and the §5.5 regression vectors ------------------------------------
@pytest.mark.parametrize(
    "size,per_page", [(64, 60), (65, 56), (68, 56), (69, 53), (72, 53), (73, 51), (76, 51)]
)
def test_objects_per_page_spec_examples(size, per_page):
    assert objects_per_page(size) == per_page


SEED_N = 65859
SEED_VECTORS = {
    56: 969,
    **dict.fromkeys(range(57, 61), 1046),
    **dict.fromkeys(range(61, 65), 1098),
    **dict.fromkeys(range(65, 69), 1177),
    **dict.fromkeys(range(69, 73), 1243),
    **dict.fromkeys(range(73, 77), 1292),
    **dict.fromkeys(range(77, 81), 1373),
    **dict.fromkeys(range(81, 85), 1432),
    **dict.fromkeys(range(85, 89), 1497),
    89: 1569,
}


@pytest.mark.parametrize("size", sorted(SEED_VECTORS))
def test_seed_vectors_closed_form(size):
    assert math.ceil(SEED_N / objects_per_page(size)) == SEED_VECTORS[size]


# Simulating all 34 sizes takes 2.2 M allocations; one size from each group is enough here,
# the closed form covers the rest and the hypothesis test below ties the two together.
@pytest.mark.parametrize("size", [56, 60, 61, 67, 69, 76, 80, 81, 86, 89])
def test_seed_vectors_simulated(size):
    alloc = fill(size, SEED_N)
    assert alloc.pool_pages() == SEED_VECTORS[size]
    assert alloc.pages_held() == SEED_VECTORS[size]


@settings(max_examples=150, deadline=None)
@given(size=st.integers(1, XV_MAX_ALLOC_SIZE), pages=st.integers(0, 2), extra=st.data())
def test_closed_form_matches_simulation(size, pages, extra):
    """N identical allocations take ceil(N / n) pages (§3.8), with align8(max(s4, 32))."""
    n = objects_per_page(size)
    if n == 0:  # 4089..4092: every call grows and fails
        count = extra.draw(st.integers(1, 5))
        alloc = fill(size, count, store=True)
        assert alloc.pool_pages() == count
        alloc.check()
        return
    count = pages * n + extra.draw(st.integers(1, n))
    alloc = fill(size, count)
    assert alloc.pool_pages() == math.ceil(count / n)


def test_spec_formula_needs_the_32_byte_floor():
    # §3.8 writes align8(s4); below 25 bytes the request index is that of 32 (§3.3), so a
    # page of 4-byte objects holds 508, not 511: the 29-byte remainder is on no list.
    assert objects_per_page(4) == 508
    assert fill(4, 509).pool_pages() == 2
    assert fill(4, 508).pool_pages() == 1


# -- refusals and the 4089..4092 edge case (§3.4, §3.5) ------------------------------------
@pytest.mark.parametrize("arch", ARCHES)
def test_size_zero_and_oversize_fail_without_growing(arch):
    alloc = create("xvmalloc", arch, store=True)
    assert alloc.malloc(0) is None
    assert alloc.malloc(4093) is None
    assert alloc.malloc(1 << 20) is None
    assert alloc.pool_pages() == 0
    alloc.check()


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("size", [4089, 4090, 4091, 4092])
def test_4089_to_4092_grow_then_fail(arch, size):
    alloc = create("xvmalloc", arch, store=True)
    assert alloc.malloc(size) is None
    assert alloc.pool_pages() == 1  # the page stays in the pool
    assert alloc.malloc(size) is None  # list 508 does not exist: again
    assert alloc.pool_pages() == 2
    alloc.check()
    assert alloc.stats()["free_blocks_listed"] == 2
    h = alloc.malloc(4088)  # served from list 507, no growth
    assert h is not None and alloc.pool_pages() == 2
    assert h & (PAGE_SIZE - 1) == 4
    other = alloc.malloc(100)  # the other stranded page
    assert alloc.pool_pages() == 2 and other >> 12 != h >> 12
    alloc.check()
    alloc.free(h)  # 4088 + its 0-byte tail: page empty
    assert alloc.pool_pages() == 1
    alloc.free(other)
    assert alloc.pool_pages() == 0
    alloc.check()


def test_4088_leaves_a_zero_payload_block():
    alloc = create("xvmalloc", I386, store=True)
    h = alloc.malloc(4085)  # aligns to 4088
    assert alloc.pool_pages() == 1
    alloc.check()
    assert alloc.stats() == {"free_blocks_listed": 0, "free_bytes_listed": 0, "fragment_bytes": 0}
    assert alloc.malloc(1) is not None  # the 0-byte tail cannot serve it
    assert alloc.pool_pages() == 2
    alloc.free(h)
    assert alloc.pool_pages() == 1
    alloc.check()


# -- layout, merging, PREV_FREE (§3.2, §3.5, §3.6), with headers in page bytes --------------
def header(alloc: XvMalloc, addr: int) -> tuple[int, int]:
    return struct.unpack_from("<HH", alloc._pages[addr >> 12], addr & 4095)


def test_layout_headers_and_lifo():
    alloc = create("xvmalloc", I386, store=True)
    a, b, c = alloc.malloc(101), alloc.malloc(100), alloc.malloc(100)
    assert [h & 4095 for h in (a, b, c)] == [4, 4 + 104 + 4, 4 + 104 + 4 + 100 + 4]
    assert header(alloc, a - 4) == (101, 0)  # unaligned size; prev 0, no flags
    assert header(alloc, b - 4) == (100, 0)
    alloc.free(b)
    assert header(alloc, b - 4) == (100, 0 | 1)  # BLOCK_FREE, prev = offset 0
    assert header(alloc, c - 4) == (100, (b - 4 & 4095) | 2)  # PREV_FREE
    alloc.check()
    assert alloc.malloc(100) != b  # 100 rounds up to list 9 (104..111)
    alloc.free(a)  # merges with b's free block
    assert header(alloc, a - 4) == (104 + 4 + 100, 1)
    alloc.check()


def test_exact_fit_clears_prev_free():
    alloc = create("xvmalloc", I386, store=True)
    a, b = alloc.malloc(104), alloc.malloc(104)
    alloc.free(a)
    assert header(alloc, b - 4)[1] & 2
    assert alloc.malloc(104) == a  # list 9 exactly, no remainder
    assert not header(alloc, b - 4)[1] & 2
    alloc.check()


def test_fragments_are_unlisted_and_merge_later():
    alloc = create("xvmalloc", I386, store=True)
    a, b = alloc.malloc(40), alloc.malloc(40)
    alloc.free(a)  # a 40-byte block on list 1
    small = alloc.malloc(12)  # lowest non-empty list >= 0
    assert small == a
    assert alloc.stats()["fragment_bytes"] == 40 - 12 - 4
    alloc.check()
    later = alloc.malloc(40)  # not the fragment: from the tail
    alloc.free(later)
    alloc.free(b)  # merges the 24-byte fragment too
    assert alloc.stats()["fragment_bytes"] == 0
    alloc.check()
    alloc.free(small)
    assert alloc.pool_pages() == 0


def test_lifo_list_order():
    alloc = create("xvmalloc", I386)
    hs = [alloc.malloc(200) for _ in range(6)]
    alloc.free(hs[1])
    alloc.free(hs[3])  # both on list 21; hs[3] is the head
    assert alloc.malloc(200) == hs[3]
    assert alloc.malloc(200) == hs[1]


def test_double_free_is_refused():
    alloc = create("xvmalloc", I386)
    h = alloc.malloc(10)
    alloc.malloc(10)
    alloc.free(h)
    with pytest.raises(ValueError, match="not a live object"):
        alloc.free(h)


def test_store_off_has_no_bytes():
    alloc = create("xvmalloc", I386)
    h = alloc.malloc(10)
    with pytest.raises(RuntimeError):
        alloc.write(h, bytes(10))
    with pytest.raises(RuntimeError):
        alloc.read(h)


@pytest.mark.parametrize("arch", ARCHES)
def test_verified_replay_of_churn_prefix(arch):
    trace = load_trace("churn.trace")
    prefix = Trace(name="churn-prefix", ops=trace.ops[:15000])
    checked = replay(prefix, "xvmalloc", arch, verify=True)
    plain = replay(prefix, "xvmalloc", arch)
    assert checked.verify_errors == 0
    assert checked.pool_pages == plain.pool_pages
    assert checked.peak_pool_pages == plain.peak_pool_pages


def test_arches_account_identically():
    results = []
    for arch in (I386, X86_64):
        rng = random.Random(7)
        alloc = create("xvmalloc", arch)
        live: list[tuple[int, int]] = []
        trail = []
        for _ in range(20000):
            if live and rng.random() < 0.45:
                alloc.free(live.pop(rng.randrange(len(live)))[0])
            else:
                size = rng.choice((rng.randint(1, 200), rng.randint(1, 4100)))
                h = alloc.malloc(size)
                if h is not None:
                    live.append((h, size))
            trail.append(alloc.pool_pages())
        results.append(trail)
    assert results[0] == results[1]


# -- a kernel-literal model ----------------------------------------------------------------
BLOCK_FREE, PREV_FREE = 1, 2
HDR = struct.Struct("<HH")


def ffs(word: int) -> int:
    return (word & -word).bit_length() - 1


class KernelModel:
    """xvmalloc.c's algorithm written out step by step, independently of the simulator."""

    def __init__(self, bits_per_long: int) -> None:
        self.bits = bits_per_long
        self.flbitmap = 0
        self.slbitmap = [0] * -(-NUM_FREE_LISTS // bits_per_long)
        self.head: list[tuple[int, int] | None] = [None] * NUM_FREE_LISTS
        self.link: dict[tuple[int, int], list] = {}  # block -> [prev, next]
        self.pages: dict[int, bytearray] = {}
        self.next_page = 0
        self.total_pages = 0

    def hdr(self, page, off):
        return HDR.unpack_from(self.pages[page], off)

    def set_hdr(self, page, off, size, prev):
        HDR.pack_into(self.pages[page], off, size, prev)

    def find_block(self, size: int) -> int | None:
        if not self.flbitmap:
            return None
        slindex = index_for_request(size)
        word = self.slbitmap[slindex // self.bits]
        start = slindex % self.bits
        if word >> start & 1:
            return slindex
        start += 1
        if start != self.bits and word >> start:
            return slindex + ffs(word >> start) + 1
        flindex = slindex // self.bits
        fl = self.flbitmap >> (flindex + 1)
        if not fl:
            return None
        flindex += ffs(fl) + 1
        return flindex * self.bits + ffs(self.slbitmap[flindex])

    def insert_block(self, page, off, size):
        i = index_for_insert(size)
        old = self.head[i]
        self.link[page, off] = [None, old]
        self.head[i] = (page, off)
        if old is not None:
            self.link[old][0] = (page, off)
        else:
            self.slbitmap[i // self.bits] |= 1 << i % self.bits
            self.flbitmap |= 1 << i // self.bits

    def remove_block(self, page, off, i):
        prev, nxt = self.link.pop((page, off))
        if prev is not None:
            self.link[prev][1] = nxt
        if nxt is not None:
            self.link[nxt][0] = prev
        if self.head[i] == (page, off):
            self.head[i] = nxt
            if nxt is None:
                self.slbitmap[i // self.bits] &= ~(1 << i % self.bits)
                if not self.slbitmap[i // self.bits]:
                    self.flbitmap &= ~(1 << i // self.bits)

    def grow_pool(self):
        page = self.next_page
        self.next_page += 1
        self.pages[page] = bytearray(PAGE_SIZE)
        self.total_pages += 1
        self.set_hdr(page, 0, 4092, BLOCK_FREE)
        self.insert_block(page, 0, 4092)

    def malloc(self, size: int):
        if size == 0 or size > 4092:
            return None
        orig, size = size, size + 3 & ~3
        index = self.find_block(size)
        if index is None:
            self.grow_pool()
            index = self.find_block(size)
            if index is None:
                return None
        page, off = self.head[index]
        self.remove_block(page, off, index)
        bsize, bprev = self.hdr(page, off)
        tail_off = off + size + 4
        rest = bsize - size
        if rest:
            tsize = rest - 4
            self.set_hdr(page, tail_off, tsize, off | BLOCK_FREE)
            if tsize >= 32:
                self.insert_block(page, tail_off, tsize)
            nxt = tail_off + 4 + tsize
            if nxt != PAGE_SIZE:
                nsize, nprev = self.hdr(page, nxt)
                self.set_hdr(page, nxt, nsize, tail_off | nprev & 3)
        elif tail_off != PAGE_SIZE:
            nsize, nprev = self.hdr(page, tail_off)
            self.set_hdr(page, tail_off, nsize, nprev & ~PREV_FREE)
        self.set_hdr(page, off, orig, bprev & ~BLOCK_FREE)
        return page, off + 4

    def free(self, page: int, objoff: int) -> bool:
        """Return True when the page was released."""
        off = objoff - 4
        size, prev = self.hdr(page, off)
        assert not prev & BLOCK_FREE
        size = size + 3 & ~3
        nxt = off + size + 4
        if nxt != PAGE_SIZE:
            nsize, nprev = self.hdr(page, nxt)
            if nprev & BLOCK_FREE:
                if nsize >= 32:
                    self.remove_block(page, nxt, index_for_insert(nsize))
                size += nsize + 4
        if prev & PREV_FREE:
            poff = prev & ~3
            psize, pprev = self.hdr(page, poff)
            assert poff + psize + 4 == off  # the kernel steps back by the size
            if psize >= 32:
                self.remove_block(page, poff, index_for_insert(psize))
            size += psize + 4
            off, prev = poff, pprev
        if size == 4092:
            del self.pages[page]
            self.total_pages -= 1
            return True
        self.set_hdr(page, off, size, prev | BLOCK_FREE)
        if size >= 32:
            self.insert_block(page, off, size)
        if off + size + 4 != PAGE_SIZE:
            nsize, nprev = self.hdr(page, off + size + 4)
            self.set_hdr(page, off + size + 4, nsize, off | nprev & 3 | PREV_FREE)
        return False


# A mix that reaches every path: small sizes that leave unlisted fragments, multiples of 8
# that refill a freed block exactly, sizes whose remainders are 0 or 4 bytes, big ones that
# need their own page, the 4089..4092 edge, and refusals.
SIZES = st.one_of(
    st.integers(1, 48),
    st.integers(1, 400),
    st.integers(1, XV_MAX_ALLOC_SIZE),
    st.integers(1, 64).map(lambda k: 8 * k),  # exact fits are frequent
    st.sampled_from([0, 32, 36, 40, 104, 2044, 2045, 4084, 4085, 4088, 4089, 4092, 4093, 9000]),
    st.integers(2000, 4092),
)


class XvMallocMachine(RuleBasedStateMachine):
    @initialize(arch=st.sampled_from([I386, X86_64]))
    def start(self, arch):
        self.fast = create("xvmalloc", arch, store=True)
        self.plain = create("xvmalloc", arch)
        self.model = KernelModel(arch.sizeof_long * 8)  # the arch's BITS_PER_LONG
        self.page_map: dict[int, int] = {}  # simulator page id -> model page
        self.live: list[tuple[int, int, int, bytes]] = []  # handle, model handle, size, data
        self.edge_requests = 0
        self.counter = 0

    @rule(size=SIZES)
    def malloc(self, size):
        h = self.fast.malloc(size)
        assert self.plain.malloc(size) == h  # store changes nothing
        mh = self.model.malloc(size)
        if 4089 <= size <= 4092:
            self.edge_requests += 1
        assert (h is None) == (mh is None) == (not 0 < size <= 4088)
        if h is not None:
            page, mpage = h >> 12, mh[0]
            assert h & 4095 == mh[1]
            assert self.page_map.setdefault(page, mpage) == mpage
            self.counter += 1
            data = random.Random(self.counter).randbytes(size)
            self.fast.write(h, data)
            self.live.append((h, mh, size, data))
        self.same_pages()

    @precondition(lambda self: self.live)
    @rule(pick=st.integers(0, 10**6))
    def free(self, pick):
        h, mh, size, data = self.live.pop(pick % len(self.live))
        assert self.fast.read(h) == data
        assert self.fast.object_size(h) == size
        before = self.fast.pool_pages()
        self.fast.free(h)
        self.plain.free(h)
        released = self.model.free(*mh)
        assert released == (self.fast.pool_pages() == before - 1)
        if released:
            del self.page_map[h >> 12]
        self.same_pages()

    def same_pages(self):
        assert (
            self.fast.pool_pages()
            == self.plain.pool_pages()
            == self.fast.pages_held()
            == self.model.total_pages
        )

    @invariant()
    def consistent(self):
        self.fast.check()
        self.plain.check()
        spans = sorted((h - 4, h + (size + 3 & ~3)) for h, _, size, _ in self.live)
        for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
            assert end <= start, "live objects overlap"
        for h, _, _, data in self.live:
            assert self.fast.read(h) == data

    def teardown(self):
        for h, mh, _, _ in self.live:
            self.fast.free(h)
            self.plain.free(h)
            self.model.free(*mh)
        self.live.clear()
        self.fast.check()
        # Only pages stranded by 4089..4092 requests remain, each one free 4092 block.
        left = self.fast.pool_pages()
        assert left == self.plain.pool_pages() == self.model.total_pages <= self.edge_requests
        assert self.fast.stats()["free_bytes_listed"] == 4092 * left
        if not self.edge_requests:
            assert left == 0


XvMallocMachine.TestCase.settings = settings(max_examples=80, stateful_step_count=50, deadline=None)
TestXvMallocMachine = XvMallocMachine.TestCase


@pytest.mark.parametrize("bits", [32, 64])
def test_model_agrees_on_a_long_random_run(bits):
    """Thousands of operations, beyond what the state machine reaches."""
    rng = random.Random(bits)
    arch = I386 if bits == 32 else X86_64
    fast, model = create("xvmalloc", arch), KernelModel(bits)
    live = []
    for _ in range(30000):
        if live and rng.random() < 0.42:
            h, mh = live.pop(rng.randrange(len(live)))
            fast.free(h)
            model.free(*mh)
        else:
            size = rng.choice((rng.randint(1, 64), rng.randint(1, 1500), rng.randint(1, 4092)))
            h, mh = fast.malloc(size), model.malloc(size)
            assert (h is None) == (mh is None)
            if h is not None:
                assert h & 4095 == mh[1]
                live.append((h, mh))
        assert fast.pool_pages() == model.total_pages
    fast.check()
