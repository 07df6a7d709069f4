"""Shared fixtures: the kernel's reference answers, from the project's own copy in
tests/reference/ (MANIFEST lists each file's SHA-256; test_reference_copy.py checks it)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "tests" / "reference"
TRACES = REFERENCE / "traces"
TRACE_FILES = ("seed-zero.trace", "seed-text-like.trace", "uniform.trace", "churn.trace")

# reference.json names the verbatim 2011 text "xcfmalloc-v1src"; we call it xcfmalloc-v1.
REFERENCE_NAMES = {"xcfmalloc-v1src": "xcfmalloc-v1"}


@cache
def reference() -> dict:
    with open(REFERENCE / "reference.json", encoding="utf-8") as f:
        return json.load(f)


@cache
def load_trace(name: str):
    from xcfbench.sim.trace import read_trace

    return read_trace(TRACES / name)


def reference_cases(allocators: set[str] | None = None):
    """(trace, our allocator name, arch, expected) for every reference entry."""
    cases = []
    for trace, per_alloc in reference()["results"].items():
        for ref_name, per_arch in per_alloc.items():
            name = REFERENCE_NAMES.get(ref_name, ref_name)
            if allocators is not None and name not in allocators:
                continue
            for arch, expected in per_arch.items():
                cases.append(pytest.param(trace, name, arch, expected, id=f"{trace}-{name}-{arch}"))
    return cases
