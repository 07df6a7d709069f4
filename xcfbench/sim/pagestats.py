"""How well pages compress, page by page: what `xcfbench pages` computes.

For every page: its flags as the kernel tests them (zero: all 4096 bytes zero, what the
6.12 swap zeromap catches; same_filled: all 512 machine words equal, zram's
page_same_filled) and its compressed length under each compressor, as one call makes it
(zram's or zswap's; None where the call fails).  For each compressor a running summary,
in constant memory whatever the number of pages:

  mean_size, ratio      over the pages the call compressed (ratio = 4096 * pages / bytes)
  histogram             pages by size in 32-byte buckets (engine.HIST_SHIFT), as a run's
                        clen_histogram
  huge                  pages at or above zsmalloc's huge_class_size, which zram stores
                        whole (taken from the zsmalloc model for its chain size)
  zswap_rejected        pages zswap's call would fail on (its 4096-byte destination)
  zero, same_filled     pages zram (and zswap's zeromap) would not compress at all

Every page is compressed, zero and same-filled ones too: the flags say which ones the
kernel would skip, and the lengths stay comparable between compressors.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from xcfbench.sim.arch import PAGE_SIZE, get_arch
from xcfbench.sim.compressors import create_compressor
from xcfbench.sim.compressors.base import Compressor
from xcfbench.sim.pages import WORD

HIST_SHIFT = 5  # 32-byte buckets, as engine.HIST_SHIFT
ZERO_PAGE = bytes(PAGE_SIZE)
# Below this length a zram-call page certainly fits zswap's call: the limited calls produce
# the same bytes and their room checks ask at most this much more (kernel_libs, kernel_lzo).
# zstd's zswap call uses other parameters, so it is always run.
_ZSWAP_SURE = {"lzo": 64, "lzo-rle": 64, "lz4": 64, "lz4hc": 64, "deflate": 1, "842": 0}


def huge_class_size(chain_size: int | None = None, arch: str = "x86_64") -> int:
    """zsmalloc's huge_class_size for the chain size (CONFIG_ZSMALLOC_CHAIN_SIZE, 8)."""
    from xcfbench.sim.allocators.zsmalloc import ZsMalloc

    options: dict[str, Any] = {} if chain_size is None else {"chain_size": chain_size}
    return ZsMalloc(get_arch(arch), **options).huge_class_size


def same_filled(page: bytes) -> bool:
    return page == page[:WORD] * (len(page) // WORD)


class _Column:
    """One compressor's call, the zswap call beside it, and the running summary."""

    def __init__(self, name: str, call: str, options: dict[str, Any]) -> None:
        self.comp = create_compressor(name, call, **options)
        self.name = self.comp.name
        if call == "zswap":
            self.zswap: Compressor | None = None  # the sizes are zswap's already
        else:
            self.zswap = create_compressor(self.name, "zswap")
        self.sure = _ZSWAP_SURE.get(self.name)
        self.pages = self.compressed = self.total = self.huge = self.rejected = 0
        self.hist: list[int] = []

    def size(self, page: bytes, huge_at: int) -> int | None:
        n = self.comp.size(page)
        self.pages += 1
        if n is None:
            self.rejected += 1  # the zswap call failed
            return None
        self.compressed += 1
        self.total += n
        if n >= huge_at:
            self.huge += 1
        bucket = n >> HIST_SHIFT
        if bucket >= len(self.hist):
            self.hist.extend([0] * (bucket + 1 - len(self.hist)))
        self.hist[bucket] += 1
        if self.zswap is not None:
            if self.sure is None or n > PAGE_SIZE - self.sure:
                if self.zswap.size(page) is None:
                    self.rejected += 1
        return n

    def summary(self) -> dict[str, Any]:
        return {
            "compressor": self.name,
            "call": self.comp.call,
            "level": self.comp.level,
            "version": self.comp.version(),
            "pages": self.pages,
            "compressed_pages": self.compressed,
            "compressed_bytes": self.total,
            "mean_size": round(self.total / self.compressed, 3) if self.compressed else None,
            "ratio": round(PAGE_SIZE * self.compressed / self.total, 4) if self.total else None,
            "huge": self.huge,
            "huge_pct": _pct(self.huge, self.pages),
            "zswap_rejected": self.rejected,
            "zswap_rejected_pct": _pct(self.rejected, self.pages),
            "histogram": list(self.hist),
        }


class PageStats:
    """Feed pages with add(); each call returns the page's row; summary() at any time."""

    def __init__(
        self,
        compressors: Iterable[str],
        call: str = "zram",
        options: dict[str, Any] | None = None,
        chain_size: int | None = None,
    ) -> None:
        names = list(dict.fromkeys(compressors))
        if not names:
            from xcfbench.errors import InputError

            raise InputError("name at least one compressor (-c lzo,lzo-rle,...)")
        self.columns = [_Column(n, call, dict(options or {})) for n in names]
        self.call = call
        self.chain_size = chain_size
        self.huge_class_size = huge_class_size(chain_size)
        self.pages = self.zero = self.same_filled = 0

    def add(self, page: bytes) -> dict[str, Any]:
        zero = page == ZERO_PAGE
        same = zero or same_filled(page)
        row: dict[str, Any] = {"page": self.pages, "zero": zero, "same_filled": same}
        self.pages += 1
        self.zero += zero
        self.same_filled += same
        for col in self.columns:
            row[col.name] = col.size(page, self.huge_class_size)
        return row

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def summary(self) -> dict[str, Any]:
        return {
            "pages": self.pages,
            "call": self.call,
            "page_size": PAGE_SIZE,
            "histogram_bucket": 1 << HIST_SHIFT,
            "huge_class_size": self.huge_class_size,
            "chain_size": self.chain_size or 8,
            "zero": self.zero,
            "zero_pct": _pct(self.zero, self.pages),
            "same_filled": self.same_filled,
            "same_filled_pct": _pct(self.same_filled, self.pages),
            "compressors": [c.summary() for c in self.columns],
        }


def _pct(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 3) if whole else None
