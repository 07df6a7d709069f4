"""Helpers the tests share: the kernel's reference answers from the project's own copy in
tests/reference/ (MANIFEST lists each file's SHA-256; test_reference_copy.py checks it),
golden files, and small allocator and page builders.  Test modules import from here,
never from each other."""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from xcfbench.sim.allocators import create
from xcfbench.sim.trace import object_bytes

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


GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("XCFBENCH_UPDATE_GOLDEN") == "1"


def assert_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no golden file {path}; run with XCFBENCH_UPDATE_GOLDEN=1"
    expected = path.read_text(encoding="utf-8")
    assert text == expected, f"{name} differs from its golden file"


def make_allocator_machine(name, arch, sizes, options=None, flush=None):
    """A hypothesis state machine driving allocator `name` with store=True next to a
    store=False twin.  Checked at every step: refusals and page counts agree between the
    two, every live object reads back its own bytes (so no two live objects overlap),
    and check() holds; at the end, freeing everything leaves the two with the same pages,
    and the pool at 0 pages (after flush(alloc), if given: it runs on the store=True
    allocator only, since the C twins have no calls for tests, such as z3fold's
    run_deferred_work())."""
    options = options or {}

    class AllocatorMachine(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            self.alloc = create(name, arch, store=True, **options)
            self.twin = create(name, arch, store=False, **options)
            self.live = {}  # handle -> (bytes, twin handle)
            self.serial = 0

        @rule(size=sizes)
        def malloc(self, size):
            handle = self.alloc.malloc(size)
            twin = self.twin.malloc(size)
            assert (handle is None) == (twin is None)
            if handle is None:
                return
            assert handle not in self.live
            self.serial += 1
            data = object_bytes(self.serial, size)
            self.alloc.write(handle, data)
            self.live[handle] = (data, twin)

        @precondition(lambda self: self.live)
        @rule(data=st.data())
        def free(self, data):
            handle = data.draw(st.sampled_from(sorted(self.live)))
            expected, twin = self.live.pop(handle)
            assert self.alloc.read(handle) == expected
            self.alloc.free(handle)
            self.twin.free(twin)

        @invariant()
        def same_accounting(self):
            assert self.alloc.pool_pages() == self.twin.pool_pages()
            assert self.alloc.pages_held() == self.twin.pages_held()

        @invariant()
        def bytes_intact(self):
            for handle, (expected, _) in self.live.items():
                assert self.alloc.read(handle) == expected

        @invariant()
        def consistent(self):
            self.alloc.check()

        def teardown(self):
            for handle, (expected, twin) in list(self.live.items()):
                assert self.alloc.read(handle) == expected
                self.alloc.free(handle)
                self.twin.free(twin)
            self.live.clear()
            self.same_accounting()  # the frees above ran without the invariants
            if flush is not None:
                flush(self.alloc)
            self.alloc.check()
            assert self.alloc.pool_pages() == 0
            if flush is None:
                assert self.twin.pool_pages() == 0

    AllocatorMachine.TestCase.settings = settings(
        max_examples=60, stateful_step_count=40, deadline=None
    )
    return AllocatorMachine


def sized_class(name: str = "sized", recompress: dict[int, int] | None = None):
    from xcfbench.sim.compressors.base import Compressor

    class Sized(Compressor):
        calls = ("zram", "zswap")
        summary = "test: length in the page's first two bytes"

        def size(self, page):
            n = int.from_bytes(page[:2], "little")
            if recompress is not None:
                n = recompress.get(n, n)
            return None if n == 0xFFFF else n

        def compress(self, page):
            n = self.size(page)
            return None if n is None else bytes(n)

        def version(self):
            return "test"

    Sized.name = name
    return Sized


def sized_pages(*lengths: int) -> bytes:
    """Page i: length lengths[i]; rest distinct bytes (never same-filled).  A length of
    0 gives the zero page; -1 a same-filled page of 0x5a5a..."""
    out = []
    for i, n in enumerate(lengths):
        if n == 0:
            out.append(bytes(4096))
        elif n == -1:
            out.append(b"\x5a" * 4096)
        else:
            body = bytes((i * 7 + j) % 251 for j in range(4094))
            out.append(n.to_bytes(2, "little") + body)
    return b"".join(out)
