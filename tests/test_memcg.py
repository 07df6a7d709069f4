"""The cgroup model: capacity, batch reclaim, LRU order."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from xcfbench.errors import InputError
from xcfbench.sim.arch import PAGE_SIZE
from xcfbench.sim.memcg import MemCg


def test_seed_geometry_sequential_writes():
    # 512 MB written into 256 MB with 352 pages of overhead: every one of the
    # 131072 - 65184 pages past capacity is pushed out, in 2059 batches of 32.
    cg = MemCg(256 << 20, overhead_pages=352, reclaim_batch=32)
    evicted = [p for i in range(131072) for p in cg.touch(i)]
    assert cg.capacity == 65184
    assert len(evicted) == 65888 == cg.evictions
    assert cg.reclaims == 2059
    assert evicted == list(range(65888))  # oldest first
    assert cg.resident_pages == 65184


def test_batch_leaves_resident_set_short_of_capacity():
    cg = MemCg(100 * 4096, overhead_pages=0, reclaim_batch=32)
    for i in range(101):
        cg.touch(i)
    assert cg.evictions == 32 and cg.resident_pages == 69


def test_retouch_moves_page_to_the_hot_end():
    cg = MemCg(3 * 4096, overhead_pages=0, reclaim_batch=1)
    for p in (0, 1, 2):
        cg.touch(p)
    assert cg.touch(0) == []
    assert cg.touch(3) == [1]


@given(st.lists(st.integers(0, 30), max_size=300), st.integers(1, 8), st.integers(8, 20))
def test_resident_never_exceeds_capacity_and_evicts_least_recent(refs, batch, cap):
    cg = MemCg(cap * 4096, overhead_pages=0, reclaim_batch=batch)
    recency: list[int] = []
    for p in refs:
        expected = [] if p in recency else recency[:batch] if len(recency) >= cap else []
        assert cg.touch(p) == expected
        if p in recency:
            recency.remove(p)
        else:
            del recency[: len(expected)]
        recency.append(p)
        assert cg.resident_pages <= cap


def test_limit_too_small_for_overhead():
    with pytest.raises(InputError, match="leaves no room"):
        MemCg(1 << 20, overhead_pages=256)


@given(capacity=st.integers(1, 300), batch=st.integers(1, 40), n_pages=st.integers(0, 2000))
def test_fifo_evictions_counts_what_touch_pushes_out(capacity, batch, n_pages):
    assume(batch <= capacity)
    cg = MemCg((capacity + 5) * PAGE_SIZE, overhead_pages=5, reclaim_batch=batch)
    pushed = sum(len(cg.touch(i)) for i in range(n_pages))
    assert cg.fifo_evictions(n_pages) == pushed == cg.evictions
