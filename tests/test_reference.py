"""Replay every reference trace and demand the kernel C allocators' exact numbers."""

from __future__ import annotations

import pytest

from tests.helpers import load_trace, reference_cases
from xcfbench.sim.allocators import REGISTRY, twins
from xcfbench.sim.arch import get_arch
from xcfbench.sim.trace import replay

FIELDS = (
    "pool_pages",
    "peak_pool_pages",
    "pages_held",
    "failed_allocs",
    "frees_of_failed",
    "live_objects",
    "live_bytes",
    "allocs",
    "frees",
    "peak_live_objects",
    "peak_live_bytes",
)
# Fields only some allocators report, compared wherever the reference has them.
OPTIONAL = ("desc_count", "pool_pages_after_compact", "huge_class_size")


@pytest.mark.parametrize("path", ["compiled", "pure"])
@pytest.mark.parametrize("trace,alloc,arch,expected", reference_cases())
def test_replay_matches_kernel(trace, alloc, arch, expected, path, monkeypatch):
    """On both paths: the C twins with the C replay loop, and the Python allocators."""
    assert alloc in REGISTRY, f"allocator {alloc} is not implemented"
    monkeypatch.setenv("XCFBENCH_PURE", "1" if path == "pure" else "")
    if path == "compiled" and twins.native_problem() is None:
        assert twins.has_twin(REGISTRY[alloc]), f"{alloc} has no C twin"
    compact = "end" if "pool_pages_after_compact" in expected else None
    got = replay(load_trace(trace), alloc, get_arch(arch), compact=compact).to_dict()
    want = {k: expected[k] for k in FIELDS + OPTIONAL if k in expected}
    assert {k: got.get(k) for k in want} == want


@pytest.mark.parametrize(
    "trace", ["seed-zero.trace", "seed-text-like.trace", "uniform.trace", "churn.trace"]
)
@pytest.mark.parametrize(
    "alloc", ["xvmalloc", "xcfmalloc", "xcfmalloc-v1", "zsmalloc", "zbud", "z3fold", "zblock"]
)
@pytest.mark.slow
def test_verify_keeps_every_byte(trace, alloc):
    """With real page buffers every object reads back intact (after compaction too), and
    the accounting is the same as without them."""
    arch = get_arch("i386")
    compact = "end" if REGISTRY[alloc].supports_compaction else None
    plain = replay(load_trace(trace), alloc, arch, compact=compact)
    checked = replay(load_trace(trace), alloc, arch, compact=compact, verify=True)
    assert checked.verify_errors == 0
    assert (
        checked.pool_pages,
        checked.peak_pool_pages,
        checked.pages_held,
        checked.pool_pages_after_compact,
    ) == (plain.pool_pages, plain.peak_pool_pages, plain.pages_held, plain.pool_pages_after_compact)
