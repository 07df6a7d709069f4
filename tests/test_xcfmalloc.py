"""xcfmalloc (2011), v2 and v1 rules, and its compaction.

The reference traces (tests/test_reference.py -k xcfmalloc) pin pool pages, pages held and
descriptor counts against the C code on four traces.  The scenario tests below check each
rule of spec §2.4-§2.7 on its own: which list a block comes from, how the last block is
split, the undo path, merging, and reserve trimming.  The state machine then checks the
invariants with real bytes, compaction included.
"""

from __future__ import annotations

import math
import random
import struct

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from tests.helpers import load_trace
from xcfbench.errors import InputError
from xcfbench.sim import tracegen
from xcfbench.sim.allocators import canonical_name, create, get_allocator_class
from xcfbench.sim.allocators.xcfmalloc import SENTINEL, XcfMalloc, XcfMallocV1
from xcfbench.sim.arch import I386, PAGE_SIZE, X86_64
from xcfbench.sim.trace import Trace, replay

RULES = {"v2": "xcfmalloc", "v1": "xcfmalloc-v1"}


def xcf(rule="v2", arch=I386, store=False, **options):
    """The Python reference itself: these tests read its internals.  create() hands out
    the C twin, which the state machine below and test_native.py hold to it."""
    return get_allocator_class(RULES[rule])(arch, store=store, **options)


def zv(a):
    """(zv_page_count, zv_desc_count, page_count, reserve_count)."""
    s = a.stats()
    return s["zv_page_count"], s["zv_desc_count"], s["page_count"], s["reserve_count"]


def blocks(a, handle):
    """[(page, offset, used size)] of an allocation's chain."""
    return [(a._slot[d] >> 6, (a._slot[d] & 63) << 6, a._size[d]) for d in a._chain(handle)]


# -- names, options, sizes ------------------------------------------------------------------


def test_registered_names_and_aliases():
    assert canonical_name("xcf") == "xcfmalloc"
    assert canonical_name("xcfmalloc-v1src") == "xcfmalloc-v1"
    assert isinstance(create("xcf", store=True), XcfMalloc) and create("xcf").rule == "v2"
    v1 = create("xcfmalloc-v1", store=True)
    assert isinstance(v1, XcfMallocV1) and v1.rule == "v1"
    assert create("xcf", rule="v1").rule == "v1"
    assert XcfMalloc.objects_span_pages and XcfMalloc.supports_compaction
    with pytest.raises(InputError):
        create("xcfmalloc-v1", rule="v2")
    with pytest.raises(ValueError):
        create("xcf", rule="v3")


@pytest.mark.parametrize(
    "arch,debug,hdr", [(I386, True, 12), (I386, False, 8), (X86_64, True, 16), (X86_64, False, 16)]
)
def test_header_and_max_alloc_size(arch, debug, hdr):
    a = xcf(arch=arch, debug=debug)
    assert a.hdr == hdr and a.max_alloc_size == PAGE_SIZE - hdr
    assert a.malloc(PAGE_SIZE - hdr) is not None
    assert a.malloc(PAGE_SIZE - hdr + 1) is None
    assert a.malloc(-1) is None


def test_string_options_from_the_cli():
    a = create("xcf", I386, debug="false", reserve_pages="4", max_pages="none")
    assert (a.hdr, a.reserve_pages, a.max_pages) == (8, 4, None)
    assert zv(a) == (0, 0, 4, 4)


# -- pool management (§2.4) ---------------------------------------------------------------


@pytest.mark.parametrize("rule", ["v2", "v1"])
def test_pool_starts_with_32_reserve_pages(rule):
    a = xcf(rule)
    assert zv(a) == (0, 0, 32, 32)
    assert a.pool_pages() == 0 and a.pages_held() == 32 and a.metadata_bytes() == 0
    a.check()


@pytest.mark.parametrize("rule", ["v2", "v1"])
def test_regression_vector_65845_allocations_of_64_bytes(rule):
    """§5.5: 64 + 12 = 76 bytes -> 128-byte blocks, 32 per page."""
    a = xcf(rule)
    for _ in range(65845):
        assert a.malloc(64) is not None
    assert zv(a) == (2058, 65846, 2090, 32)
    assert a.metadata_bytes() == 65846 * 24
    # §5.4: effective compression with descriptors, 3.711%
    effective = (a.pool_pages() + a.metadata_bytes() / 4096) / 65845
    assert effective == pytest.approx(0.037110, abs=5e-6)


def test_reserve_is_topped_up_at_the_start_of_malloc():
    a = xcf()
    h = a.malloc(100)  # takes a reserve page: 31 left until the next malloc
    assert zv(a) == (1, 2, 32, 31)  # the used block and its 3968-byte remainder
    a.malloc(100)  # first tops up to 32, then fits in the remainder
    assert zv(a) == (1, 3, 33, 32)
    a.free(h)
    assert zv(a) == (1, 3, 33, 32)
    a.check()


def test_decrease_pool_trims_to_reserve_pages_at_the_end_of_free():
    a = xcf(reserve_pages=2)
    hs = [a.malloc(4000) for _ in range(5)]  # one page each
    assert zv(a) == (5, 10, 6, 1)  # the last malloc took a reserve page
    for h in hs:
        a.free(h)
    assert zv(a) == (0, 0, 2, 2)
    a.check()


def test_max_pages_makes_increase_pool_stop():
    a = xcf(max_pages=3)
    assert zv(a) == (0, 0, 3, 3)
    assert [a.malloc(4000) is not None for _ in range(4)] == [True, True, True, False]
    assert zv(a) == (3, 6, 3, 0)


# -- block selection and splitting (§2.5, §2.6) -------------------------------------------


def test_best_fit_takes_the_head_of_its_list_lifo():
    a = xcf()
    h1, h2, h3, h4 = a.malloc(500), a.malloc(100), a.malloc(500), a.malloc(100)
    page = blocks(a, h1)[0][0]
    assert [blocks(a, h)[0][1] for h in (h1, h2, h3, h4)] == [0, 512, 640, 1152]
    a.free(h1)
    a.free(h3)  # two 512-byte blocks on list 7, the one at 640 on top
    h5 = a.malloc(450)  # 462 -> 512: best fit, the most recently freed
    assert blocks(a, h5) == [(page, 640, 462)]
    a.check()


def test_size_zero_is_a_64_byte_block():
    """xcf_malloc only refuses size > MAX_ALLOC_SIZE; size 0 takes one 64-byte block."""
    a = xcf(store=True)
    h = a.malloc(0)
    assert h is not None and a.alloc_size(h) == 0 and a.read(h) == b""
    assert blocks(a, h)[0][1:] == (0, 12)
    assert zv(a) == (1, 2, 32, 31)  # the remainder (4032 bytes, list 62) is no reserve
    a.free(h)
    assert zv(a) == (0, 0, 32, 32)


def test_v2_spans_dave_hansens_3k_walk():
    """S5: the second ~3 KiB allocation takes the 1 KiB remainder, then splits a page."""
    a = xcf("v2")
    h1 = a.malloc(3072)  # 3084 -> a 3136 block, 960 left on list 14
    page1 = blocks(a, h1)[0][0]
    assert blocks(a, h1) == [(page1, 0, 3084)]
    h2 = a.malloc(3072)  # 960 (948 bytes) + 2124 + 12 -> a 2176 block
    (p_a, off_a, size_a), (p_b, off_b, size_b) = blocks(a, h2)
    assert (p_a, off_a, size_a) == (page1, 3136, 960)
    assert p_b != page1 and (off_b, size_b) == (0, 2136)
    assert a.alloc_size(h2) == 3072
    assert zv(a) == (2, 4, 33, 31)  # 3 used blocks + the 1920-byte remainder
    a.check()
    a.free(h1)
    a.free(h2)  # both pages coalesce; one goes back to the kernel
    assert zv(a) == (0, 0, 32, 32)
    a.check()


def test_v1_never_spans():
    a = xcf("v1")
    h1 = a.malloc(3072)
    h2 = a.malloc(3072)  # the 960-byte remainder is too small: a new page
    assert len(blocks(a, h2)) == 1 and blocks(a, h2)[0][0] != blocks(a, h1)[0][0]
    assert zv(a) == (2, 4, 33, 31)
    a.check()


def test_smaller_scan_stops_at_list_1():
    """A 64-byte free block never becomes a first block unless it is the best fit."""
    a = xcf("v2")
    h = a.malloc(4020)  # 4032-byte block, 64 left on list 0
    assert zv(a) == (1, 2, 32, 31)
    h2 = a.malloc(200)  # list 0 is not scanned: a new page
    assert blocks(a, h2)[0][0] != blocks(a, h)[0][0]
    h3 = a.malloc(52)  # 52 + 12 = 64: the best fit is the 64-byte block
    assert blocks(a, h3) == [(blocks(a, h)[0][0], 4032, 64)]
    a.check()


@pytest.mark.parametrize("rule", ["v2", "v1"])
def test_undo_reinserts_the_first_block(rule):
    a = xcf(rule, max_pages=1)
    a.malloc(3000)  # 3012 -> 3072, 1024 left on list 15
    before = zv(a)
    assert a.malloc(3000) is None  # v2: takes the 1024 block, finds no second: undo
    assert zv(a) == before
    a.check()
    h = a.malloc(1000)  # 1012 -> the 1024 block is back, and the best fit
    assert blocks(a, h)[0][1:] == (3072, 1012)
    a.check()


def test_split_updates_the_next_blocks_prevoffset():
    a = xcf(store=True)
    h1, h2 = a.malloc(500), a.malloc(500)  # blocks at 0 and 512, 3072 free at 1024
    a.free(h1)
    h3 = a.malloc(100)  # best-fit list 1 is empty: smallest larger
    assert blocks(a, h3)[0][1] == 0  # splits the free 512 at 0: 128 + 384 free
    a.check()  # h2's header must now point back at 128
    page = blocks(a, h2)[0][0]
    assert struct.unpack_from("<IiI", a._mem[page], 512) == (h2, 128, SENTINEL)


# -- free and merge (§2.7) --------------------------------------------------------------------


def test_merge_with_both_neighbours():
    a = xcf()
    hs = [a.malloc(500) for _ in range(5)]  # 512-byte blocks 0..2048, 1536 free after
    a.free(hs[1])
    a.free(hs[3])
    assert zv(a)[1] == 3 + 2 + 1
    a.free(hs[2])  # merges 512 + 512 + 512 into one free block
    assert zv(a)[1] == 2 + 2
    a.check()
    a.free(hs[0])
    a.free(hs[4])  # the whole page is free: back to the reserve
    assert zv(a) == (0, 0, 32, 32)
    a.check()


# -- bytes (§2.8) and headers -------------------------------------------------------------


@pytest.mark.parametrize("arch,fmt", [(I386, "<IiI"), (X86_64, "<QiI")])
def test_headers_and_payload_are_where_the_kernel_puts_them(arch, fmt):
    a = create("xcf", arch, store=True)
    hdr = a.hdr
    h1 = a.malloc(3072)
    h2 = a.malloc(3072)  # spans: 960 block, then a new page
    data = bytes(random.Random(1).randbytes(3072))
    a.write(h2, data)
    (p1, o1, s1), (p2, o2, s2) = blocks(a, h2)
    assert a._mem[p1][o1 + hdr : o1 + s1] == data[: s1 - hdr]
    assert a._mem[p2][o2 + hdr : o2 + s2] == data[s1 - hdr :]
    assert a.read(h2) == data
    assert struct.unpack_from(fmt, a._mem[p1], o1) == (h2, 0, SENTINEL)  # prev: h1 at 0
    assert struct.unpack_from(fmt, a._mem[p1], 0) == (h1, 0, SENTINEL)
    with pytest.raises(ValueError):
        a.write(h1, b"short")


def test_check_catches_a_corrupted_header_and_bad_metadata():
    a = xcf(store=True)
    h = a.malloc(100)
    a.write(h, bytes(100))
    a.check()
    page = blocks(a, h)[0][0]
    a._mem[page][128 + 8] ^= 1  # the free remainder's sentinel
    with pytest.raises(AssertionError):
        a.check()
    b = xcf()
    b.malloc(100)
    b._size[b._heads[61]] -= 64  # a free block no longer tiles its page
    with pytest.raises(AssertionError):
        b.check()


def test_store_off_has_no_bytes():
    a = xcf()
    h = a.malloc(10)
    with pytest.raises(RuntimeError):
        a.read(h)


# -- compaction ---------------------------------------------------------------------------


def phase_change(seed=1) -> Trace:
    """A small phase-change trace (xcfbench.tracegen), quick enough to verify byte by byte."""
    return tracegen.phase_change(seed, n_small=8000, n_large=3000)


def test_compaction_moves_a_small_block_into_a_dense_pages_hole():
    a = xcf("v1", store=True)
    dense = a.malloc(3900)  # page C: 3968 used, 128 free
    filler = a.malloc(116)  # fills C's 128-byte hole
    small = a.malloc(100)  # so this one opens page A
    assert blocks(a, small)[0][0] != blocks(a, dense)[0][0]
    a.write(small, b"s" * 100)
    a.write(dense, b"d" * 3900)
    a.free(filler)
    assert a.pool_pages() == 2
    assert a.compact() == 1
    assert a.pool_pages() == 1
    assert blocks(a, small) == [(blocks(a, dense)[0][0], 3968, 112)]
    assert a.read(small) == b"s" * 100 and a.read(dense) == b"d" * 3900
    s = a.stats()
    assert (s["compact_pages_freed"], s["compact_blocks_moved"], s["compact_bytes_moved"]) == (
        1,
        1,
        100,
    )
    assert zv(a) == (1, 2, 33, 32)  # page A is in the reserve again
    a.check()


def test_compaction_splits_a_one_block_allocation_into_two_holes():
    a = xcf("v1", store=True)
    d1 = a.malloc(3400)  # 3412 -> 3456: 640 free on page 1
    d2 = a.malloc(3400)  # 640 free on page 2
    sparse = a.malloc(1000)  # page 3: 1024 used
    for h, c in ((d1, b"1"), (d2, b"2"), (sparse, b"x")):
        a.write(h, c * a.alloc_size(h))
    assert a.compact() == 1
    assert a.pool_pages() == 2
    assert len(blocks(a, sparse)) == 2  # 628 bytes in one hole, 372 in the other
    assert a.read(sparse) == b"x" * 1000
    assert a.read(d1) == b"1" * 3400 and a.read(d2) == b"2" * 3400
    a.check()
    a.free(sparse)
    a.free(d1)
    a.free(d2)
    assert zv(a) == (0, 0, 32, 32)


@pytest.mark.parametrize("rule", ["v2", "v1"])
@pytest.mark.parametrize("arch", [I386, X86_64], ids=["i386", "x86_64"])
def test_phase_change_compacts_to_within_5_percent(rule, arch):
    trace = phase_change()
    r = replay(trace, RULES[rule], arch, verify=True, compact="end")
    assert r.verify_errors == 0
    ideal = math.ceil(r.live_bytes / PAGE_SIZE)
    assert r.pool_pages > 1.3 * ideal  # fragmented before
    assert r.pool_pages_after_compact <= 1.05 * ideal
    s = r.allocator_stats
    assert (
        r.pages_compacted == s["compact_pages_freed"] == r.pool_pages - r.pool_pages_after_compact
    )
    assert s["compact_bytes_moved"] > 0 and s["compact_blocks_moved"] > 0


def test_compaction_is_deterministic():
    trace = phase_change(seed=3)
    runs = [replay(trace, "xcfmalloc", I386, compact="every:2000").to_dict() for _ in range(2)]
    assert runs[0] == runs[1]


@pytest.mark.parametrize(
    "arch,zsmalloc_after", [(I386, 10489), (X86_64, 10511)], ids=["i386", "x86_64"]
)
def test_churn_after_compaction_beats_zsmalloc(arch, zsmalloc_after):
    r = replay(load_trace("churn.trace"), "xcfmalloc", arch, compact="end")
    assert r.pool_pages_after_compact < zsmalloc_after
    assert r.pool_pages_after_compact <= 1.05 * math.ceil(r.live_bytes / PAGE_SIZE)


def test_churn_with_compaction_keeps_every_byte():
    ops = load_trace("churn.trace").ops[:30000]
    for name in RULES.values():
        r = replay(Trace("churn-30k", ops), name, I386, verify=True, compact="every:7000")
        assert r.verify_errors == 0 and r.pages_compacted >= 0


def test_compacting_an_empty_or_tight_pool_frees_nothing():
    a = xcf()
    assert a.compact() == 0
    for _ in range(64):
        a.malloc(116)  # two full pages of 128-byte blocks
    assert a.compact() == 0 and a.pool_pages() == 2
    a.check()


# -- the state machine ------------------------------------------------------------------------

SIZES = st.one_of(
    st.integers(0, 300),
    st.integers(0, 4100),
    st.integers(1500, 4084),
    st.sampled_from([0, 52, 53, 116, 4080, 4084, 4085, 4088]),
)


class XcfMachine(RuleBasedStateMachine):
    """A store-on allocator and a store-off twin get the same operations: accounting must
    agree, objects never overlap, every byte reads back (compaction included), and freeing
    everything returns the pool to its empty size."""

    @initialize(
        rule=st.sampled_from(["v2", "v1"]),
        arch=st.sampled_from([I386, X86_64]),
        debug=st.booleans(),
        reserve=st.sampled_from([1, 2, 3, 32]),
        max_pages=st.sampled_from([None, None, 6]),
    )
    def setup(self, rule, arch, debug, reserve, max_pages):
        opts = dict(debug=debug, reserve_pages=reserve, max_pages=max_pages)
        self.a = xcf(rule, arch, store=True, **opts)
        self.twin = create(RULES[rule], arch, **opts)  # the C twin when it is built
        self.live: dict[int, tuple[int, int, bytes]] = {}
        self.next_id = 0

    @rule(size=SIZES)
    def malloc(self, size):
        self._malloc(size)

    @rule(sizes=st.lists(SIZES, min_size=2, max_size=16))
    def malloc_many(self, sizes):
        """Batches grow the pool to several pages between compactions."""
        for size in sizes:
            self._malloc(size)

    def _malloc(self, size):
        h, g = self.a.malloc(size), self.twin.malloc(size)
        assert (h is None) == (g is None)
        if size > self.a.max_alloc_size:
            assert h is None
        if h is not None:
            data = random.Random(self.next_id).randbytes(size)
            self.a.write(h, data)
            self.live[self.next_id] = (h, g, data)
            self.next_id += 1

    @precondition(lambda self: self.live)
    @rule(data=st.data())
    def free(self, data):
        key = data.draw(st.sampled_from(sorted(self.live)))
        h, g, payload = self.live.pop(key)
        assert self.a.read(h) == payload
        self.a.free(h)
        self.twin.free(g)

    @precondition(lambda self: len(self.live) > 1)
    @rule(data=st.data())
    def free_many(self, data):
        """Free a random half: this is what leaves sparse pages for compaction."""
        keys = sorted(self.live)
        for key in data.draw(st.permutations(keys))[: len(keys) // 2]:
            h, g, payload = self.live.pop(key)
            assert self.a.read(h) == payload
            self.a.free(h)
            self.twin.free(g)

    @rule()
    def compact(self):
        before = self.a.pool_pages()
        freed = self.a.compact()
        assert freed == self.twin.compact()
        assert freed == before - self.a.pool_pages() >= 0

    @invariant()
    def accounting_matches(self):
        assert self.a.stats() == self.twin.stats()
        assert self.a.pool_pages() == self.twin.pool_pages()
        assert self.a.pages_held() == self.twin.pages_held()

    @invariant()
    def objects_are_intact_and_apart(self):
        taken = set()
        for h, _g, payload in self.live.values():
            assert self.a.read(h) == payload
            assert len(self.a._chain(h)) <= 2
            for page, off, size in blocks(self.a, h):
                units = {(page, u) for u in range(off >> 6, (off + size + 63) >> 6)}
                assert not units & taken
                taken |= units

    @invariant()
    def consistent(self):
        self.a.check()
        self.twin.check()

    def teardown(self):
        if not hasattr(self, "a"):
            return
        for h, g, _ in self.live.values():
            self.a.free(h)
            self.twin.free(g)
        self.a.check()
        pages = self.a.page_count
        assert self.a.pool_pages() == 0 and self.a.stats()["zv_desc_count"] == 0
        assert pages == (
            self.a.reserve_pages if self.a.max_pages is None else min(self.a.reserve_pages, pages)
        )


XcfMachine.TestCase.settings = settings(max_examples=80, stateful_step_count=60, deadline=None)
TestXcfMachine = XcfMachine.TestCase
