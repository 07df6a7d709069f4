"""zswap (Linux 6.12): the pool limit's hysteresis, writeback, memcg charging; CLI input."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from tests.helpers import sized_class, sized_pages
from xcfbench.cli import cli
from xcfbench.sim.config import RunConfig
from xcfbench.sim.engine import run
from xcfbench.sim.pagetrace import replay_pages


def zswap(monkeypatch, lengths, lines, **options):
    from xcfbench.sim import compressors

    monkeypatch.setitem(compressors.COMPRESSORS, "sized", sized_class())
    return replay_pages(
        lines,
        sized_pages(*lengths),
        frontend="zswap",
        compressor="sized",
        options=options,
        totalram_pages=100,
    )


def test_pool_limit_hysteresis(monkeypatch):
    # 4000-byte objects land in zsmalloc's huge class: one pool page each.  totalram 100
    # pages: max_pages 20, thr_pages 18.
    lines = [f"w {s} 0" for s in range(1, 23)]  # 20 stored, 2 refused at 20
    r = zswap(
        monkeypatch,
        [4000],
        lines + ["d 1", "w 30 0", "d 2", "w 31 0", "w 32 0", "w 33 0"],
        shrink_worker="off",
    )
    z = r["frontend_stats"]["zswap"]
    # 21, 22: pool 20 >= 20 -> pool_limit_hit; after d 1 the pool is 19: full, 19 > 18,
    # refused without a count; after d 2: 18 <= 18 accepts (19), then 20; then a hit.
    assert z["pool_limit_hit"] == 3
    assert z["stored_pages"] == 20 and r["failed_puts"] == 4
    assert r["frontend_stats"]["limits"]["rejected_while_full"] == 4


def test_shrink_worker_second_chance_and_writeback(monkeypatch):
    lines = [f"w {s} 0" for s in range(1, 24)]
    r = zswap(monkeypatch, [4000], lines)
    z = r["frontend_stats"]["zswap"]
    # 21st store: hit, the worker clears 16 referenced bits (16 failures) and stops; 22nd:
    # hit, 4 more second chances, then entries 1 and 2 are written back (pool 18 <= thr);
    # 23rd: 18 <= 18, accepted.
    assert (z["pool_limit_hit"], z["written_back_pages"], z["stored_pages"]) == (2, 2, 19)
    ms = r["frontend_stats"]["memory.stat"]
    assert ms == {
        "zswap": 19 * 4000,
        "zswapped": 19 * 4096,
        "zswpout": 21,
        "zswpin": 0,
        "zswpwb": 2,
    }


def test_zero_pages_and_exclusive_loads(monkeypatch):
    r = zswap(monkeypatch, [0, 120], ["w 1 0", "w 2 1", "r 1", "r 2", "r 2"])
    fs = r["frontend_stats"]
    assert fs["vmstat"]["swpout_zero"] == 1 and fs["vmstat"]["swpin_zero"] == 1
    assert fs["memory.stat"]["zswpin"] == 1 and fs["zswap"]["stored_pages"] == 0


def test_zswap_max_writes_back_the_cgroups_own_entries(monkeypatch):
    # memory.zswap.max 2 pages: at 8000 bytes charged (floor 1 page) stores continue;
    # at 12000 (2 pages) the store writes back one unreferenced entry first, or is refused
    lines = [f"w {s} 0" for s in range(1, 8)]
    r = zswap(monkeypatch, [4000], lines, zswap_max=2 * 4096, shrink_worker="off")
    fs = r["frontend_stats"]
    # stores 1..3 accepted (charged 0, 4000, 8000 bytes: under 2 pages); stores 4, 5, 6
    # (12000 bytes = 2 pages) each give one referenced entry its second chance (rotated
    # to the tail) and are refused; store 7 finds entry 1 unreferenced: written back,
    # and the store goes on without a re-check.
    assert fs["zswap"]["written_back_pages"] == 1
    assert fs["zswap"]["stored_pages"] == 3 and r["failed_puts"] == 3
    assert r["rejects"]["reject_memcg_limit"] == 3


def test_memcg_charge_pushes_out_more_than_zram():
    out = {}
    for fe in ("zram", "zswap"):
        cfg = RunConfig(
            alloc="zsmalloc",
            arch="x86_64",
            frontend=fe,
            size_bytes=32 << 20,
            limit_bytes=16 << 20,
            totalram_bytes=1 << 30,
        )
        out[fe] = run(cfg)
    assert out["zram"].pages_evicted == 4448
    assert out["zswap"].pages_evicted == 8191
    # the compressed bytes outgrow the cgroup: reclaim cannot make room (reported)
    assert out["zswap"].frontend_stats["memcg"]["reclaim_stalls"] == 1601
    assert out["zram"].frontend_stats["memcg"]["reclaim_stalls"] == 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "--frontend", "nope"], "unknown front end 'nope'"),
        (
            ["run", "--frontend", "zswap", "--recompress", "lz4"],
            "--recompress is an option of zram, not of --frontend zswap",
        ),
        (
            ["run", "--frontend", "zswap", "--max-pool-percent", "101", "-q"],
            "bad --max-pool-percent 101",
        ),
        (["run", "--frontend", "zram", "--comp-opt", "level=3", "-q"], "takes no level"),
        (["run", "--frontend", "zram", "--zram-mode", "disk", "-q"], "bad zram mode"),
    ],
)
def test_bad_input_one_line_exit_2(capsys, args, message):
    from xcfbench.cli import main

    with pytest.raises(SystemExit) as exc:
        main(args)
    err = capsys.readouterr().err
    assert exc.value.code == 2, err
    assert message in err and err.count("\n") == 1


def test_replay_page_trace_cli(tmp_path):
    pages = tmp_path / "p.bin"
    pages.write_bytes(bytes(4096) + b"\x11" * 4096)
    trace = tmp_path / "t.ptrace"
    trace.write_text("# zero and same-filled\nw 1 0\nw 2 1\nd 1\nc\n")
    r = CliRunner().invoke(
        cli,
        [
            "replay",
            "--frontend",
            "zram",
            "--zram-mode",
            "block",
            "--pages",
            str(pages),
            str(trace),
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    assert '"same_pages": 1' in r.output and '"notify_free": 1' in r.output
    trace.write_text("w 1 0\nw 2 7\n")
    from xcfbench.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["replay", "--frontend", "zram", "--pages", str(pages), str(trace)])
    assert exc.value.code == 2


# -- the per-slot tables: arrays indexed by slot, dicts for far slots --------------------------


def _random_trace(seed, n_ops, slots, n_pages):
    import random

    rng = random.Random(seed)
    lines = []
    for _ in range(n_ops):
        r, slot = rng.random(), rng.choice(slots)
        if r < 0.6:
            lines.append(f"w {slot} {rng.randrange(n_pages)}")
        elif r < 0.8:
            lines.append(f"r {slot}")
        else:
            lines.append(f"d {slot}")
    return lines


# zero pages, same-filled pages, huge (4000) and small objects, a failing compression
LENGTHS = [0, -1, 4000, 300, 1200, 0xFFFF, 2100, 64]
POOL_LIMITS = {"max_pool_percent": 12, "accept_threshold_percent": 70}


@pytest.mark.parametrize("pure", [False, True])
def test_far_slots_behave_as_near_ones(monkeypatch, pure):
    # the same trace on slots 1..40, on slots past 10**12 (kept in dicts) and on slots
    # 2041..2080 where, with a GROW_SPAN of 2060, the first stores past 2059 go to the
    # dicts and are taken into the arrays as they grow: equal results
    from xcfbench.sim.frontends import zswap as mod

    monkeypatch.setenv("XCFBENCH_PURE", "1" if pure else "")
    monkeypatch.setattr(mod, "GROW_SPAN", 2060)
    monkeypatch.setattr(mod, "MIN_SLOTS", 1)
    lines = _random_trace(5, 3000, list(range(1, 41)), len(LENGTHS))

    def shifted(offset):
        return [" ".join([f[0], str(int(f[1]) + offset), *f[2:]]) for f in map(str.split, lines)]

    near = zswap(monkeypatch, LENGTHS, lines, **POOL_LIMITS)
    fs = near["frontend_stats"]
    assert fs["zswap"]["written_back_pages"] > 0 and fs["zswap"]["pool_limit_hit"] > 0
    assert fs["vmstat"]["swpin_zero"] > 0 and near["rejects"]["reject_compress_fail"] > 0
    assert zswap(monkeypatch, LENGTHS, shifted(10**12), **POOL_LIMITS) == near
    assert zswap(monkeypatch, LENGTHS, shifted(2040), **POOL_LIMITS) == near


def test_far_entries_move_into_the_grown_arrays(monkeypatch):
    from xcfbench.sim.frontends import zswap as mod
    from xcfbench.sim.pagetrace import build

    monkeypatch.setattr(mod, "GROW_SPAN", 16)
    fe, key_of = build("zswap", sized_pages(0, 500), compressor="lz4")
    zero, page = key_of(0), key_of(1)
    assert fe.store(1, page) and fe.n_slots == 1024  # MIN_SLOTS
    assert fe.store(5000, page) and fe.store(5001, zero)  # 5000 >= 2 * 1024 + 16
    assert fe.entry(5000) is not None and set(fe.far_lengths) == {5000, 5001}
    for slot in (2000, 4010, 8000):  # each within 2 * n_slots + 16: the arrays grow
        assert fe.store(slot, page)
    assert fe.n_slots == 8001 and not fe.far_handles and not fe.far_lengths
    assert fe.load(5000) and fe.load(5001) and not fe.load(5000) and fe.invalidate(8000)
    assert fe.stored_pages == 3 and fe.compr_data_size == 3 * fe.pages.clen(page)
    assert fe.stats()["vmstat"]["swpin_zero"] == 1


def test_twin_tables_are_arrays_and_pure_ones_lists(monkeypatch):
    from xcfbench.sim.allocators import twins
    from xcfbench.sim.pagetrace import build

    lines = _random_trace(9, 2000, list(range(1, 300)), len(LENGTHS))
    results = {}
    for pure in (False, True):
        monkeypatch.setenv("XCFBENCH_PURE", "1" if pure else "")
        results[pure] = zswap(monkeypatch, LENGTHS, lines, **POOL_LIMITS)
        fe, key_of = build("zswap", sized_pages(*LENGTHS[2:5]), compressor="lz4")
        for slot in range(1, 100):
            assert fe.store(slot, key_of(slot % 3))
        twin = twins.is_twin(fe.alloc)
        assert twin == (not pure and twins.native_problem() is None)
        assert type(fe.handles).__name__ == ("array" if twin else "list")
        assert not fe.far_handles and not fe.far_lengths and not fe.keys
        handle, length = fe.entry(7)
        assert fe.entry(0) is None and fe.entry(10**15) is None
        assert fe.stored_pages == 99 and length == fe.pages.clen(key_of(1))
    assert results[False] == results[True]


def test_zero_slot_invalidate_and_load(monkeypatch):
    # a zeromap slot holds no entry: invalidate frees nothing (False); a load finds it
    # once; a store over it of a real page takes it out of the zeromap
    from xcfbench.sim.pagetrace import build

    fe, key_of = build("zswap", sized_pages(0, 500), compressor="lz4")
    for slot in (3, 10**13):
        assert fe.store(slot, key_of(0)) and fe.stored_pages == 0
        assert fe.invalidate(slot) is False
        assert fe.load(slot) is False
        assert fe.store(slot, key_of(0)) and fe.load(slot) and not fe.load(slot)
        assert fe.store(slot, key_of(0)) and fe.store(slot, key_of(1))
        assert fe.load(slot) and fe.stored_pages == 0
    assert fe.stats()["vmstat"]["swpin_zero"] == 2 and not fe.far_lengths
