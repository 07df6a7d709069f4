"""The LRU lists: the C Lru against its reference (an OrderedDict) in lockstep, which one
runs when, and the runs that use them (the cgroup's LRU, zswap's) equal on both paths."""

from __future__ import annotations

import json
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xcfbench.sim.allocators import twins
from xcfbench.sim.lru import Lru, new_lru
from xcfbench.sim.memcg import MemCg

native = pytest.mark.skipif(twins.native_problem() is not None, reason="_native not built")

KEYS = st.integers(0, 40)
VALUES = st.sampled_from([None, True, False])
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("set"), KEYS, VALUES),
        st.tuples(st.just("get"), KEYS),
        st.tuples(st.just("del"), KEYS),
        st.tuples(st.just("pop"), KEYS),
        st.tuples(st.just("pop_default"), KEYS),
        st.tuples(st.just("popitem"), st.booleans()),
        st.tuples(st.just("move_to_end"), KEYS, st.booleans()),
        st.tuples(st.just("first")),
        st.tuples(st.just("pop_oldest"), st.integers(-1, 6)),
        st.tuples(st.just("touch"), KEYS, st.integers(-2, 30), st.integers(1, 8)),
    ),
    max_size=400,
)


def apply(lru, op):
    """op on lru: ("ok", result) or ("raises", exception type)."""
    name, *args = op
    try:
        if name == "set":
            lru[args[0]] = args[1]
            return "ok", None
        if name == "get":
            return "ok", lru[args[0]]
        if name == "del":
            del lru[args[0]]
            return "ok", None
        if name == "pop":
            return "ok", lru.pop(args[0])
        if name == "pop_default":
            return "ok", lru.pop(args[0], "default")
        if name == "popitem":
            return "ok", lru.popitem(last=args[0])
        if name == "move_to_end":
            return "ok", lru.move_to_end(args[0], last=args[1])
        return "ok", getattr(lru, name)(*args)
    except KeyError as e:
        return "raises", (KeyError, str(e))


def drain(lru, last):
    return [lru.popitem(last) for _ in range(len(lru))]


@native
@settings(max_examples=300, deadline=None)
@given(OPS, st.booleans())
def test_twin_keeps_the_reference_order_values_and_errors(ops, last):
    ref, twin = Lru(), twins._native.Lru()
    for op in ops:
        assert apply(twin, op) == apply(ref, op), op
        assert len(twin) == len(ref) and bool(twin) == bool(ref)
        assert [k in twin for k in range(42)] == [k in ref for k in range(42)]
        assert apply(twin, ("first",)) == apply(ref, ("first",))
    assert drain(twin, last) == drain(ref, last)
    assert not twin and len(twin) == 0


@native
def test_twin_refuses_what_it_cannot_hold():
    lru = twins._native.Lru()
    for key in ("a", 1.0, -1, 1 << 32, 1 << 70):
        assert key not in lru
        with pytest.raises(KeyError):
            lru[key]  # noqa: B018
    assert lru.pop(-1, "d") == "d"
    with pytest.raises(TypeError, match="keys are ints"):
        lru["a"] = None
    with pytest.raises(OverflowError):
        lru[-1] = None
    with pytest.raises(TypeError, match="values are None, True or False"):
        lru[1] = 1
    with pytest.raises(TypeError):
        lru.move_to_end(1, True, last=True)
    with pytest.raises(TypeError):
        twins._native.Lru({})


@native
def test_twin_takes_a_few_bytes_a_key():
    tracemalloc.start()
    try:
        lru = twins._native.Lru()
        for key in range(1 << 20):
            lru[key] = None
        size, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(lru) == 1 << 20
    assert size < 10 << 20  # 9 bytes a key (an OrderedDict: about 100)


def test_the_twin_runs_unless_pure(monkeypatch):
    monkeypatch.setenv("XCFBENCH_PURE", "1")
    assert type(new_lru()) is Lru
    monkeypatch.setenv("XCFBENCH_PURE", "")
    monkeypatch.setattr(twins, "_native", None)
    assert type(new_lru()) is Lru


@native
def test_the_twin_is_handed_out_when_built(monkeypatch):
    monkeypatch.setenv("XCFBENCH_PURE", "")
    assert type(new_lru()) is twins._native.Lru
    assert type(MemCg(64 << 12, overhead_pages=0).lru) is twins._native.Lru


@pytest.mark.parametrize("path", ["pure", "native", "unbuilt"])
def test_memcg_reclaim_counts_on_every_path(monkeypatch, path):
    if path == "native" and twins.native_problem() is not None:
        pytest.skip("_native not built")
    monkeypatch.setenv("XCFBENCH_PURE", "1" if path == "pure" else "")
    if path == "unbuilt":
        monkeypatch.setattr(twins, "_native", None)
    cg = MemCg(10 * 4096, overhead_pages=0, reclaim_batch=4)
    assert [cg.touch(p) for p in range(12)][-3:] == [[], [0, 1, 2, 3], []]
    assert cg.touch(4) == [] and cg.touch(12) == []  # 4 re-referenced; 8 resident, room
    cg.kmem_pages = 20  # over the limit with every page charged: one reclaim at a time
    assert cg.touch(13) == [5, 6, 7, 8] and cg.over()
    assert cg.reclaim() == [9, 10, 11, 4]
    assert (cg.reclaims, cg.evictions, cg.resident_pages) == (3, 12, 2)
    cg.putback([9, 10])
    assert cg.reclaim() == [12, 13, 9, 10] and cg.reclaim() == []
    cg.kmem_pages = 30
    assert cg.touch(0) == []  # a reclaim with nothing on the LRU still counts
    assert (cg.reclaims, cg.evictions, cg.resident_pages) == (5, 14, 1)


def _run_json(monkeypatch, path, **kw):
    from xcfbench.sim.config import RunConfig
    from xcfbench.sim.engine import run

    monkeypatch.setenv("XCFBENCH_PURE", "1" if path == "pure" else "")
    if path == "unbuilt":
        monkeypatch.setattr(twins, "_native", None)
    return json.dumps(run(RunConfig(**kw)).to_dict(), sort_keys=True)


CHURN = {"ops": 6000, "access": "zipf:1.1", "dirty": 0.3}


@pytest.mark.parametrize(
    "kw",
    [
        {"frontend": "zswap", "alloc": "zsmalloc", "totalram_bytes": 12 << 20, **CHURN},
        {"frontend": "zswap", "alloc": "zbud", "frontend_options": (("zswap_max", 2 << 20),)},
        {"frontend": "zram", "alloc": "zsmalloc", "ops": 6000, "access": "uniform"},
        {"frontend": "zcache", "alloc": "zbud", "arch": "x86_64", **CHURN},
    ],
    ids=lambda kw: f"{kw['frontend']}-{kw['alloc']}",
)
def test_runs_through_the_lrus_are_the_same_on_every_path(monkeypatch, kw):
    kw = {"fill": "text", "compressor": "lzo-rle", **kw}
    kw = {"size_bytes": 16 << 20, "limit_bytes": 8 << 20, "samples": 23, **kw}
    want = _run_json(monkeypatch, "pure", **kw)
    if twins.native_problem() is None:
        assert _run_json(monkeypatch, "native", **kw) == want
    assert _run_json(monkeypatch, "unbuilt", **kw) == want


def test_far_keys_move_the_list_to_the_reference_in_order(monkeypatch):
    from xcfbench.sim import lru as lru_mod

    c = lru_mod.new_lru()
    for k in (3, 1, 2):
        c[k] = k == 1
    c.move_to_end(3)
    assert lru_mod.listing(c, 1000) is c  # near keys stay in the C list
    far = lru_mod.listing(c, 10**12)
    assert isinstance(far, lru_mod.Lru) and list(far.items()) == [(1, True), (2, False), (3, False)]
    far[10**12] = True
    assert far.first() == (1, True) and len(far) == 4


def test_a_page_trace_with_far_slots_replays_through_zswap(tmp_path, runner):
    """Slots are a trace's to choose: one past 2**32 neither fails nor takes memory
    in proportion to its number, and both paths agree."""
    import json

    from xcfbench.cli import cli

    (tmp_path / "p.bin").write_bytes(bytes(range(256)) * 32)
    (tmp_path / "t.trace").write_text(
        "w 4000000000 0\nw 5 1\nw 99999999999999 0\nr 5\nd 4000000000\n"
    )
    args = [
        "replay",
        "--pages",
        str(tmp_path / "p.bin"),
        str(tmp_path / "t.trace"),
        "--frontend",
        "zswap",
        "--alloc",
        "zs",
        "-c",
        "lzo",
        "--json",
    ]
    fast = runner.invoke(cli, args)
    assert fast.exit_code == 0, fast.stderr
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XCFBENCH_PURE", "1")
        pure = runner.invoke(cli, args)
    assert json.loads(fast.stdout) == json.loads(pure.stdout)
