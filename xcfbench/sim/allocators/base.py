"""The allocator interface, shaped like the kernel's zpool ops.

An allocator sees only malloc(size) and free(handle), exactly what the kernel's allocator
saw from zcache, zram or zswap, and what a trace replays.  Everything it reports is page
accounting that must equal the kernel's own C code on the same call sequence.

Handles are opaque to callers; allocators use small ints or tuples, whatever is fastest.

Storage: with ``store=True`` an allocator keeps real page buffers (one bytearray per page)
and write()/read() copy bytes in and out of them exactly where the kernel would, so that a
layout bug (two live objects overlapping, a split that loses a byte) shows up as a wrong
read.  With ``store=False`` (the default, for speed) write() and read() are unavailable;
the accounting must be identical either way.
"""

from __future__ import annotations

from typing import Any, ClassVar

from xcfbench.sim.arch import I386, Arch


class Allocator:
    # Class attributes every allocator sets.
    name: ClassVar[str] = "?"
    aliases: ClassVar[tuple[str, ...]] = ()
    summary: ClassVar[str] = ""
    objects_span_pages: ClassVar[bool] = False
    supports_compaction: ClassVar[bool] = False
    has_size_classes: ClassVar[bool] = False  # stats()["classes"] is a debugfs-like table
    # Constructor options a user may set from the CLI (--opt name=value), with defaults.
    options: ClassVar[dict[str, Any]] = {}

    # Set per instance: depends on arch and options.
    max_alloc_size: int = 0

    def __init__(self, arch: Arch = I386, store: bool = False, **options: Any) -> None:
        self.arch = arch
        self.store = store

    # -- the zpool-like operations -------------------------------------------------------
    def malloc(self, size: int) -> Any | None:
        """Allocate size bytes; None when the allocator refuses (0, over max, no memory)."""
        raise NotImplementedError

    def free(self, handle: Any) -> None:
        raise NotImplementedError

    def write(self, handle: Any, data: bytes) -> None:
        """Copy len(data) bytes (the allocation's size) into the object."""
        raise NotImplementedError

    def read(self, handle: Any) -> bytes:
        """The object's bytes, as many as were allocated."""
        raise NotImplementedError

    # -- accounting -------------------------------------------------------------------------
    def pool_pages(self) -> int:
        """Pages the kernel reports for the pool (zv_page_count, zs_get_total_pages, ...)."""
        raise NotImplementedError

    def pages_held(self) -> int:
        """Every page held from the page allocator, reserves included."""
        return self.pool_pages()

    def stats(self) -> dict[str, Any]:
        """Allocator-specific counters (descriptors, class tables, ...); JSON-safe values."""
        return {}

    def metadata_bytes(self) -> int:
        """Bytes of metadata kept outside the pool pages (descriptor slabs, handle caches)."""
        return 0

    def compact(self) -> int:
        """Run compaction; return pages freed.  Only where supports_compaction is True."""
        raise NotImplementedError(f"{self.name} has no compaction")

    def check(self) -> None:
        """Verify internal invariants (free lists against page layouts); raise AssertionError.

        Slow; for tests and --verify.  The default checks nothing."""


class CountingAllocator:
    """An allocator as a front end sees it, counting its malloc and free calls: the
    engine hands it to the front end while churn runs, to report the frees and
    re-allocations the accesses caused.  Everything else goes to the allocator itself."""

    def __init__(self, alloc: Allocator) -> None:
        self.allocator = alloc
        self.mallocs = 0
        self.frees = 0

    def malloc(self, size: int) -> Any | None:
        self.mallocs += 1
        return self.allocator.malloc(size)

    def free(self, handle: Any) -> None:
        self.frees += 1
        self.allocator.free(handle)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.allocator, name)


def need_store(alloc: Allocator) -> None:
    if not alloc.store:
        raise RuntimeError(f"{alloc.name}: created with store=False, bytes are not kept")


# The registry, filled by @register as each allocator's module is imported (the package's
# __init__ imports them all), like the kernel's zpool driver list.
REGISTRY: dict[str, type[Allocator]] = {}
ALIASES: dict[str, str] = {}


def register(cls: type[Allocator]) -> type[Allocator]:
    for key in (cls.name, *cls.aliases):
        if key in REGISTRY or key in ALIASES:
            raise RuntimeError(f"allocator name {key!r} registered twice")
    REGISTRY[cls.name] = cls
    for alias in cls.aliases:
        ALIASES[alias] = cls.name
    return cls
