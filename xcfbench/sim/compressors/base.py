"""The compressor interface.

A compressor models one kernel compressor as one caller invokes it.  zram's backends and
zswap's crypto path call the same algorithm differently (zstd's parameters, zswap's
4096-byte destination that turns an expanding page into a failure), so a compressor is
built for a call: ``call="zram"`` (the default) or ``call="zswap"``.

compress() returns the bytes the kernel would store, or None where the kernel call fails
(zswap counts that as a rejection); size() is its length, often computed without building
the bytes; decompress() gives the page back, for --verify.  version() names the library
or implementation so that a result says what produced its sizes.
"""

from __future__ import annotations

from typing import ClassVar

from xcfbench.errors import InputError

CALLS = ("zram", "zswap")


class Compressor:
    name: ClassVar[str]
    summary: ClassVar[str]
    # The levels the kernel accepts for this algorithm (zram's algorithm_params level=),
    # inclusive, and the one it uses by default; None: the algorithm takes no level.
    levels: ClassVar[tuple[int, int] | None] = None
    default_level: ClassVar[int | None] = None
    # The kernel calls this model reproduces; the seed's compressors model Linux 3.1 only.
    calls: ClassVar[tuple[str, ...]] = CALLS
    # A rough speed class for `xcfbench list`: distinct pages sized per second.
    speed: ClassVar[str] = ""

    def __init__(self, level: int | None = None, call: str = "zram") -> None:
        if call not in self.calls:
            raise InputError(
                f"compressor {self.name} has no {call!r} call (calls: {', '.join(self.calls)})"
            )
        if level is not None:
            if self.levels is None:
                raise InputError(f"compressor {self.name} takes no level")
            lo, hi = self.levels
            if not lo <= level <= hi:
                raise InputError(
                    f"compressor {self.name}: level {level} is out of range {lo}..{hi}"
                )
        self.level = self.default_level if level is None else level
        self.call = call

    def compress(self, page: bytes) -> bytes | None:
        raise NotImplementedError

    def size(self, page: bytes) -> int | None:
        data = self.compress(page)
        return None if data is None else len(data)

    def decompress(self, data: bytes) -> bytes:
        raise NotImplementedError

    def version(self) -> str:
        raise NotImplementedError

    def describe(self) -> dict[str, object]:
        """What a result's config records of this compressor."""
        return {"compressor_call": self.call, "compressor_level": self.level}
