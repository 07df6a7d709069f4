"""lzo, lzo-rle and 842 as Linux 6.12 calls them, through our C extension _lzokernel.

No library reproduces these three: liblzo2 (python-lzo) hashes with a 2^14-entry
dictionary where the kernel uses 2^13, so about half the pages come out a few bytes
different; nothing on PyPI implements lzo-rle or the kernel's software 842.  _lzokernel.c
(beside this file) implements them from the spec (modern-compressors.md §2, §3, §7).

  lzo      zram: lib/lzo lzo1x_1_compress(src, 4096, dst, &len, wrkmem) with an 8 KiB
           destination (drivers/block/zram/backend_lzo.c); zswap: crypto/lzo.c, which
           calls lzo1x_1_compress_safe with the request's 4096-byte destination and
           fails (a zswap rejection) with LZO_E_OUTPUT_OVERRUN.  The _safe variant checks
           room before each copy and asks for a little more than it finally uses, so a
           page that would end at 4090 bytes can still fail: the C model replays those
           checks (cap=4096).  No parameters; no level.
  lzo-rle  the same encoder with bitstream version 1: a 2-byte header (17, 1) and runs
           of zero bytes coded as runs (lzorle1x_1_compress / _safe; backend_lzorle.c,
           crypto/lzo-rle.c).  zram's default since 5.1.  No level.
  842      lib/842 sw842_compress(src, 4096, dst, &len, wrkmem) for both callers
           (backend_842.c, crypto/842.c): 8-byte groups coded by templates, a CRC-32,
           padded to 8 bytes; -ENOSPC when the output exceeds the destination (zswap:
           more than 4096).  compress() gives the kernel's bytes; size() runs the same
           encoder counting bits only; decompress() is our bounds-checked decoder, which
           checks the CRC as lib/842 sw842_decompress does.
"""

from __future__ import annotations

from xcfbench.errors import InputError
from xcfbench.sim.compressors.base import Compressor

PAGE = 4096
ZSWAP_DST = 4096  # crypto/scompress.c hands zswap's one-page destination to the algorithm


def _module():
    try:
        import xcfbench.sim.compressors._lzokernel as _lzokernel
    except ImportError:
        raise InputError(
            "the C extension xcfbench.sim.compressors._lzokernel is not built:"
            " run `make venv` (or `pip install -e .`; it needs gcc)"
        ) from None
    return _lzokernel


class KernelLzo(Compressor):
    name = "lzo"
    summary = (
        "Linux 6.12 lzo1x_1_compress (2^13 dictionary), exact; zswap's default; our C extension"
    )
    speed = "about 140 000 pages/s"
    rle = False

    def __init__(self, level: int | None = None, call: str = "zram") -> None:
        super().__init__(level, call)
        self._c = _module()
        self._cap = ZSWAP_DST if call == "zswap" else None

    def compress(self, page: bytes) -> bytes | None:
        return self._c.compress(page, self.rle, self._cap)

    def size(self, page: bytes) -> int | None:
        n = self._c.size(page, self.rle, self._cap)
        return None if n < 0 else n

    def decompress(self, data: bytes) -> bytes:
        return self._c.decompress(data, PAGE)

    def version(self) -> str:
        return "xcfbench _lzokernel (Linux 6.12 lib/lzo model)"


class KernelLzoRle(KernelLzo):
    name = "lzo-rle"
    summary = (
        "Linux 6.12 lzorle1x_1_compress (lzo with zero runs), exact; zram's default;"
        " our C extension"
    )
    rle = True


class Sw842(Compressor):
    name = "842"
    summary = "Linux 6.12 software 842 (sw842_compress), exact; our C extension"
    speed = "about 24 000 pages/s"

    def __init__(self, level: int | None = None, call: str = "zram") -> None:
        super().__init__(level, call)
        c = _module()
        self._size = c.sw842_size
        self._compress = c.sw842_compress
        self._decompress = c.sw842_decompress
        self._cap = ZSWAP_DST if call == "zswap" else None

    def size(self, page: bytes) -> int | None:
        n = self._size(page)
        return None if self._cap is not None and n > self._cap else n

    def compress(self, page: bytes) -> bytes | None:
        data = self._compress(page)
        return None if self._cap is not None and len(data) > self._cap else data

    def decompress(self, data: bytes) -> bytes:
        return self._decompress(data, PAGE)

    def version(self) -> str:
        return "xcfbench _lzokernel (Linux 6.12 lib/842 sw842_compress model)"
