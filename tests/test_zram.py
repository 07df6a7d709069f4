"""zram (Linux 6.12) with the kernel's own compressed lengths: exact mm_stat figures."""

from __future__ import annotations

import random

import pytest

from tests.helpers import sized_class, sized_pages
from tests.helpers_compressors import pages_data, register_table, sizes
from xcfbench.errors import InputError
from xcfbench.sim.arch import X86_64
from xcfbench.sim.pagetrace import replay_pages
from xcfbench.sim.trace import Trace, replay

N = 1990
HUGE = 3625  # huge_class_size, zsmalloc chain 8, 64-bit


def churn_trace(seed: int = 10, ops: int = 3000) -> list[str]:
    """Every reference page to its own block, then random overwrites and discards, then a
    compaction: the kind of trace the issue's live-kernel run used."""
    rng = random.Random(seed)
    lines = [f"w {n} {n}" for n in range(N)]
    for _ in range(ops):
        block = rng.randrange(N + 64)
        if rng.random() < 0.3:
            lines.append(f"d {block}")
        else:
            lines.append(f"w {block} {rng.randrange(N)}")
    lines.append("c")
    return lines


def expected_mm_stat(lines: list[str], alg: str, chain_size: int = 8) -> dict[str, int]:
    """mm_stat from the kernel's lengths, zram's rules and a zsmalloc replay of the
    allocation sequence they give (allocate the new object before freeing the old)."""
    rows = sizes()["pages"]
    hcs = {4: 3257, 8: 3625, 16: 3833}[chain_size]
    ops: list[tuple[int, int]] = []
    held: dict[int, tuple[str, int, int]] = {}  # block -> (kind, object id, size)
    next_id = 0
    compacts = 0
    huge_since = 0
    for line in lines:
        f = line.split()
        if f[0] == "c":
            compacts += 1
            continue
        block = int(f[1])
        old = held.pop(block, None)
        if f[0] == "w":
            row = rows[int(f[2])]
            if row["same_filled"]:
                held[block] = ("same", -1, 0)
            else:
                size = row["zram"][alg]
                huge = size >= hcs
                size = 4096 if huge else size
                huge_since += huge
                ops.append((next_id, size))
                held[block] = ("huge" if huge else "obj", next_id, size)
                next_id += 1
        if old is not None and old[0] != "same":
            ops.append((old[1], -1))
    assert compacts == 1 and lines[-1] == "c"
    r = replay(
        Trace("zram", tuple(ops)),
        "zsmalloc",
        X86_64,
        compact="end",
        options={"chain_size": chain_size},
    )
    return {
        "orig_data_size": len(held) * 4096,
        "compr_data_size": sum(s for _, _, s in held.values()),
        "mem_used_total": r.pool_pages_after_compact * 4096,
        "mem_limit": 0,
        "mem_used_max": r.peak_pool_pages * 4096,
        "same_pages": sum(k == "same" for k, _, _ in held.values()),
        "pages_compacted": r.pages_compacted,
        "huge_pages": sum(k == "huge" for k, _, _ in held.values()),
        "huge_pages_since": huge_since,
    }


def run_block(monkeypatch, alg: str, lines: list[str], chain_size: int = 8, **options):
    name = register_table(monkeypatch, alg)
    return replay_pages(
        lines,
        pages_data(),
        frontend="zram",
        compressor=name,
        options={"mode": "block", **options},
        alloc_options={"chain_size": chain_size},
    )


@pytest.mark.parametrize("alg", ["lz4", "lzo-rle"])
def test_reference_pages_block_mode_mm_stat(monkeypatch, alg):
    lines = churn_trace()
    result = run_block(monkeypatch, alg, lines)
    mm = result["frontend_stats"]["mm_stat"]
    assert mm == expected_mm_stat(lines, alg)
    pinned = {"lz4": MM_LZ4, "lzo-rle": MM_LZORLE}[alg]
    assert result["frontend_stats"]["lines"]["mm_stat"] == pinned


MM_LZ4 = " 6262784  3353071  5062656        0  6320128       41      192      170      474"
MM_LZORLE = " 6262784  3257813  4841472        0  6103040       41      149      173      491"


@pytest.mark.parametrize("chain_size", [4, 16])
def test_reference_pages_other_chain_sizes(monkeypatch, chain_size):
    lines = churn_trace(seed=3, ops=1500)
    result = run_block(monkeypatch, "lz4", lines, chain_size=chain_size)
    mm = result["frontend_stats"]["mm_stat"]
    assert mm == expected_mm_stat(lines, "lz4", chain_size)
    assert result["frontend_stats"]["zram"]["huge_class_size"] == {4: 3257, 16: 3833}[chain_size]


# -- rules, with pages whose first two bytes say their compressed length -----------------


def zram(monkeypatch, lengths, lines, recompress_map=None, **options):
    monkeypatch.setitem(
        __import__("xcfbench.sim.compressors", fromlist=["x"]).COMPRESSORS, "sized", sized_class()
    )
    if recompress_map is not None:
        monkeypatch.setitem(
            __import__("xcfbench.sim.compressors", fromlist=["x"]).COMPRESSORS,
            "sized2",
            sized_class("sized2", recompress_map),
        )
    options.setdefault("mode", "block")
    return replay_pages(
        lines, sized_pages(*lengths), frontend="zram", compressor="sized", options=options
    )


def test_same_filled_pages_cost_no_pool_page(monkeypatch):
    # block mode: the zero page and a 0x5a.. page are same-filled, no allocation
    r = zram(monkeypatch, [0, -1, 120], ["w 1 0", "w 2 1", "w 3 1", "w 4 2"])
    mm = r["frontend_stats"]["mm_stat"]
    assert (mm["same_pages"], mm["orig_data_size"], mm["compr_data_size"]) == (3, 4 * 4096, 120)
    assert mm["mem_used_total"] == 4096  # class 128 (120 + 8): 1 page, 32 objects
    # swap mode: the zero page never reaches zram (zeromap); the 0x5a page is same-filled
    r = zram(monkeypatch, [0, -1], ["w 1 0", "w 2 1"], mode="swap")
    fs = r["frontend_stats"]
    assert fs["mm_stat"]["same_pages"] == 1 and fs["mm_stat"]["orig_data_size"] == 4096
    assert fs["mm_stat"]["mem_used_total"] == 0 and fs["vmstat"]["swpout_zero"] == 1


def test_page_at_huge_class_size_is_stored_whole(monkeypatch):
    r = zram(monkeypatch, [3624, 3625, 5000], ["w 1 0", "w 2 1", "w 3 2"])
    mm = r["frontend_stats"]["mm_stat"]
    # 3624 + 8 = 3632: the 8-page, 9-object class; 3625 and 5000 stored as 4096 each
    assert mm["compr_data_size"] == 3624 + 4096 + 4096
    assert (mm["huge_pages"], mm["huge_pages_since"]) == (2, 2)
    assert mm["mem_used_total"] == (8 + 1 + 1) * 4096
    r = zram(monkeypatch, [3625, 100], ["w 1 0", "w 1 1", "d 1"])
    mm = r["frontend_stats"]["mm_stat"]
    assert (mm["huge_pages"], mm["huge_pages_since"], mm["orig_data_size"]) == (0, 1, 0)
    assert r["frontend_stats"]["io_stat"]["notify_free"] == 1


def test_mem_limit_refusals(monkeypatch):
    # 3000 + 8 -> class 3072: zspages of 3 pages, 4 objects, over a 1-page limit: the
    # write fails and the zspage made for it goes again; 120 + 8 -> class 128, 1 page.
    # A limit of 4000 bytes is PAGE_ALIGNed to one page.
    r = zram(monkeypatch, [3000, 120, -1], ["w 1 0", "w 2 1", "w 3 2", "w 4 1"], mem_limit=4000)
    fs = r["frontend_stats"]
    mm = fs["mm_stat"]
    assert fs["io_stat"]["failed_writes"] == 1
    assert mm["mem_limit"] == 4096 and mm["mem_used_total"] == 4096
    assert mm["mem_used_max"] == 3 * 4096  # updated before the limit check
    assert mm["orig_data_size"] == 3 * 4096 and mm["same_pages"] == 1
    assert r["rejects"] == {"mem_limit": 1}


def test_overwrite_allocates_before_freeing(monkeypatch):
    # one 3624-byte object fills 1/9 of an 8-page zspage; rewriting its slot with a
    # 3624-byte page needs a second slot of the same zspage, not a new one: 8 pages.
    # With mem_limit 8 pages, a 2000-byte overwrite needs a new zspage first: refused.
    r = zram(monkeypatch, [3624, 2000], ["w 1 0", "w 1 0", "w 1 1"], mem_limit=8 * 4096)
    mm = r["frontend_stats"]["mm_stat"]
    assert r["frontend_stats"]["io_stat"]["failed_writes"] == 1
    assert mm["compr_data_size"] == 3624 and mm["mem_used_total"] == 8 * 4096
    assert mm["mem_used_max"] == 9 * 4096


def test_swap_mode_frees_in_batches_of_64(monkeypatch):
    lengths = [100] * 200
    writes = [f"w {s} {s}" for s in range(200)]
    # a big swap device: the return cache is active; 64 frees stay in zram, the 65th
    # flushes those 64 first
    r = zram(
        monkeypatch, lengths, writes + [f"d {s}" for s in range(64)], mode="swap", swap_size=1 << 30
    )
    assert r["frontend_stats"]["io_stat"]["notify_free"] == 0
    assert r["frontend_stats"]["mm_stat"]["orig_data_size"] == 200 * 4096
    r = zram(
        monkeypatch, lengths, writes + [f"d {s}" for s in range(65)], mode="swap", swap_size=1 << 30
    )
    assert r["frontend_stats"]["io_stat"]["notify_free"] == 64
    assert r["frontend_stats"]["mm_stat"]["orig_data_size"] == (200 - 64) * 4096
    # 6.15+: immediate
    r = zram(
        monkeypatch,
        lengths,
        writes + [f"d {s}" for s in range(65)],
        mode="swap",
        swap_size=1 << 30,
        free_batch=False,
    )
    assert r["frontend_stats"]["io_stat"]["notify_free"] == 65
    # threshold: 2 CPUs, a swap device of 401 slots + header: free swap 401 - 200 = 201
    # is below 2*64*2 = 256 at the allocations, so the cache is off and frees immediate
    r = zram(monkeypatch, lengths, writes + ["d 0"], mode="swap", swap_size=402 * 4096, cpus=2)
    assert r["frontend_stats"]["io_stat"]["notify_free"] == 1
    # one CPU: 2*64 = 128 < 201, still active
    r = zram(monkeypatch, lengths, writes + ["d 0"], mode="swap", swap_size=402 * 4096, cpus=1)
    assert r["frontend_stats"]["io_stat"]["notify_free"] == 0
    # swap-in frees the slot through the cache too; zeromap slots are notified as well
    r = zram(
        monkeypatch,
        [0] + lengths,
        ["w 1 0", "r 1"] + [f"w {s} {s}" for s in range(2, 66)] + [f"d {s}" for s in range(2, 66)],
        mode="swap",
        swap_size=1 << 30,
    )
    fs = r["frontend_stats"]
    assert fs["io_stat"]["notify_free"] == 64 and fs["vmstat"]["swpin_zero"] == 1


def test_recompression_keeps_page_whose_class_does_not_shrink(monkeypatch):
    # secondary lengths: 3000 -> 2990 (same class 3008/3024 merged: no gain), 2000 -> 500,
    # 4000 (huge) -> 3000
    rmap = {3000: 2990, 2000: 500, 4000: 3000}
    lines = ["w 1 0", "w 2 1", "w 3 2", "R"]
    r = zram(monkeypatch, [3000, 2000, 4000], lines, recompress_map=rmap, recompress="sized2")
    fs = r["frontend_stats"]
    assert fs["mm_stat"]["compr_data_size"] == 3000 + 500 + 3000
    assert fs["mm_stat"]["huge_pages"] == 0 and fs["mm_stat"]["huge_pages_since"] == 1
    assert fs["zram"]["recompressed"] == 2
    # type=huge: only the huge page; max_pages=1; threshold=2500: 2000 is skipped
    r = zram(
        monkeypatch, [3000, 2000, 4000], lines, recompress_map=rmap, recompress="sized2 type=huge"
    )
    assert r["frontend_stats"]["mm_stat"]["compr_data_size"] == 3000 + 2000 + 3000
    r = zram(
        monkeypatch, [3000, 2000, 4000], lines, recompress_map=rmap, recompress="sized2,max_pages=1"
    )
    assert r["frontend_stats"]["mm_stat"]["compr_data_size"] == 3000 + 2000 + 4096
    r = zram(
        monkeypatch,
        [3000, 2000, 4000],
        lines,
        recompress_map=rmap,
        recompress="sized2 threshold=2500",
    )
    # 3000 tried, class does not shrink; 2000 < threshold skipped; huge -> 3000 >= threshold
    assert r["frontend_stats"]["mm_stat"]["compr_data_size"] == 3000 + 2000 + 4096
    # idle: nothing marked, nothing recompressed; after i, all
    r = zram(
        monkeypatch,
        [3000, 2000, 4000],
        ["w 1 0", "w 2 1", "R"],
        recompress_map=rmap,
        recompress="sized2 type=idle",
    )
    assert r["frontend_stats"]["zram"]["recompressed"] == 0
    r = zram(
        monkeypatch,
        [3000, 2000, 4000],
        ["w 1 0", "w 2 1", "i", "w 1 0", "R"],
        recompress_map=rmap,
        recompress="sized2 type=idle",
    )
    assert r["frontend_stats"]["mm_stat"]["compr_data_size"] == 3000 + 500


def test_writeback_counters(monkeypatch):
    lines = ["w 1 0", "w 2 1", "w 3 2", "w 4 3", "B", "r 1", "r 2", "d 3"]
    r = zram(monkeypatch, [4000, 4000, 4000, 100], lines, writeback="huge", writeback_limit=2)
    fs = r["frontend_stats"]
    assert fs["bd_stat"] == {"bd_count": 2, "bd_reads": 2, "bd_writes": 2}
    assert fs["lines"]["bd_stat"] == "       2        2        2"
    mm = fs["mm_stat"]
    # slot 1 and 2 written back (limit 2), stay in orig_data_size; slot 3 discarded
    assert mm["orig_data_size"] == 3 * 4096 and mm["huge_pages"] == 0
    assert mm["compr_data_size"] == 100 and mm["huge_pages_since"] == 3
    r = zram(monkeypatch, [4000, 100], ["w 1 0", "w 2 1", "i", "w 1 0", "B"], writeback="idle")
    assert r["frontend_stats"]["bd_stat"]["bd_writes"] == 1
    assert r["frontend_stats"]["mm_stat"]["compr_data_size"] == 4096


def test_stat_lines_exact_format(monkeypatch):
    r = zram(monkeypatch, [120], ["w 1 0"])
    lines = r["frontend_stats"]["lines"]
    assert lines["mm_stat"] == (
        "    4096      120     4096        0     4096        0        0        0        0"
    )
    assert lines["io_stat"] == "       0        0 0        0"
    assert lines["debug_stat"] == "version: 1\n       0        0"


def test_bad_page_trace(monkeypatch):
    with pytest.raises(InputError, match=r"<page trace>:2: page 5 is beyond"):
        zram(monkeypatch, [100], ["w 1 0", "w 1 5"])
    with pytest.raises(InputError, match=r":1: malformed page-trace line"):
        zram(monkeypatch, [100], ["x 1"])
    with pytest.raises(InputError, match=r":1: malformed"):
        zram(monkeypatch, [100], ["w -1 0"])
    with pytest.raises(InputError, match=r":1: recompression needs"):
        zram(monkeypatch, [100], ["R"])
    with pytest.raises(InputError, match="bad --recompress parameter"):
        zram(monkeypatch, [100], [], recompress="sized type=all")


# -- the table's compact storage (issue 12) -------------------------------------------------


def test_slot_map_keeps_dense_slots_in_an_array_and_far_ones_aside():
    from xcfbench.sim.frontends.zram import SlotMap

    m = SlotMap()
    # 0 makes an array of 1024; 6200 is past twice that + 4096: aside
    for slot, row in ((0, 1), (6200, 2), (10**12, 3), (3000, 4)):
        m.set(slot, row)
    assert len(m.dense) == 3001 and sorted(m.far) == [6200, 10**12]
    m.set(6300, 5)  # the array grows to 6301 and takes 6200 in
    assert len(m.dense) == 6301 and sorted(m.far) == [10**12]
    assert [m.get(s) for s in (0, 1, 3000, 6300, 6200, 10**12, 10**13)] == [1, 0, 4, 5, 2, 3, 0]
    assert list(m.rows_by_slot()) == [1, 4, 2, 5, 3]
    assert (m.pop(6200), m.pop(10**12), m.pop(10**12), m.pop(7)) == (2, 3, 0, 0)
    assert list(m.rows_by_slot()) == [1, 4, 5]


@pytest.mark.parametrize("mode", ["block", "swap"])
def test_writeback_and_recompression_walk_the_index_order(monkeypatch, mode):
    # written in the order 10**12, 7, 2**40, 0: in block mode the index is the block
    # (0 comes first), in swap mode each slot takes the next index (10**12 comes first)
    slots = [10**12, 7, 2**40, 0]
    writes = [f"w {s} {n}" for n, s in enumerate(slots)]
    first = 0 if mode == "block" else 10**12
    opts = {"mode": mode, "free_batch": False}
    r = zram(
        monkeypatch,
        [4000] * 4,
        writes + ["B", f"r {first}"],
        writeback="huge",
        writeback_limit=1,
        **opts,
    )
    assert r["frontend_stats"]["bd_stat"] == {
        "bd_count": 1 if mode == "block" else 0,
        "bd_reads": 1,
        "bd_writes": 1,
    }
    rmap = {4000: 3000}
    lines = writes + ["R", f"d {first}"]
    r = zram(
        monkeypatch, [4000] * 4, lines, recompress_map=rmap, recompress="sized2 max_pages=1", **opts
    )
    mm = r["frontend_stats"]["mm_stat"]
    assert (mm["compr_data_size"], mm["huge_pages"]) == (3 * 4096, 3)


def test_idle_marks_only_stored_pages_and_an_access_clears_it(monkeypatch):
    # same-filled and written-back pages are not marked; the zeromap page is not zram's
    lines = ["w 1 0", "w 2 1", "w 3 2", "w 4 3", "B", "i", "r 2", "B"]
    r = zram(monkeypatch, [4000, 100, -1, 0], lines, writeback="idle", mode="swap")
    fs = r["frontend_stats"]
    # the first B writes back nothing (nothing idle); after i, slots 1 and 2 are idle;
    # reading 2 clears it (its free waits in the return cache): the second B writes
    # back slot 1 only
    assert fs["bd_stat"]["bd_writes"] == 1 and fs["vmstat"]["swpout_zero"] == 1
    assert fs["mm_stat"]["same_pages"] == 1 and fs["mm_stat"]["compr_data_size"] == 100
    assert fs["zram"]["pending_frees"] == 1


def test_twin_and_python_allocator_tables_agree(monkeypatch):
    from array import array

    from xcfbench.sim.allocators import twins
    from xcfbench.sim.pagetrace import build

    if not twins.native_enabled():
        pytest.skip("_native not built, or XCFBENCH_PURE")
    rng = random.Random(5)
    lines = [f"w {s} {s % 40}" for s in range(300)]
    for _ in range(3000):
        op = rng.choice("wwwwrdiRBc")
        s = rng.randrange(400)
        lines.append(
            f"w {s} {rng.randrange(40)}" if op == "w" else op if op in "iRBc" else f"{op} {s}"
        )
    lengths = [0, -1] + [100 + 97 * k for k in range(38)]
    rmap = {n: n // 2 for n in lengths if n > 0}
    results, words = [], []
    for native in (True, False):
        if not native:
            monkeypatch.setattr(twins, "_native", None)
        for mode in ("swap", "block"):
            r = zram(
                monkeypatch,
                lengths,
                lines,
                recompress_map=rmap,
                recompress="sized2",
                writeback="idle",
                mode=mode,
                mem_limit=64 * 4096,
                cpus=2,
            )
            results.append(r)
        fe, _ = build("zram", sized_pages(100), compressor="lz4")
        words.append(type(fe.words))
    assert results[:2] == results[2:]
    assert results[0]["frontend_stats"]["bd_stat"]["bd_writes"] > 0
    assert words == [array, list]
