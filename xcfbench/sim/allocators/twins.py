"""The allocators' C twins, and which path a run takes.

Every allocator here is written in Python first, as the readable reference.  For speed,
xcfbench.sim._native (xcfbench/sim/native/*.c) has a C twin of each, which must give the
same page counts, stats() and metadata_bytes() on every call sequence; the tests run the
reference traces through both and compare them after every operation.

create() hands out the twin when there is one, it is built, and no real bytes are kept
(store=True, --verify, always takes the Python allocator: the twins keep no bytes).
XCFBENCH_PURE=1 in the environment forces the Python path everywhere.  When the extension
did not build, native_problem() says why, and the CLI says so once.
"""

from __future__ import annotations

import os
from typing import Any

from xcfbench.sim.allocators.base import Allocator

try:
    from xcfbench.sim import _native  # type: ignore[attr-defined]
except ImportError as e:  # not built: the pure path runs
    _native = None
    _IMPORT_ERROR: str | None = str(e)
else:
    _IMPORT_ERROR = None

# Pure allocator class name -> its twin's type name in _native.
TWIN_OF = {
    "Ideal": "Ideal",
    "Zbud": "Zbud",
    "Z3fold": "Z3fold",
    "XvMalloc": "Xvmalloc",
    "Zblock": "Zblock",
    "ZsMalloc": "Zsmalloc",
    "ZsMallocLegacy": "Zsmalloc",
    "XcfMalloc": "Xcfmalloc",
    "XcfMallocV1": "Xcfmalloc",
}
# Instance attributes a twin takes over from the pure allocator it was made from.
COPIED = ("arch", "max_alloc_size", "huge_class_size")
# The class attributes that describe an allocator (what `xcfbench list` and the CLI read).
DESCRIPTION = (
    "name",
    "aliases",
    "summary",
    "objects_span_pages",
    "supports_compaction",
    "has_size_classes",
    "options",
)

_classes: dict[type, type] = {}


def native_problem() -> str | None:
    """Why the compiled path is not available (None when it is)."""
    return _IMPORT_ERROR


def pure_forced() -> bool:
    return os.environ.get("XCFBENCH_PURE", "") not in ("", "0")


def native_enabled() -> bool:
    return _native is not None and not pure_forced()


def has_twin(cls: type[Allocator]) -> bool:
    return _native is not None and hasattr(_native, TWIN_OF.get(cls.__name__, "-"))


def twin_class(cls: type[Allocator]) -> type:
    """The Python face of cls's twin: the C type with cls's description."""
    twin = _classes.get(cls)
    if twin is None:
        base = getattr(_native, TWIN_OF[cls.__name__])
        attrs: dict[str, Any] = {k: getattr(cls, k) for k in DESCRIPTION}
        attrs.update(store=False, native=True, __module__=__name__, __doc__=cls.__doc__)
        twin = type(cls.__name__ + "Twin", (base,), attrs)
        _classes[cls] = twin
    return twin


def is_twin(alloc: Any) -> bool:
    return getattr(alloc, "native", False) is True


def replayer(alloc: Any, compact_every: int = 0) -> Any:
    """The C replay loop over a twin (see native/replay.c)."""
    return _native.Replayer(alloc, compact_every)


def zcache_write(*args: Any) -> dict[str, Any]:
    """A run's write phase through zcache 3.1, in C (native/zcache_write.c)."""
    return _native.zcache_write(*args)


def feed_statuses() -> tuple[int, int, int]:
    """Replayer.feed's statuses: a line for Python, a duplicate ID, a free of a dead ID."""
    return _native.FEED_SLOW, _native.FEED_DUP, _native.FEED_DEAD


def twin_of(pure: Allocator) -> Any:
    """The C twin of a freshly made pure allocator, with the same options."""
    twin = twin_class(type(pure))(pure)
    for attr in COPIED:
        if hasattr(pure, attr):
            setattr(twin, attr, getattr(pure, attr))
    return twin


def make_twin(pure: Allocator) -> Any:
    """pure's twin, or pure itself when the path is pure: no twin, not built,
    XCFBENCH_PURE, or real bytes kept."""
    if pure.store or not native_enabled() or not has_twin(type(pure)):
        return pure
    return twin_of(pure)
