"""z3fold (Linux 6.12 mm/z3fold.c): header and threshold integers per arch, the buddy
choice, the deferred compaction (middle moves, BIG_CHUNK_GAP, moving a lone object to
another page, foreign handles), the work-item count, the steady state, state machines.

The reference traces (tests/test_reference.py -k z3fold) pin the page totals; churn.trace
also pins work_items_run (checked here, since test_reference compares page fields only).
The scenarios below are built so that one rule decides the page count: a page that can
take an object only if the rule moved the middle buddy, and so on.
"""

from __future__ import annotations

import pytest
from hypothesis import strategies as st

from tests.helpers import load_trace, make_allocator_machine, reference
from xcfbench.errors import InputError
from xcfbench.sim.allocators import create
from xcfbench.sim.allocators.z3fold import Z3fold
from xcfbench.sim.arch import I386, PAGE_SIZE, X86_64, get_arch
from xcfbench.sim.trace import replay

ARCHES = (I386, X86_64)
CHUNK = 64


def z3(arch=X86_64, store=False, **options):
    """The allocator as runs get it: the C twin when built (store=False)."""
    return create("z3fold", arch, store=store, **options)


def z3_ref(arch=X86_64, store=False, **options):
    """The pure reference, for tests that look inside it (its pages, its work queue,
    its attributes): the C twin has only the allocator calls, stats() and check()."""
    return Z3fold(arch, store=store, **options)


def zhdr_chunks(arch):
    return arch.z3fold_zhdr // CHUNK


def nchunks(arch):
    return 64 - zhdr_chunks(arch)


# -- the integers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "arch,zhdr,n,threshold", [(I386, 64, 63, 3968), (X86_64, 128, 62, 3904)], ids=["i386", "x86_64"]
)
def test_header_chunks_and_headless_threshold(arch, zhdr, n, threshold):
    a = z3(arch)
    assert a.stats()["zhdr_size_aligned"] == zhdr
    assert a.stats()["nchunks"] == n
    assert z3_ref(arch).headless_over == threshold == PAGE_SIZE - zhdr - 64  # not on the twin
    # threshold bytes still get a header page, with one chunk left for a small object
    a.malloc(threshold)
    a.malloc(64)
    assert a.pool_pages() == 1 and a.stats()["headless_pages"] == 0
    # one byte more is headless: a page of its own
    b = z3(arch)
    b.malloc(threshold + 1)
    b.malloc(64)
    assert b.pool_pages() == 2 and b.stats()["headless_pages"] == 1


@pytest.mark.parametrize("arch", ARCHES, ids=lambda a: a.name)
def test_limits(arch):
    a = z3(arch)
    assert a.max_alloc_size == PAGE_SIZE
    assert a.malloc(0) is None
    assert a.malloc(PAGE_SIZE + 1) is None
    h = a.malloc(PAGE_SIZE)
    assert h is not None and a.pool_pages() == 1
    a.free(h)
    assert a.pool_pages() == 0


def test_bad_option():
    with pytest.raises(InputError):
        z3(deferred="sometimes")


@pytest.mark.parametrize("arch", ARCHES, ids=lambda a: a.name)
def test_churn_work_items_match_the_kernel(arch):
    result = replay(load_trace("churn.trace"), "z3fold", arch).to_dict()
    expected = reference()["results"]["churn.trace"]["z3fold"][arch.name]
    for key in ("pool_pages", "work_items_run", "zhdr_size_aligned", "nchunks"):
        assert result[key] == expected[key], key
    assert result["work_items_run"] == {"i386": 42356, "x86_64": 41525}[arch.name]


# -- steady state: one size only -------------------------------------------------------------

# (size, objects, pages on i386, pages on x86_64): 3 per page while 3c <= NCHUNKS, 2 while
# 2c <= NCHUNKS, else 1; headless objects 1.
STEADY = [
    (64, 99, 33, 33),
    (1280, 99, 33, 33),  # 20 chunks: 3 per page on both
    (1344, 99, 33, 50),  # 21 chunks: 63 <= 63 but > 62
    (1345, 99, 50, 50),
    (1984, 99, 50, 50),  # 22..31 chunks: 2 per page
    (1985, 99, 99, 99),
    (3904, 99, 99, 99),  # 32 chunks and more: 1 per page
    (3968, 99, 99, 99),
    (4096, 99, 99, 99),  # headless on x86_64 / on both
    (80, 65859, 21953, 21953),  # seed-zero.trace
]


@pytest.mark.parametrize("size,n,p386,p64", STEADY)
def test_steady_state(size, n, p386, p64):
    for arch, pages in ((I386, p386), (X86_64, p64)):
        a = z3(arch)
        for _ in range(n):
            a.malloc(size)
        assert a.pool_pages() == pages, arch.name
        a.check()


# -- buddy choice ----------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ARCHES, ids=lambda a: a.name)
def test_first_last_middle_placement(arch):
    a = z3_ref(arch, store=True)  # reads _h_page
    zc = zhdr_chunks(arch)
    f, last_, m = a.malloc(640), a.malloc(1280), a.malloc(300)  # 10, 20, 5 chunks
    assert a.pool_pages() == 1
    page = a._h_page[f]
    assert (page.first, page.last, page.middle, page.start_middle) == (10, 20, 5, zc + 10)
    for h, fill in ((f, b"F"), (last_, b"L"), (m, b"M")):
        a.write(h, fill * {f: 640, last_: 1280, m: 300}[h])
    zhdr = arch.z3fold_zhdr
    assert page.buf[zhdr : zhdr + 640] == b"F" * 640
    assert page.buf[PAGE_SIZE - 1280 :] == b"L" * 1280
    assert page.buf[(zc + 10) * CHUNK : (zc + 10) * CHUNK + 300] == b"M" * 300
    assert page.lst == -1  # full: on no list
    a.check()


def test_takes_the_head_of_the_first_fitting_list():
    a = z3()
    p1 = a.malloc(3000)  # 47 chunks: page 1 on unbuddied[15]
    p2 = a.malloc(3000)  # page 2, also unbuddied[15], at its head
    a.malloc(900)  # 15 chunks: page 2
    a.free(p1)  # page 1 empty: released
    assert a.pool_pages() == 1
    a.free(p2)
    assert a.pool_pages() == 1


# -- deferred compaction ---------------------------------------------------------------------


def full_page(a, f, last_, m):
    """One page holding FIRST f, LAST last_, MIDDLE m chunks (m placed after FIRST)."""
    hf, hl, hm = a.malloc(f * CHUNK), a.malloc(last_ * CHUNK), a.malloc(m * CHUNK)
    assert a.pool_pages() == 1 and a._h_page[hf].lst == -1
    return hf, hl, hm


@pytest.mark.parametrize("arch", ARCHES, ids=lambda a: a.name)
@pytest.mark.parametrize("gain,moves", [(2, False), (3, True), (10, True)])
def test_middle_slides_to_last_only_for_big_gap(arch, gain, moves):
    a = z3_ref(arch, store=True)  # reads _h_page
    zc, n = zhdr_chunks(arch), nchunks(arch)
    f, m = 10, 10
    last_ = n - f - m - gain  # `gain` chunks between MIDDLE and LAST
    hf, hl, hm = full_page(a, f, last_, m)
    a.write(hm, b"m" * (m * CHUNK))
    a.free(hf)  # full page: compacted in z3fold_free itself
    assert a.stats()["work_items_run"] == 0
    page = a._h_page[hm]
    gap_before = page.start_middle - zc
    assert gap_before == (f + gain if moves else f)
    assert page.lst == gap_before
    a.malloc(gap_before * CHUNK)  # fits before the middle buddy
    assert a.pool_pages() == 1
    assert a.read(hm) == b"m" * (m * CHUNK)
    a.check()


@pytest.mark.parametrize("arch", ARCHES, ids=lambda a: a.name)
@pytest.mark.parametrize("gain,moves", [(2, False), (3, True)])
def test_middle_slides_to_first_only_for_big_gap(arch, gain, moves):
    a = z3_ref(arch, store=True)  # reads _h_page
    zc, n = zhdr_chunks(arch), nchunks(arch)
    f, m = 20, 10
    last_ = n - f - m - 2  # 2 chunks between MIDDLE and LAST: too few to slide
    hf, hl, hm = full_page(a, f, last_, m)
    a.free(hf)  # the middle stays where it is
    assert a._h_page[hm].start_middle == zc + f
    small = a.malloc((f - gain) * CHUNK)  # FIRST again, leaving `gain` chunks
    assert a._h_page[small] is a._h_page[hm]
    a.write(hm, b"m" * (m * CHUNK))
    a.free(hl)  # LAST goes: slide the middle left if the gain is >= 3
    page = a._h_page[hm]
    assert page.start_middle == (zc + f - gain if moves else zc + f)
    after = 64 - page.start_middle - m
    assert page.lst == after
    a.malloc(after * CHUNK)
    assert a.pool_pages() == 1
    assert a.read(hm) == b"m" * (m * CHUNK)
    a.check()


@pytest.mark.parametrize("arch", ARCHES, ids=lambda a: a.name)
def test_lone_middle_becomes_first(arch):
    a = z3_ref(arch, store=True)  # reads _h_page
    n = nchunks(arch)
    hf, hl, hm = full_page(a, 10, 20, 15)
    a.write(hm, b"x" * (15 * CHUNK))
    a.free(hf)
    a.free(hl)  # no other page to move it to: slid to the start
    page = a._h_page[hm]
    assert (page.first, page.middle, page.start_middle) == (15, 0, 0)
    assert page.lst == n - 15
    assert a.read(hm) == b"x" * (15 * CHUNK)
    a.malloc((n - 15) * CHUNK)
    assert a.pool_pages() == 1
    a.check()


@pytest.mark.parametrize("arch", ARCHES, ids=lambda a: a.name)
def test_lone_object_moves_to_another_page(arch):
    a = z3_ref(arch, store=True)  # reads _h_page
    n = nchunks(arch)
    ha = a.malloc(640)  # page A: FIRST 10 chunks
    hc = a.malloc(640)  # page A: LAST 10 chunks
    hx = a.malloc(50 * CHUNK)  # page B: FIRST 50 chunks, n - 50 free
    assert a.pool_pages() == 2
    a.write(hc, bytes(range(256)) * 2 + b"c" * 128)
    a.free(ha)  # page A keeps one object: it moves into page B
    assert a.pool_pages() == 1
    assert a.stats()["work_items_run"] == 2  # the compaction and the page release
    page_b = a._h_page[hx]
    assert a._h_page[hc] is page_b
    assert (page_b.last, page_b.foreign) == (10, 1)
    assert page_b.lst == n - 60
    assert a.read(hc) == bytes(range(256)) * 2 + b"c" * 128
    a.check()
    a.free(hx)  # page B keeps a foreign object: it stays put
    assert a.pool_pages() == 1 and a._h_page[hc] is page_b
    assert a.stats()["work_items_run"] == 3
    assert a.read(hc) == bytes(range(256)) * 2 + b"c" * 128
    a.free(hc)
    assert a.pool_pages() == 0
    assert a.stats()["work_items_run"] == 4
    a.check()


def test_lone_object_stays_when_nothing_fits():
    a = z3_ref()  # reads _h_page
    ha, hc = a.malloc(640), a.malloc(640)
    hx = a.malloc(55 * CHUNK)  # page B has 7 free chunks: too few for 10
    a.free(ha)
    assert a.pool_pages() == 2
    assert a._h_page[hc] is not a._h_page[hx]
    a.check()


def test_deferred_never_keeps_pages_until_the_work_runs():
    a = z3_ref(deferred="never")  # runs the queue: only the reference has run_deferred_work
    h1 = a.malloc(640)
    h2 = a.malloc(640)  # same page, LAST
    a.free(h1)  # queued, not run: the page keeps NEEDS_COMPACTING
    h3 = a.malloc(640)  # the marked page is skipped (and dropped from its list)
    assert a.pool_pages() == 2
    a.free(h2)  # the queued work holds a reference: still counted
    assert a.pool_pages() == 2
    assert a.stats()["work_items_run"] == 0
    a.check()
    assert a.run_deferred_work() == 2  # compaction, then the page release
    assert a.pool_pages() == 1
    a.free(h3)
    a.run_deferred_work()
    assert a.pool_pages() == 0
    a.check()


def test_check_catches_a_bad_refcount():
    # Corrupts a page of the reference (the twin has no way in); the twin's check() tests
    # the same refcount, and tests/test_native.py runs it after each lockstep run.
    a = z3_ref()
    h = a.malloc(100)
    a._h_page[h].refs += 1
    with pytest.raises(AssertionError):
        a.check()


# -- state machines ---------------------------------------------------------------------------

SIZES = st.one_of(
    st.integers(1, 1400),
    st.integers(1, PAGE_SIZE + 2),
    st.sampled_from([0, 64, 65, 640, 1280, 1344, 1984, 3904, 3905, 3968, 3969]),
)

TestZ3foldI386 = make_allocator_machine("z3fold", I386, SIZES).TestCase
TestZ3foldX86_64 = make_allocator_machine("z3fold", X86_64, SIZES).TestCase
TestZ3foldNever = make_allocator_machine(
    "z3fold",
    get_arch("x86_64"),
    SIZES,
    {"deferred": "never"},
    flush=lambda a: a.run_deferred_work(),
).TestCase
