"""Every C twin against its Python reference, in lockstep.

After every operation of every reference trace, and of random call sequences, the twin
must report the same pool_pages, pages_held and metadata_bytes as the Python allocator it
was made from, refuse the same allocations, and in the end give the same stats() and free
the same pages in compaction.  The kernel's own numbers are checked on both paths by
test_reference.py; this file makes sure nothing between those numbers differs either.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import load_trace
from xcfbench.sim.allocators import REGISTRY, twins
from xcfbench.sim.arch import ARCHES, PAGE_SIZE

pytestmark = pytest.mark.skipif(twins.native_problem() is not None, reason="_native not built")

TWINNED = sorted(name for name, cls in REGISTRY.items() if twins.has_twin(cls))
TRACES = ("seed-zero.trace", "seed-text-like.trace", "uniform.trace", "churn.trace")
# Options worth a lockstep run of their own, per allocator (besides the defaults).
VARIANTS: dict[str, list[dict]] = {
    "xcfmalloc": [
        {"debug": False},
        {"reserve_pages": 1, "max_pages": 900},
        {"reserve_pages": 2, "max_compact_passes": 1},
    ],
    "xcfmalloc-v1": [{"reserve_pages": 1, "max_pages": 900}],
    "zsmalloc": [{"chain_size": 4}, {"chain_size": 16}],
    "z3fold": [{"deferred": "never"}],
    "zblock": [{"edge_bug": False}, {"arch_header": True}],
}
STATS_EVERY = 997  # stats() is compared this often, and at the end


def cases():
    out = []
    for name in TWINNED:
        for options in [{}, *VARIANTS.get(name, [])]:
            if set(options) <= set(REGISTRY[name].options):
                out.append(pytest.param(name, options, id=f"{name}-{options}" if options else name))
    return out


def pair(name, arch, options):
    cls = REGISTRY[name]
    pure = cls(arch=ARCHES[arch], **options)
    return pure, twins.twin_of(cls(arch=ARCHES[arch], **options))


def lockstep(name, arch, options, ops, compact_every=0):
    pure, twin = pair(name, arch, options)
    assert twin.max_alloc_size == pure.max_alloc_size
    hp, ht = {}, {}
    for n, (oid, size) in enumerate(ops, 1):
        if size >= 0:
            a, b = pure.malloc(size), twin.malloc(size)
            assert (a is None) == (b is None), f"op {n}: malloc({size}) {a} vs {b}"
            if a is not None:
                hp[oid], ht[oid] = a, b
        elif oid in hp:
            pure.free(hp.pop(oid))
            twin.free(ht.pop(oid))
        want = (pure.pool_pages(), pure.pages_held(), pure.metadata_bytes())
        got = (twin.pool_pages(), twin.pages_held(), twin.metadata_bytes())
        assert got == want, f"op {n} ({oid}, {size}): pool, held, metadata"
        if n % STATS_EVERY == 0:
            assert twin.stats() == pure.stats(), f"stats after op {n}"
        if compact_every and n % compact_every == 0:
            assert twin.compact() == pure.compact(), f"compaction after op {n}"
    assert twin.stats() == pure.stats()
    if REGISTRY[name].supports_compaction:
        assert twin.compact() == pure.compact()
        assert (twin.pool_pages(), twin.pages_held(), twin.stats()) == (
            pure.pool_pages(),
            pure.pages_held(),
            pure.stats(),
        )
    twin.check()
    # Everything freed: both empty out the same way.
    for oid in list(hp):
        pure.free(hp.pop(oid))
        twin.free(ht.pop(oid))
    assert (twin.pool_pages(), twin.pages_held(), twin.stats()) == (
        pure.pool_pages(),
        pure.pages_held(),
        pure.stats(),
    )


@pytest.mark.parametrize("arch", ["i386", "x86_64"])
@pytest.mark.parametrize("trace", TRACES)
@pytest.mark.parametrize("name,options", cases())
def test_reference_traces_in_lockstep(name, options, trace, arch):
    compact_every = 5000 if REGISTRY[name].supports_compaction else 0
    lockstep(name, arch, options, load_trace(trace).ops, compact_every)


@st.composite
def call_sequences(draw, max_size):
    """Allocations of any size up to past the maximum, frees of random live objects."""
    ops, live, next_id = [], [], 0
    for _ in range(draw(st.integers(1, 400))):
        if live and draw(st.integers(0, 2)) == 0:
            oid = live.pop(draw(st.integers(0, len(live) - 1)))
            ops.append((oid, -1))
        else:
            size = draw(st.one_of(st.integers(0, max_size + 64), st.integers(0, 200)))
            ops.append((next_id, size))
            live.append(next_id)
            next_id += 1
    return ops


@pytest.mark.parametrize("name,options", cases())
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_random_sequences_in_lockstep(name, options, data):
    arch = data.draw(st.sampled_from(["i386", "x86_64"]))
    ops = data.draw(call_sequences(PAGE_SIZE))
    every = data.draw(st.sampled_from([0, 7, 50])) if REGISTRY[name].supports_compaction else 0
    lockstep(name, arch, options, ops, every)


def test_twins_are_handed_out_unless_pure(monkeypatch):
    from xcfbench.sim.allocators import create

    for name in TWINNED:
        assert getattr(create(name), "native", False), name
        assert not getattr(create(name, store=True), "native", False), name
    monkeypatch.setenv("XCFBENCH_PURE", "1")
    for name in TWINNED:
        assert not getattr(create(name), "native", False), name
