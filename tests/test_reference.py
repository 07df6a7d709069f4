"""Replay every reference trace and demand the kernel C allocators' exact numbers."""

from __future__ import annotations

import pytest

from xcfbench.allocators import REGISTRY
from xcfbench.arch import get_arch
from xcfbench.trace import replay

from .conftest import load_trace, reference_cases

FIELDS = ("pool_pages", "peak_pool_pages", "pages_held", "failed_allocs", "frees_of_failed",
          "live_objects", "live_bytes", "allocs", "frees", "peak_live_objects",
          "peak_live_bytes")
# Fields only some allocators report, compared wherever the reference has them.
OPTIONAL = ("desc_count", "pool_pages_after_compact", "huge_class_size")


@pytest.mark.parametrize("trace,alloc,arch,expected", reference_cases())
def test_replay_matches_kernel(trace, alloc, arch, expected):
    assert alloc in REGISTRY, f"allocator {alloc} is not implemented"
    compact = "end" if "pool_pages_after_compact" in expected else None
    got = replay(load_trace(trace), alloc, get_arch(arch), compact=compact).to_dict()
    want = {k: expected[k] for k in FIELDS + OPTIONAL if k in expected}
    assert {k: got.get(k) for k in want} == want
