"""A run's pages by key: what a front end may ask of a pushed-out page.

Workload pages that repeat (zero pages, corpus pages) share a key, so their compressed
length, and whether they are same-filled, is computed once per run.  Front ends receive
the key, not a length: zram needs the bytes to test for a same-filled page and the length
to decide whether to store the page whole.

A workload that has recorded lengths instead of bytes (a profile) passes them as known:
an object with clen(key) and same_filled(key), asked instead of the compressor.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from xcfbench.sim.compressors.base import Compressor

WORD = 8  # zram compares machine words: unsigned long on a 64-bit kernel

K = TypeVar("K", bound=Hashable)  # a page's key: a workload's int, a page trace's digest


class PageCache(Generic[K]):
    __slots__ = ("page_of", "compressor", "keep_compressed", "sizes", "blobs", "_fills", "known")

    def __init__(
        self,
        page_of: Callable[[K], bytes],
        compressor: Compressor,
        keep_compressed: bool = False,
        known=None,
    ) -> None:
        self.page_of = page_of
        self.known = known
        self.compressor = compressor
        self.keep_compressed = keep_compressed  # --verify: the bytes are stored
        self.sizes: dict[K, int | None] = {}
        self.blobs: dict[K, bytes | None] = {}
        self._fills: dict[K, int | None] = {}

    def data(self, key: K) -> bytes:
        return self.page_of(key)

    def clen(self, key: K) -> int | None:
        """The compressed length, or None where the compressor call fails."""
        try:
            return self.sizes[key]
        except KeyError:
            pass
        if self.known is not None:
            n = self.known.clen(key)
        elif self.keep_compressed:
            blob = self.blobs[key] = self.compressor.compress(self.page_of(key))
            n = None if blob is None else len(blob)
        else:
            n = self.compressor.size(self.page_of(key))
        self.sizes[key] = n
        return n

    def compressed(self, key: K) -> bytes | None:
        """The compressed bytes; kept only when the run stores real bytes."""
        if key not in self.blobs:
            self.clen(key)
        return self.blobs.get(key)

    def same_filled(self, key: K) -> int | None:
        """The repeated word of a page whose every machine word is equal (zram's
        page_same_filled), or None."""
        try:
            return self._fills[key]
        except KeyError:
            pass
        if self.known is not None:
            value = self._fills[key] = self.known.same_filled(key)
            return value
        page = self.page_of(key)
        word = page[:WORD]
        value = int.from_bytes(word, "little") if page == word * (len(page) // WORD) else None
        self._fills[key] = value
        return value

    @property
    def distinct(self) -> int:
        return len(self.sizes)
