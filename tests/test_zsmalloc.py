"""zsmalloc (Linux 6.12) and zsmalloc-legacy (Linux 6.2): exact class tables, the spec's
derived numbers, kernel list/free-list order, compaction, and a store-on state machine.

The reference traces (tests/test_reference.py -k zsmalloc) pin pool pages before and
after compaction, but those totals hardly depend on list order: compaction always runs
until no class can free a zspage.  The scenario tests below pin the order itself (which
zspage zs_malloc picks, where a zspage goes in its list, which object moves where), as
read in mm/zsmalloc.c.  Handles are [zspage, slot, size, id]; the white-box tests look
at handle[0] (the zspage) and handle[1] (the slot).
"""

from __future__ import annotations

import random

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from xcfbench.errors import InputError
from xcfbench.sim.allocators import create
from xcfbench.sim.allocators.zsmalloc import (
    ZS_SIZE_CLASSES,
    chain_size,
    class_index,
    legacy_fullness,
    legacy_pages_per_zspage,
    ratio_fullness,
)
from xcfbench.sim.arch import I386, PAGE_SIZE, X86_64

ARCHES = {"i386": I386, "x86_64": X86_64}


@pytest.fixture(autouse=True)
def pure_path(monkeypatch):
    """These tests read the Python reference's internals (_classes, handle lists), so
    create() must hand it out, not its C twin (test_native.py holds the twin to it)."""
    monkeypatch.setenv("XCFBENCH_PURE", "1")


def zs(arch=X86_64, store=False, **options):
    return create("zsmalloc", arch, store=store, **options)


def legacy(arch=X86_64, store=False):
    return create("zsmalloc-legacy", arch, store=store)


def row(alloc, size):
    """The debugfs row of the class that serves a request of size bytes."""
    index = alloc._class_of[size].index
    return next(r for r in alloc.class_table(all=True) if r["class"] == index)


# -- the class table ------------------------------------------------------------------


def test_255_classes_of_16_bytes():
    a = zs()
    assert ZS_SIZE_CLASSES == 255 and len(a._classes) == 255
    assert [class_index(s) for s in (1, 32, 33, 48, 49, 4095, 4096, 4104)] == [
        0,
        0,
        1,
        1,
        2,
        254,
        254,
        254,
    ]
    assert a._classes[0].size == 32 and a._classes[254].size == PAGE_SIZE


def test_chain_8_top_of_table_matches_zsmalloc_rst():
    top = [
        (r["size"], r["pages_per_zspage"], r["objs_per_zspage"]) for r in zs().class_table(all=True)
    ][-8:]
    assert top == [
        (3072, 3, 4),
        (3184, 7, 9),
        (3264, 4, 5),
        (3408, 5, 6),
        (3504, 6, 7),
        (3584, 7, 8),
        (3632, 8, 9),
        (4096, 1, 1),
    ]


@pytest.mark.parametrize(
    "chain,watermark", [(4, (3264, 4, 5)), (8, (3632, 8, 9)), (16, (3840, 15, 16))]
)
def test_watermark_class_per_chain_size_matches_zsmalloc_rst(chain, watermark):
    """The largest class that packs more than one object (zsmalloc.rst's "watermark"
    column: 3264, 3632, 3840), then the huge class."""
    top = [
        (r["size"], r["pages_per_zspage"], r["objs_per_zspage"])
        for r in zs(X86_64, chain_size=chain).class_table(all=True)
    ][-2:]
    assert top == [watermark, (4096, 1, 1)]


@pytest.mark.parametrize(
    "chain,arch,huge,distinct",
    [(8, X86_64, 3625, 119), (4, X86_64, 3257, 69), (16, X86_64, 3833, 192), (8, I386, 3629, 119)],
)
def test_huge_class_size_and_distinct_classes(chain, arch, huge, distinct):
    a = zs(arch, chain_size=chain)
    assert a.huge_class_size == huge
    assert a.stats()["huge_class_size"] == huge
    assert len(a.class_table(all=True)) == distinct
    # A request of huge_class_size bytes is stored alone in one page; one byte less is not.
    assert a._class_of[huge].huge and a._class_of[huge].size == PAGE_SIZE
    assert not a._class_of[huge - 1].huge


def test_legacy_table():
    a = legacy()
    assert a.huge_class_size == 3257 and len(a.class_table(all=True)) == 69
    assert legacy(I386).huge_class_size == 3261


def test_chain_rules():
    assert chain_size(3184, 8) == 7 and chain_size(2048, 8) == 1
    assert chain_size(48, 8) == 3  # 3 pages hold 256 objects exactly
    # Integer percent: 1 page of 1632 B uses 79 %, 2 pages 99 %, 3 pages 92 %, 4 pages
    # 99 % (a tie, so 2 stays); 6.12 gives 1536-byte requests 8 pages of 1552 B.
    assert legacy_pages_per_zspage(1632) == 2 and chain_size(1552, 8) == 8


def test_fullness_groups():
    assert [ratio_fullness(n, 127) for n in (0, 1, 12, 13, 126, 127)] == [0, 1, 1, 2, 10, 11]
    assert [ratio_fullness(n, 9) for n in range(10)] == [0, 2, 3, 4, 5, 6, 7, 8, 9, 11]
    assert [ratio_fullness(n, 10) for n in (1, 9)] == [2, 10]
    # 3/4 threshold (the comment says 1/4): 6 of 9 is still almost empty.
    assert [legacy_fullness(n, 9) for n in (0, 1, 6, 7, 8, 9)] == [0, 1, 1, 2, 2, 3]


# L, (class size, pages, objects) for chain 8 and for legacy; x86_64, fill only.
STEADY = [
    (44, (64, 1, 64), (64, 1, 64)),
    (694, (704, 5, 29), (704, 4, 23)),
    (1024, (1056, 8, 31), (1088, 4, 15)),
    (1536, (1552, 8, 21), (1632, 2, 5)),
    (2048, (2176, 8, 15), (2336, 4, 7)),
    (2560, (2592, 7, 11), (2720, 2, 3)),
    (3072, (3184, 7, 9), (3264, 4, 5)),
    (3584, (3632, 8, 9), (4096, 1, 1)),
    (3625, (4096, 1, 1), (4096, 1, 1)),
]


@pytest.mark.parametrize("size,current,old", STEADY, ids=[str(s[0]) for s in STEADY])
def test_steady_state_table(size, current, old):
    for alloc, (csize, pages, objs) in ((zs(), current), (legacy(), old)):
        for _ in range(3 * objs):
            assert alloc.malloc(size) is not None
        assert alloc.pool_pages() == 3 * pages
        r = row(alloc, size)
        assert (r["size"], r["pages_per_zspage"], r["objs_per_zspage"]) == (csize, pages, objs)
        assert (r["obj_allocated"], r["obj_used"], r["pages_used"]) == (
            3 * objs,
            3 * objs,
            3 * pages,
        )
        alloc.malloc(size)
        assert alloc.pool_pages() == 4 * pages  # a new zspage only when all are full


# -- options and limits ---------------------------------------------------------------


@pytest.mark.parametrize("bad", [3, 17, 0, "8", 8.0, True, None])
def test_chain_size_must_be_4_to_16(bad):
    with pytest.raises(InputError, match="chain_size"):
        zs(chain_size=bad)


def test_options_through_the_registry():
    assert create("zs", X86_64, chain_size=16).huge_class_size == 3833
    with pytest.raises(InputError, match="no option 'chain_size'"):
        create("zsmalloc-legacy", X86_64, chain_size=8)
    with pytest.raises(InputError, match="no option"):
        create("zsmalloc", X86_64, chainsize=8)


def test_size_limits():
    a = zs()
    assert a.max_alloc_size == PAGE_SIZE
    assert a.malloc(0) is None and a.malloc(PAGE_SIZE + 1) is None and a.malloc(-1) is None
    h = a.malloc(PAGE_SIZE)
    assert a.pool_pages() == 1 and row(a, PAGE_SIZE)["obj_used"] == 1
    a.free(h)
    assert a.pool_pages() == 0
    with pytest.raises(ValueError, match="already freed"):
        a.free(h)


def test_metadata_is_the_handle_slab():
    for arch, word in ((I386, 4), (X86_64, 8)):
        a = zs(arch)
        hs = [a.malloc(100) for _ in range(10)]
        a.free(hs[0])
        assert a.metadata_bytes() == 9 * word


# -- zs_malloc / zs_free order --------------------------------------------------------


def test_new_zspage_hands_out_slots_in_order_and_reuses_lifo():
    a = zs()
    hs = [a.malloc(3072) for _ in range(5)]
    assert [h[1] for h in hs] == [0, 1, 2, 3, 4]
    a.free(hs[1])
    a.free(hs[3])
    assert [a.malloc(3072)[1] for _ in range(3)] == [3, 1, 5]
    a.check()


def test_malloc_takes_the_fullest_zspage():
    a = zs()  # class 3184: 9 objects, 7 pages
    hs = [a.malloc(3072) for _ in range(27)]
    A, B, C = hs[0][0], hs[9][0], hs[18][0]
    for h in hs[0:7] + hs[9:13] + hs[18:20]:  # A 2, B 5, C 7 in use
        a.free(h)
    assert a.malloc(3072)[0] is C  # 78 % beats 56 % and 22 %
    for h in hs[20:22]:  # C: 8 -> 6 (67 %)
        a.free(h)
    a.free(hs[13])  # B: 5 -> 4 (44 %)
    assert [a.malloc(3072)[0] for _ in range(2)] == [C, C]
    assert (A.inuse, B.inuse, C.inuse) == (2, 4, 8)
    a.check()


def test_group_order_is_head_insertion():
    a = zs()
    hs = [a.malloc(3072) for _ in range(27)]  # three full zspages
    A, B, C = hs[0][0], hs[9][0], hs[18][0]
    for first in (18, 0, 9):  # one object out of each: 8 of 9
        a.free(hs[first])
    assert list(A.cls.zspages(ratio_fullness(8, 9))) == [B, A, C]
    assert a.malloc(3072)[0] is B  # the zspage that entered last


def test_legacy_lists():
    a = legacy()  # class 3264: 5 objects, 4 pages
    hs = [a.malloc(3072) for _ in range(15)]
    A, B, C = hs[0][0], hs[5][0], hs[10][0]
    for h in hs[0:4]:  # A: 1 in use, almost empty
        a.free(h)
    for h in hs[5:7]:  # B: 3 in use, almost empty, at the
        a.free(h)  # head since 3 >= 1
    a.free(hs[10])  # C: 4 in use, almost full
    cls = A.cls
    assert list(cls.zspages(1)) == [B, A] and list(cls.zspages(2)) == [C]
    a.free(hs[7])  # B: 2 in use, same group, stays
    a.free(hs[11])  # C: 3 in use, enters at the head
    assert list(cls.zspages(1)) == [C, B, A]
    a.free(hs[4])  # A: empty, freed
    assert list(cls.zspages(1)) == [C, B] and a.pool_pages() == 8
    assert a.malloc(3072)[0] is C  # no almost-full zspage: C
    a.check()


def test_legacy_puts_a_less_used_zspage_behind_the_head():
    a = legacy()  # class 704: 23 objects, 4 pages
    hs = [a.malloc(694) for _ in range(46)]
    A, B = hs[0][0], hs[23][0]
    for h in hs[40:46]:  # B: 17 in use = 3 * 23 // 4
        a.free(h)
    for h in hs[17:23]:  # A: 17 in use, enters at the head
        a.free(h)
    for h in hs[10:17]:  # A: 10 in use, stays in place
        a.free(h)
    cls = A.cls
    assert list(cls.zspages(1)) == [A, B]
    # 19 free slots cannot free a 23-object zspage, but the old __zs_compact isolates
    # its source (the head, A) before asking; putting A back goes behind B (17 > 10).
    assert a.compact() == 0
    assert list(cls.zspages(1)) == [B, A]
    assert a.malloc(694)[0] is B
    a.check()


# -- compaction -----------------------------------------------------------------------


def fill_free(alloc, size, per_zspage, keep):
    """Fill len(keep) zspages, then free all but keep[i] objects of zspage i (the lowest
    slots stay).  Returns the handles kept, per zspage, and the zspages."""
    n = len(keep) * per_zspage
    hs = [alloc.malloc(size) for _ in range(n)]
    if alloc.store:
        for i, h in enumerate(hs):
            alloc.write(h, bytes([i]) * size)
    groups = [hs[i * per_zspage : (i + 1) * per_zspage] for i in range(len(keep))]
    for g, k in zip(groups, keep, strict=False):
        for h in reversed(g[k:]):
            alloc.free(h)
    return [g[:k] for g, k in zip(groups, keep, strict=False)], [g[0][0] for g in groups]


@pytest.mark.parametrize("store", [False, True])
def test_compaction_fills_the_fullest_from_the_emptiest(store):
    a = zs(store=store)  # class 3184: 9 objects, 7 pages
    kept, (A, B, C) = fill_free(a, 3072, 9, [2, 5, 8])
    assert row(a, 3072)["freeable"] == 7 and a.pool_pages() == 21
    moved_first, moved_second = kept[0]
    assert a.compact() == 7
    # C (8 of 9) took A's slot-0 object into its last freed slot (8) and became full;
    # then B, the fullest left, took A's other object; A was freed.
    assert (moved_first[0], moved_first[1]) == (C, 8)
    assert (moved_second[0], moved_second[1]) == (B, 5)
    assert C.inuse == 9 and B.inuse == 6 and A.cls is None
    assert a.pool_pages() == 14 and a.stats()["pages_compacted"] == 7
    assert row(a, 3072)["freeable"] == 0 and a.compact() == 0
    assert a.stats()["pages_compacted"] == 7
    if store:
        for h in kept[0] + kept[1] + kept[2]:
            assert a.read(h) == bytes([h[3] - 1]) * 3072
    a.check()


@pytest.mark.parametrize("store", [False, True])
def test_legacy_compaction_takes_the_almost_empty_head(store):
    a = legacy(store=store)  # class 3264: 5 objects, 4 pages
    hs = [a.malloc(3072) for _ in range(15)]
    for i, h in enumerate(hs):
        if store:
            a.write(h, bytes([i]) * 3072)
    A, B, C = hs[0][0], hs[5][0], hs[10][0]
    for h in hs[1:5] + hs[6:8] + hs[14:15]:  # A 1, B 3 (head: 3 >= 1), C 4
        a.free(h)
    cls = A.cls
    assert list(cls.zspages(1)) == [B, A] and list(cls.zspages(2)) == [C]
    assert a.compact() == 4
    # Source B (the head, not the emptiest): slot 0 fills C, slots 3 and 4 go to A.
    assert (hs[5][0], hs[5][1]) == (C, 4)
    assert [(h[0], h[1]) for h in hs[8:10]] == [(A, 4), (A, 3)]
    assert B.cls is None and A.inuse == 3 and C.inuse == 5 and a.pool_pages() == 8
    if store:
        for i in [0, 5, 8, 9, 10, 11, 12, 13]:
            assert a.read(hs[i]) == bytes([i]) * 3072
    a.check()
    # The 6.12 rules free A instead (the emptiest source).
    b = zs(store=store)
    kept, (A2, B2, C2) = fill_free(b, 3072, 9, [1, 6, 8])
    assert b.compact() == 7 and A2.cls is None and B2.cls is not None


def test_compaction_puts_a_partly_emptied_source_at_its_list_head():
    a = zs()  # class 704: 29 objects, 5 pages
    hs = [a.malloc(694) for _ in range(87)]
    T, S, D = hs[0][0], hs[29][0], hs[58][0]
    for h in hs[8:29][::-1] + hs[36:58][::-1] + hs[86:87]:
        a.free(h)  # T 8, then S 7 (both 20-29 %), D 28
    cls = S.cls
    assert list(cls.zspages(3)) == [S, T]
    # D takes one object from S and is full.  S (6) goes back to the head of its group,
    # in front of T (8), so S is the next destination and T the source that empties.
    assert a.compact() == 5
    assert T.cls is None and S.inuse == 14 and D.inuse == 29
    assert all(h[0] is S for h in hs[:8])
    a.check()


def test_compaction_covers_every_class():
    a = zs()
    fill_free(a, 3072, 9, [1, 8])  # class 3184: one zspage freeable
    fill_free(a, 694, 29, [1, 28])  # class 704: one zspage freeable
    assert a.compact() == 7 + 5
    assert a.pool_pages() == 7 + 5 and a.compact() == 0


# -- store=True layout ----------------------------------------------------------------


def test_in_object_handle_and_page_straddling_object():
    a = zs(X86_64, store=True)  # class 3184
    h0, h1 = a.malloc(3100), a.malloc(3100)
    assert h0[0].cls.size == 3184 and (h0[1], h1[1]) == (0, 1)
    data = bytes(range(256)) * 13
    a.write(h1, data[:3100])
    z = h1[0]
    # Slot 1 starts at 3184: its handle word, then the data across pages 0 and 1.
    assert int.from_bytes(z.pages[0][3184:3192], "little") == h1[3] << 1 | 1
    assert int.from_bytes(z.pages[0][0:8], "little") == h0[3] << 1 | 1
    assert bytes(z.pages[0][3192:4096]) == data[:904]
    assert bytes(z.pages[1][: 3100 - 904]) == data[904:3100]
    assert a.read(h1) == data[:3100]
    # Slot 2 is free and its link names slot 3 (untagged).
    assert int.from_bytes(z.pages[1][6368 - 4096 : 6376 - 4096], "little") == 3 << 1
    a.free(h0)  # slot 0 now links to slot 2
    assert int.from_bytes(z.pages[0][0:8], "little") == 2 << 1
    a.check()


def test_huge_object_has_no_header():
    a = zs(I386, store=True)
    h = a.malloc(4096)
    a.write(h, b"\xab" * 4096)
    assert bytes(h[0].pages[0]) == b"\xab" * 4096 and a.read(h) == b"\xab" * 4096
    a.check()


def test_check_notices_a_clobbered_header():
    a = zs(store=True)
    h = a.malloc(500)
    a.malloc(500)
    a.check()
    h[0].pages[0][0] ^= 0x10
    with pytest.raises(AssertionError, match="header"):
        a.check()


def test_check_notices_a_lost_zspage():
    a = zs()
    hs = [a.malloc(3072) for _ in range(10)]
    a.free(hs[0])
    cls = hs[1][0].cls
    cls.heads[cls.fullness_of[8]] = None
    with pytest.raises(AssertionError):
        a.check()


# -- the state machine ----------------------------------------------------------------

VARIANTS = [
    ("zsmalloc", X86_64, {}),
    ("zsmalloc", I386, {}),
    ("zsmalloc", X86_64, {"chain_size": 4}),
    ("zsmalloc", I386, {"chain_size": 16}),
    ("zsmalloc-legacy", X86_64, {}),
    ("zsmalloc-legacy", I386, {}),
]
# Mostly sizes whose zspages hold a few objects, so that batches fill zspages, random
# frees leave holes and compaction has objects to move; plus the limits and any size.
SIZES = st.one_of(
    st.sampled_from([600, 700, 1500, 2000, 3072, 3100, 3624]),
    st.sampled_from([0, 1, 24, 25, 3625, 3626, 4096, 4097]),
    st.integers(1, PAGE_SIZE),
)


class ZsMachine(RuleBasedStateMachine):
    """store=True and store=False pools fed the same calls must agree on every count;
    live objects never overlap and always read back, also across compaction."""

    @initialize(variant=st.sampled_from(VARIANTS))
    def setup(self, variant):
        name, arch, options = variant
        self.a = create(name, arch, store=True, **options)
        self.shadow = create(name, arch, store=False, **options)
        self.live = {}
        self.ids = 0

    @rule(size=SIZES, n=st.integers(1, 40))
    def malloc_batch(self, size, n):
        for _ in range(n):
            h, hs = self.a.malloc(size), self.shadow.malloc(size)
            assert (h is None) == (hs is None) == (not 0 < size <= PAGE_SIZE)
            if h is None:
                continue
            self.ids += 1
            data = random.Random(self.ids).randbytes(size)
            self.a.write(h, data)
            self.live[self.ids] = (h, hs, data)

    @rule(seed=st.integers(0, 2**32), fraction=st.floats(0.1, 1.0))
    def free_some(self, seed, fraction):
        rng = random.Random(seed)
        victims = [k for k in self.live if rng.random() < fraction]
        for k in victims:
            h, hs, data = self.live.pop(k)
            assert self.a.read(h) == data
            self.a.free(h)
            self.shadow.free(hs)

    @rule(
        size=st.sampled_from([600, 700, 1500, 2000, 3072, 3100, 3624]),
        n=st.integers(10, 60),
        seed=st.integers(0, 2**32),
    )
    def fill_punch_compact(self, size, n, seed):
        """Fill several zspages of one class, free about half, compact."""
        self.malloc_batch(size, n)
        self.free_some(seed, 0.5)
        self.compact()

    @rule()
    def compact(self):
        before = self.a.pool_pages()
        freed = self.a.compact()
        assert freed == self.shadow.compact()
        assert self.a.pool_pages() == before - freed
        assert all(r["freeable"] == 0 for r in self.a.class_table())
        for h, _, data in self.live.values():
            assert self.a.read(h) == data

    @invariant()
    def accounting_agrees(self):
        if not hasattr(self, "a"):
            return
        assert self.a.pool_pages() == self.shadow.pool_pages()
        assert self.a.stats() == self.shadow.stats()
        assert self.a.metadata_bytes() == len(self.live) * self.a.handle_size

    @invariant()
    def layout_is_sound(self):
        if not hasattr(self, "a"):
            return
        self.a.check()
        self.shadow.check()
        spans: dict[int, list[tuple[int, int]]] = {}
        for h, _, data in self.live.values():
            z, slot = h[0], h[1]
            cls = z.cls
            start = slot * cls.size
            end = start + len(data) + (0 if cls.huge else self.a.handle_size)
            assert end <= min(start + cls.size, cls.pages_per_zspage * PAGE_SIZE)
            spans.setdefault(id(z), []).append((start, end))
        for ranges in spans.values():
            ranges.sort()
            pairs = zip(ranges, ranges[1:], strict=False)
            assert all(a_end <= b_start for (_, a_end), (b_start, _) in pairs)

    def teardown(self):
        if not hasattr(self, "a"):
            return
        for h, hs, data in self.live.values():
            assert self.a.read(h) == data
            self.a.free(h)
            self.shadow.free(hs)
        assert self.a.pool_pages() == self.shadow.pool_pages() == 0
        assert self.a.class_table() == []
        self.a.check()


ZsMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=25, deadline=None)
TestZsMachine = ZsMachine.TestCase
