"""The Linux 3.1 zcache persistent path: header sizes, refusals, counters, real bytes."""

from __future__ import annotations

import pytest

from xcfbench.errors import InputError
from xcfbench.sim.allocators import create
from xcfbench.sim.arch import I386, X86_64
from xcfbench.sim.frontends.zcache import ZVH_SENTINEL, Zcache31


def make(arch=I386, store=False, **kw):
    alloc = create("ideal", arch, store=store)
    return Zcache31(alloc, arch, totalram_pages=1 << 20, **kw), alloc


@pytest.mark.parametrize("arch,size", [(I386, 36), (X86_64, 40)])
def test_zv_hdr_size_per_arch(arch, size):
    zc, _ = make(arch)
    assert zc.hdr_size == size == len(zc.header(12345))


def test_no_sentinel_header_is_32_bytes_on_i386():
    zc, _ = make(I386, sentinels=False)
    assert zc.hdr_size == 32 == len(zc.header(1))


def test_header_fields():
    zc, _ = make(I386)
    h = zc.header(0x1234)
    assert int.from_bytes(h[4:12], "little") == 0x4  # oid[0]: offset & 0xF
    assert int.from_bytes(h[28:32], "little") == 0x123  # index: offset >> 4
    assert int.from_bytes(h[32:36], "little") == ZVH_SENTINEL


def test_allocation_is_clen_plus_header():
    zc, alloc = make(I386)
    assert zc.put(1, 28)
    assert alloc.stats()["live_bytes"] == 64
    assert zc.zv_curr_dist_counts[1] == 1  # 64 bytes: one 64-byte chunk


def test_compress_poor_rejects_past_zv_max_zsize():
    zc, alloc = make(zv_max_zsize=3584)
    assert zc.put(1, 3584)
    assert not zc.put(2, 3585)
    assert zc.rejects["compress_poor"] == 1 and zc.failed_puts == 1 and zc.curr_pages == 1


def test_mean_compress_poor_compares_clen_without_header():
    zc, alloc = make(zv_max_zsize=3584, zv_max_mean_zsize=2560)
    assert zc.put(1, 3000)  # empty pool: the mean check is skipped
    # ideal holds ceil(3036/4096) = 1 page: mean 4096 bytes > 2560 -> refuse a poor page
    assert not zc.put(2, 2561)
    assert zc.rejects["mean_compress_poor"] == 1
    assert zc.put(3, 2560)  # not over zv_max_mean_zsize: the mean is not consulted


def test_policy_percent_cap():
    alloc = create("ideal", I386)
    zc = Zcache31(alloc, I386, totalram_pages=100, policy_percent=2)
    assert zc.put(1, 10) and zc.put(2, 10) and zc.put(3, 10)  # count 2 is not > 2
    assert not zc.put(4, 10)
    assert zc.rejects["policy_percent_exceeded"] == 1


def test_alloc_failure_is_a_failed_put():
    zc, alloc = make()
    alloc.malloc = lambda size: None  # the allocator is out of memory
    assert not zc.put(1, 100)
    assert zc.rejects["zv_alloc_fail"] == 1 and zc.failed_puts == 1 and zc.curr_pages == 0


def test_flush_and_duplicate_put():
    zc, alloc = make()
    zc.put(5, 100)
    zc.put(5, 200)  # dup: the old copy is dropped first
    assert zc.curr_pages == 1 and alloc.stats()["live_bytes"] == 236 and zc.flushes == 1
    assert zc.flush(5) and not zc.flush(5)
    assert zc.curr_pages == 0 and alloc.stats()["live_bytes"] == 0 and zc.compr_data_size == 0


def test_get_reads_back_header_and_data():
    zc, _ = make(store=True)
    zc.put(77, 5, b"hello")
    assert zc.get(77) == b"hello"


@pytest.mark.parametrize("knob", ["zv_max_zsize", "zv_max_mean_zsize"])
@pytest.mark.parametrize("value", [0, 3585, -1])
def test_knobs_out_of_sysfs_range(knob, value):
    with pytest.raises(InputError, match=f"{knob} {value} is out of range"):
        make(**{knob: value})
