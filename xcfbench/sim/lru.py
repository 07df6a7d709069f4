"""The LRU lists: the cgroup's resident pages and zswap's stored slots, oldest first.

Lru is the reference: an OrderedDict of non-negative int keys (page indexes, swap slots)
to None or a bool, with the three methods its callers add.  new_lru() hands out its C
twin, xcfbench.sim._native.Lru (native/lru.c), which keeps the part of the OrderedDict
API the callers use (in, len, truth, lru[key], lru[key] = value, del, pop(key, default),
popitem(last), move_to_end(key, last)) and these methods in arrays indexed by key, a few
bytes a key instead of a Python object per entry.  XCFBENCH_PURE=1, or an extension that
did not build, gives the reference.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, TypeVar

from xcfbench.sim.allocators import twins

V = TypeVar("V")


class Lru(OrderedDict[int, V]):
    def first(self) -> tuple[int, V]:
        """The oldest (key, value); KeyError when empty."""
        for item in self.items():
            return item
        raise KeyError("dictionary is empty")

    def pop_oldest(self, n: int) -> list[int]:
        """Up to n keys off the oldest end, oldest first."""
        return [self.popitem(last=False)[0] for _ in range(min(n, len(self)))]

    def touch(self, key: int, room: int, batch: int) -> list[int] | None:
        """The cgroup's charge of a page: a listed key moves to the newest end (None);
        a new one, when room is used up, first has reclaim take up to batch keys off the
        oldest end, then is listed (value None).  The victims, or None with no reclaim."""
        if key in self:
            self.move_to_end(key)
            return None
        victims = self.pop_oldest(batch) if len(self) >= room else None
        self[key] = None  # type: ignore[assignment]  # the cgroup's values are None
        return victims


# The C twin's arrays are indexed by key, so its memory follows the largest key.  Keys
# are dense where the engine numbers them (pages, swap slots), but a page trace names any
# slot it likes: a key this far past the listed count goes to the reference instead.
SPARSE_FACTOR = 4
DENSE_FLOOR = 1 << 16


def listing(lru: Any, key: int) -> Any:
    """lru itself when key can be listed in it at a memory cost that follows the listed
    count; else the same list, in the same order, as the reference."""
    if isinstance(lru, Lru) or key < SPARSE_FACTOR * max(len(lru), DENSE_FLOOR):
        return lru
    ref: Lru[Any] = Lru()
    while lru:
        k, v = lru.popitem(last=False)
        ref[k] = v
    return ref


def new_lru() -> Lru[Any]:
    """The C twin when the native path runs, else the reference."""
    if twins.native_enabled() and hasattr(twins._native, "Lru"):
        return twins._native.Lru()
    return Lru()
