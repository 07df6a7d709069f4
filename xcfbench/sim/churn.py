"""Churn after the initial write: which page each of --ops accesses touches.

--access names the draw over the written set of n pages (page numbers 0..n-1):

  sequential   0, 1, ..., n-1, 0, 1, ... (every access is the oldest page: LRU's worst case)
  uniform      each page equally likely
  zipf:S       page at rank k (1..n) with probability proportional to 1/k**S; the ranks
               are a seeded permutation of the pages (the hot pages are spread out)
  phases:K     the ops in K equal phases; phase j accesses, uniformly, the j-th of K
               equal contiguous slices of the pages (a working set that moves)
  phases:K:S   the same, zipf:S inside each slice (ranks permuted per phase)

Every draw comes from one random.Random seeded from --seed, in a fixed order, so a run is
deterministic; --dirty P draws one more number per access.
"""

from __future__ import annotations

import random
from bisect import bisect
from collections.abc import Callable
from itertools import accumulate

from xcfbench.errors import InputError

ACCESS_KINDS = ("sequential", "uniform", "zipf:S", "phases:K", "phases:K:S")


def parse_access(spec: str) -> tuple[str, int, float]:
    """'zipf:1.1' -> ('zipf', 0, 1.1); 'phases:4:1.2' -> ('phases', 4, 1.2)."""
    kind, _, rest = spec.partition(":")
    try:
        if kind in ("sequential", "uniform") and not rest:
            return kind, 0, 0.0
        if kind == "zipf":
            s = float(rest)
            if s > 0:
                return kind, 0, s
        if kind == "phases":
            k, _, s_text = rest.partition(":")
            phases, s = int(k), float(s_text) if s_text else 0.0
            if phases >= 1 and s >= 0:
                return kind, phases, s
    except ValueError:
        pass
    raise InputError(f"bad --access {spec!r}: choose from {', '.join(ACCESS_KINDS)}")


def parse_dirty(text: str | float) -> float:
    """'0.25' or '25%' -> 0.25."""
    raw = str(text).strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise InputError(f"bad --dirty {text!r}: a share 0..1 (or 0%..100%)")
    return value


def _zipf_draw(rng: random.Random, pages: list[int], s: float) -> Callable[[], int]:
    rng.shuffle(pages)
    cum = list(accumulate(1.0 / (k**s) for k in range(1, len(pages) + 1)))
    total, rand, last = cum[-1], rng.random, len(pages) - 1

    def draw() -> int:
        return pages[min(bisect(cum, rand() * total), last)]

    return draw


def access_sampler(spec: str, n: int, ops: int, rng: random.Random) -> Callable[[int], int]:
    """draw(j) -> the page number of access j (j = 0..ops-1, called in order)."""
    kind, phases, s = parse_access(spec)
    rand = rng.random
    if kind == "sequential":
        return lambda j: j % n
    if kind == "uniform":
        return lambda j: int(rand() * n)
    if kind == "zipf":
        draw = _zipf_draw(rng, list(range(n)), s)
        return lambda j: draw()
    state: dict[str, object] = {"phase": -1}

    def phased(j: int) -> int:
        phase = j * phases // max(ops, 1)
        if phase != state["phase"]:
            lo, hi = phase * n // phases, max((phase + 1) * n // phases, phase * n // phases + 1)
            state["phase"], state["lo"], state["w"] = phase, lo, min(hi, n) - lo
            state["draw"] = _zipf_draw(rng, list(range(lo, min(hi, n))), s) if s else None
        draw = state["draw"]
        if draw is not None:
            return draw()  # type: ignore[operator]
        return state["lo"] + int(rand() * state["w"])  # type: ignore[operator]

    return phased
