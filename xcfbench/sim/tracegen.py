"""Synthetic allocation traces, each a pure function of its seed and parameters.

  constant      count allocations of one size (the seed's zero-page run: 65859 x 80)
  gauss         count allocations, round(gauss(mean, sd)) clipped to [lo, hi]
                (the seed's text-like run)
  uniform       count allocations, randint(lo, hi)
  churn         ops operations: with probability p free a random live object, else
                allocate randint(lo, hi)
  phase-change  fill with small objects, free most of them at random, fill with large
                ones, free half of what is live: the pattern that strands pages and that
                compaction exists for

With their defaults, constant, gauss, uniform and churn regenerate the reference traces
of tests/reference/traces byte for byte (a test checks it).

Parameters are checked before anything is generated: counts at most MAX_OPS (10**7),
sizes 0..MAX_OBJECT_SIZE with lo <= hi, probabilities and fractions in [0, 1].
"""

from __future__ import annotations

import inspect
import math
import random
from collections.abc import Callable
from typing import Any

from xcfbench.errors import InputError
from xcfbench.sim.trace import FREE, Trace

Ops = list[tuple[int, int]]


def constant(seed: int = 0, count: int = 65859, size: int = 80) -> Trace:
    return Trace(
        "constant", tuple((oid, size) for oid in range(count)), (f"{count} allocs of {size} bytes",)
    )


def gauss(
    seed: int = 20110907,
    count: int = 65925,
    mean: float = 3108,
    sd: float = 100,
    lo: int = 64,
    hi: int = 3584,
) -> Trace:
    rng = random.Random(seed)
    ops = [(oid, min(hi, max(lo, round(rng.gauss(mean, sd))))) for oid in range(count)]
    return Trace(
        "gauss",
        tuple(ops),
        (
            f"{count} allocs, size = clip(round(random.Random("
            f"{seed}).gauss({mean}, {sd})), {lo}, {hi})",
        ),
    )


def uniform(seed: int = 3, count: int = 50000, lo: int = 32, hi: int = 4000) -> Trace:
    rng = random.Random(seed)
    return Trace(
        "uniform",
        tuple((oid, rng.randint(lo, hi)) for oid in range(count)),
        (f"{count} allocs, size = random.Random({seed}).randint({lo}, {hi})",),
    )


def _free_random(rng: random.Random, live: list[int], ops: Ops, k: int) -> None:
    """Free k live objects chosen uniformly: swap the pick with the last and pop."""
    for _ in range(k):
        j = rng.randrange(len(live))
        live[j], live[-1] = live[-1], live[j]
        ops.append((live.pop(), FREE))


def churn(seed: int = 4, ops: int = 100000, p: float = 0.4, lo: int = 32, hi: int = 4000) -> Trace:
    rng = random.Random(seed)
    out: Ops = []
    live: list[int] = []
    next_id = 0
    for _ in range(ops):
        if live and rng.random() < p:
            _free_random(rng, live, out, 1)
        else:
            out.append((next_id, rng.randint(lo, hi)))
            live.append(next_id)
            next_id += 1
    return Trace(
        "churn",
        tuple(out),
        (
            f"{ops} ops, random.Random({seed}): free a random live"
            f" object with p={p}, else alloc randint({lo}, {hi})",
        ),
    )


def phase_change(
    seed: int = 1,
    n_small: int = 40000,
    small_lo: int = 32,
    small_hi: int = 512,
    keep_small: float = 0.1,
    n_large: int = 15000,
    large_lo: int = 2048,
    large_hi: int = 4000,
    free_frac: float = 0.5,
) -> Trace:
    rng = random.Random(seed)
    ops: Ops = []
    live: list[int] = []
    for oid in range(n_small):
        ops.append((oid, rng.randint(small_lo, small_hi)))
        live.append(oid)
    _free_random(rng, live, ops, int(n_small * (1 - keep_small)))
    for oid in range(n_small, n_small + n_large):
        ops.append((oid, rng.randint(large_lo, large_hi)))
        live.append(oid)
    _free_random(rng, live, ops, int(len(live) * free_frac))
    return Trace(
        "phase-change",
        tuple(ops),
        (
            f"random.Random({seed}): {n_small} allocs of {small_lo}..{small_hi}, free"
            f" {1 - keep_small:.0%} at random, {n_large} allocs of {large_lo}..{large_hi},"
            f" free {free_frac:.0%} of the live objects",
        ),
    )


GENERATORS: dict[str, Callable[..., Trace]] = {
    "constant": constant,
    "gauss": gauss,
    "uniform": uniform,
    "churn": churn,
    "phase-change": phase_change,
}


def parameters(kind: str) -> dict[str, object]:
    """A generator's parameters and their defaults."""
    return {name: p.default for name, p in inspect.signature(GENERATORS[kind]).parameters.items()}


MAX_OPS = 10_000_000  # operations (or objects) a generated trace may have
MAX_OBJECT_SIZE = 1 << 20  # bytes an object may have (allocators refuse past a page)

_COUNTS = ("count", "ops", "n_small", "n_large")
_FRACTIONS = ("p", "keep_small", "free_frac")
_RANGES = (("lo", "hi"), ("small_lo", "small_hi"), ("large_lo", "large_hi"))


def check_parameters(kind: str, params: dict[str, float]) -> None:
    """InputError for parameters a generator cannot honour (all of them, defaults merged;
    every generator parameter is an int or a float)."""
    for name, value in params.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise InputError(f"bad value {value!r} for {kind} parameter {name}: not finite")
        if name == "seed" and value >= 1 << 64:
            raise InputError(f"bad value {value!r} for {kind} parameter seed: at most 2**64-1")
        if name in _COUNTS and value > MAX_OPS:
            raise InputError(f"bad value {value!r} for {kind} parameter {name}: at most {MAX_OPS}")
        if name in _FRACTIONS and not 0 <= value <= 1:
            raise InputError(
                f"bad value {value!r} for {kind} parameter {name}: must be between 0 and 1"
            )
        if (
            name in ("size", "mean", "sd") + tuple(n for r in _RANGES for n in r)
            and value > MAX_OBJECT_SIZE
        ):
            raise InputError(
                f"bad value {value!r} for {kind} parameter {name}: at most {MAX_OBJECT_SIZE}"
            )
    for lo, hi in _RANGES:
        if lo in params and hi in params and params[lo] > params[hi]:
            raise InputError(
                f"bad {kind} parameters: {lo}={params[lo]} is more than {hi}={params[hi]}"
            )


def generate(kind: str, **params: object) -> Trace:
    if kind not in GENERATORS:
        raise InputError(f"unknown trace kind {kind!r}: choose from {', '.join(GENERATORS)}")
    known: dict[str, Any] = parameters(kind)
    typed: dict[str, Any] = {}
    for name, value in params.items():
        if name not in known:
            raise InputError(
                f"trace kind {kind} has no parameter {name!r} (parameters: {', '.join(known)})"
            )
        try:
            typed[name] = type(known[name])(value)
        except (TypeError, ValueError, OverflowError):
            raise InputError(f"bad value {value!r} for {kind} parameter {name}") from None
        if isinstance(typed[name], (int, float)) and typed[name] < 0:
            raise InputError(f"bad value {value!r} for {kind} parameter {name}: negative")
    check_parameters(kind, {**known, **typed})
    return GENERATORS[kind](**typed)
