"""lz4, lz4hc, zstd and deflate as Linux 6.12 calls them, through libraries whose code is
the kernel's (measured exact on all 1990 reference pages, tests/reference/compressors).

  lz4      zram: LZ4_compress_fast(src, dst, 4096, 8192, level, wrkmem), acceleration 1 by
           default (backend_lz4.c); zswap: LZ4_compress_default with a 4096-byte
           destination (crypto/lz4.c), which returns 0 (a rejection) when a room check
           fails.  Kernel lib/lz4 is liblz4 1.8.0's code: python `lz4` 0.19.1 bundles
           that version; `lz4.block.compress(page, store_size=False)`.
  lz4hc    LZ4_compress_HC(src, dst, 4096, cap, level, wrkmem), level 9 (zram's default
           and the crypto constant).  The kernel accepts 1..16, but liblz4 1.8.0 runs a
           different search (an optimal parser) from level 10 on, so only 1..9 are offered.
  zstd     zram: zstd_compress_cctx with zstd_get_params(level, 4096), level 3 by default:
           window 12, chain 12, hash 13, search 2, minMatch 4, dfast; a frame with the
           content size and no checksum (backend_zstd.c).  zswap: crypto/zstd.c takes
           zstd_get_params(3, 0) and the pledged 4096 bytes shrink it to window 12,
           chain 12, hash 13, search 1, minMatch 5, dfast; no level knob.  Kernel
           lib/zstd is zstd 1.5.2: python `zstandard` 0.19.0 bundles it.
  deflate  zlib_deflateInit2(level, Z_DEFLATED, -11, 8, Z_DEFAULT_STRATEGY) then
           zlib_deflate(Z_FINISH) per page, level -1 (= 6) by default: raw deflate, a 2 KiB
           window, memLevel 8 (backend_deflate.c, crypto/deflate.c).  CPython's zlib
           (1.2.13 here) gives the same stream.  zswap: Z_FINISH ends the stream only with
           room left, so 4096 bytes or more is a rejection.

The limited (zswap) calls produce the same bytes as the unlimited ones wherever they
succeed, so the zswap model compresses unlimited and then applies the kernel's failure
rule: for lz4/lz4hc the room checks are replayed over the block (they ask for a few
bytes more than the block finally takes), for zstd and 842 the output must fit in
4096 bytes, for deflate it must be shorter.

The pinned versions are checked when a compressor is built; another version refuses in
one line naming the fix, since its sizes would silently differ from the kernel's.
"""

from __future__ import annotations

import zlib
from typing import Any

from xcfbench.errors import InputError
from xcfbench.sim.compressors.base import Compressor

PAGE = 4096
ZSWAP_DST = 4096
LZ4_PIN, LIBLZ4 = "0.19.1", "1.8.0"
ZSTANDARD_PIN, LIBZSTD = "0.19.0", (1, 5, 2)
_FIX = "run `make venv`, or: PKG_CONFIG_LIBDIR=/nonexistent pip install --force-reinstall"


def _lz4() -> Any:
    try:
        import lz4
        import lz4.block
    except ImportError:
        raise InputError(f"python lz4 is not installed; {_FIX} lz4=={LZ4_PIN}") from None
    if lz4.library_version_string() != LIBLZ4:
        raise InputError(
            f"lz4 {lz4.__version__} uses liblz4 {lz4.library_version_string()},"
            f" not the kernel's {LIBLZ4}; {_FIX} --no-binary lz4 lz4=={LZ4_PIN}"
        )
    return lz4


def _zstandard() -> Any:
    try:
        import zstandard
    except ImportError:
        raise InputError(
            f"python zstandard is not installed; {_FIX} zstandard=={ZSTANDARD_PIN}"
        ) from None
    if tuple(zstandard.ZSTD_VERSION) != LIBZSTD:
        have = ".".join(map(str, zstandard.ZSTD_VERSION))
        raise InputError(
            f"zstandard {zstandard.__version__} bundles zstd {have}, not the"
            f" kernel's 1.5.2; {_FIX} zstandard=={ZSTANDARD_PIN}"
        )
    return zstandard


def lz4_limited_fails(block: bytes, cap: int, hc: bool) -> bool:
    """Whether the kernel's limited-output LZ4 (LZ4_compress_default, LZ4_compress_HC
    with a cap-byte destination) returns 0 for the input whose unlimited block this is.

    The encoder makes the same choices whatever the limit, so walking the block's
    sequences and applying the kernel's room test at each one answers exactly: before
    the literals of a sequence it wants room for them, 8 more bytes and their length
    bytes (fast: length/255, HC: length>>8); after the offset it wants 6 bytes and the
    match length's bytes (length>>8); the last literals must fit exactly."""
    pos, n = 0, len(block)
    while True:
        token = block[pos]
        op = p = pos + 1
        lit = token >> 4
        if lit == 15:
            while True:
                b = block[p]
                p += 1
                lit += b
                if b != 255:
                    break
        if p + lit >= n:  # the last literals
            return pos + lit + 1 + (lit + 255 - 15) // 255 > cap
        if op + lit + 8 + (lit >> 8 if hc else lit // 255) > cap:
            return True
        p += lit + 2  # the literals, the 2-byte offset
        ml = token & 15
        q = p
        if ml == 15:
            while True:
                b = block[q]
                q += 1
                ml += b
                if b != 255:
                    break
        if p + 6 + (ml >> 8) > cap:
            return True
        pos = q


# A block this much under the cap passes every room test (each asks at most 8 bytes and
# 16 length bytes beyond what the rest of the block takes).
_LZ4_SAFE_MARGIN = 64


class _LibraryCompressor(Compressor):
    """A compressor whose zswap call has no level knob (the crypto API has none)."""

    def __init__(self, level: int | None = None, call: str = "zram") -> None:
        if call == "zswap" and level is not None:
            raise InputError(
                f"compressor {self.name}: zswap's crypto call takes no level"
                " (its default is compiled in)"
            )
        super().__init__(level, call)


class Lz4(_LibraryCompressor):
    name = "lz4"
    summary = (
        "Linux 6.12 LZ4_compress_fast, acceleration 1 (level=N sets it, only 1 is"
        " verified); exact with lz4 0.19.1 (liblz4 1.8.0)"
    )
    levels = (1, 65537)
    default_level = 1
    speed = "about 150 000 pages/s"
    hc = False

    def __init__(self, level: int | None = None, call: str = "zram") -> None:
        super().__init__(level, call)
        self._lz4 = _lz4()
        block = self._lz4.block
        if self.hc:
            level = self.level

            def encode(page: bytes) -> bytes:
                return block.compress(
                    page, mode="high_compression", compression=level, store_size=False
                )
        elif self.level == 1:

            def encode(page: bytes) -> bytes:
                return block.compress(page, store_size=False)
        else:
            acceleration = self.level

            def encode(page: bytes) -> bytes:
                return block.compress(
                    page, mode="fast", acceleration=acceleration, store_size=False
                )

        self._encode = encode
        self._limited = call == "zswap"

    def compress(self, page: bytes) -> bytes | None:
        out = self._encode(page)
        if (
            self._limited
            and len(out) > ZSWAP_DST - _LZ4_SAFE_MARGIN
            and lz4_limited_fails(out, ZSWAP_DST, self.hc)
        ):
            return None
        return out

    def size(self, page: bytes) -> int | None:
        out = self.compress(page)
        return None if out is None else len(out)

    def decompress(self, data: bytes) -> bytes:
        try:
            return self._lz4.block.decompress(data, uncompressed_size=PAGE)
        except Exception as e:  # LZ4BlockError
            raise ValueError(f"lz4: {e}") from None

    def version(self) -> str:
        return f"lz4 {self._lz4.__version__} (liblz4 {self._lz4.library_version_string()})"


class Lz4hc(Lz4):
    name = "lz4hc"
    summary = (
        "Linux 6.12 LZ4_compress_HC, level 9 (level=1..9, only 9 verified); exact with"
        " lz4 0.19.1 (liblz4 1.8.0)"
    )
    levels = (1, 9)
    default_level = 9
    speed = "about 17 000 pages/s"
    hc = True

    def __init__(self, level: int | None = None, call: str = "zram") -> None:
        if level is not None and 10 <= level <= 16:
            raise InputError(
                f"compressor lz4hc: level {level} is valid in the kernel but not"
                " reproducible here (liblz4 1.8.0 runs another search from level"
                " 10 on); use 1..9"
            )
        super().__init__(level, call)


class Zstd(_LibraryCompressor):
    name = "zstd"
    summary = (
        "Linux 6.12 zstd (lib/zstd 1.5.2), level 3; zswap's own parameters; exact with"
        " zstandard 0.19.0"
    )
    levels = (-131072, 22)
    default_level = 3
    speed = "about 50 000 pages/s"

    def __init__(self, level: int | None = None, call: str = "zram") -> None:
        super().__init__(level, call)
        zstd = self._zstd = _zstandard()
        if call == "zswap":
            params = zstd.ZstdCompressionParameters(
                window_log=12,
                chain_log=12,
                hash_log=13,
                search_log=1,
                min_match=5,
                target_length=0,
                strategy=zstd.STRATEGY_DFAST,
                write_content_size=True,
                write_checksum=False,
            )
            cctx = zstd.ZstdCompressor(compression_params=params)
        else:
            # zstd_get_params(level, 4096) is what the library derives from the level and
            # the content size it is given; level 0 means the default, 3, in both.
            cctx = zstd.ZstdCompressor(
                level=self.level or 3, write_content_size=True, write_checksum=False
            )
        self._encode = cctx.compress
        self._limited = call == "zswap"
        self._dctx = zstd.ZstdDecompressor()

    def compress(self, page: bytes) -> bytes | None:
        out = self._encode(page)
        return None if self._limited and len(out) > ZSWAP_DST else out

    def size(self, page: bytes) -> int | None:
        out = self.compress(page)
        return None if out is None else len(out)

    def decompress(self, data: bytes) -> bytes:
        try:
            return self._dctx.decompress(data, max_output_size=PAGE)
        except self._zstd.ZstdError as e:
            raise ValueError(f"zstd: {e}") from None

    def version(self) -> str:
        return (
            f"zstandard {self._zstd.__version__}"
            f" (zstd {'.'.join(map(str, self._zstd.ZSTD_VERSION))})"
        )


class Deflate(_LibraryCompressor):
    name = "deflate"
    summary = (
        "Linux 6.12 zlib_deflate: raw, window 2^11, memLevel 8, level 6 (level=-1..9);"
        " exact with CPython's zlib"
    )
    levels = (-1, 9)
    default_level = -1
    speed = "about 9 500 pages/s"

    def __init__(self, level: int | None = None, call: str = "zram") -> None:
        super().__init__(level, call)
        assert self.level is not None  # default_level is -1: a level is always set
        self._zlevel = 6 if self.level == -1 else self.level
        self._limited = call == "zswap"

    def compress(self, page: bytes) -> bytes | None:
        # zlib.compress(data, level, wbits) uses memLevel 8, the kernel's MAX_MEM_LEVEL:
        # the same stream as compressobj(level, DEFLATED, -11, 8), a little faster.
        out = zlib.compress(page, self._zlevel, -11)
        return None if self._limited and len(out) >= ZSWAP_DST else out

    def size(self, page: bytes) -> int | None:
        out = self.compress(page)
        return None if out is None else len(out)

    def decompress(self, data: bytes) -> bytes:
        try:
            return zlib.decompress(data, -11, PAGE)
        except zlib.error as e:
            raise ValueError(f"deflate: {e}") from None

    def version(self) -> str:
        return f"zlib {zlib.ZLIB_RUNTIME_VERSION} (CPython)"
