"""The trace generators regenerate the reference traces exactly."""

from __future__ import annotations

import pytest

from tests.helpers import load_trace
from xcfbench.errors import InputError
from xcfbench.sim.trace import FREE, format_trace, parse_trace
from xcfbench.sim.tracegen import generate, parameters


@pytest.mark.parametrize(
    "kind,trace",
    [
        ("constant", "seed-zero.trace"),
        ("gauss", "seed-text-like.trace"),
        ("uniform", "uniform.trace"),
        ("churn", "churn.trace"),
    ],
)
def test_defaults_regenerate_reference_traces(kind, trace):
    assert generate(kind).ops == load_trace(trace).ops


def test_phase_change_shape():
    t = generate("phase-change", n_small=1000, n_large=300)
    allocs = [s for _, s in t.ops if s != FREE]
    assert len(allocs) == 1300 and len(t.ops) - 1300 == 900 + (100 + 300) // 2
    assert all(32 <= s <= 512 for s in allocs[:1000])
    assert all(2048 <= s <= 4000 for s in allocs[1000:])
    assert parse_trace(format_trace(t.ops).splitlines()).ops == t.ops  # legal trace


def test_parameters_and_errors():
    assert parameters("churn")["p"] == 0.4
    with pytest.raises(InputError, match="unknown trace kind 'zipf'"):
        generate("zipf")
    with pytest.raises(InputError, match="has no parameter 'colour'"):
        generate("uniform", colour=1)
    with pytest.raises(InputError, match="bad value 'x' for uniform parameter count"):
        generate("uniform", count="x")
