"""Page compressors and the per-run size cache.

The seed measured lzo1x-1 as compiled into Linux 3.1.  Two implementations are offered:

  lzo1x-1          python-lzo (liblzo2 2.10) lzo1x_1_compress, no header: fast, C, the
                   default.  Not byte-identical to the 2011 kernel: a zero page is 44 bytes
                   instead of 28 and text is about 1% larger (spec lzo1x-linux31.md §4.3).
  lzo1x-1-linux31  xcfbench.lzo31, a pure-Python port of Linux 3.1 lib/lzo with a clean
                   dictionary per page: the exact sizes the seed's kernel produced, slower.

Today's kernel compressors are registered here too, each exact for zram's and zswap's
calls (the 1990 pages of tests/reference/compressors):

  lzo, lzo-rle, 842          kernel_lzo.py: our C extension _lzokernel
  lz4, lz4hc, zstd, deflate  kernel_libs.py: lz4 0.19.1, zstandard 0.19.0, CPython's zlib

`lzo` is the kernel's lzo of today (Linux 3.7+); python-lzo's lzo1x-1 stays for the seed.
The registry maps a name to its class; create_compressor() builds one for a call with its
options (--comp-opt level=N).
"""

from __future__ import annotations

from typing import Any

from xcfbench.errors import InputError
from xcfbench.sim.compressors.base import Compressor


class PythonLzo(Compressor):
    name = "lzo1x-1"
    summary = (
        "liblzo2 lzo1x_1_compress through python-lzo (level 1, no header); the seed's"
        " default; not the kernel's lzo (2^14 dictionary)"
    )
    speed = "about 110 000 pages/s"
    calls = ("zcache",)

    def __init__(self, level: int | None = None, call: str = "zcache") -> None:
        super().__init__(level, call)
        try:
            import lzo
        except ImportError:
            raise InputError(
                "python-lzo is not installed (it needs liblzo2-dev):"
                " run `make run` or `pip install python-lzo`"
            ) from None
        self._lzo = lzo

    def compress(self, page: bytes) -> bytes:
        return self._lzo.compress(page, 1, False)

    def decompress(self, data: bytes) -> bytes:
        try:
            return self._lzo.decompress(data, False, 4096)
        except self._lzo.error as e:
            raise ValueError(f"lzo: {e}") from None

    def version(self) -> str:
        from importlib.metadata import version

        return f"python-lzo {version('python-lzo')}, liblzo2 {_text(self._lzo.LZO_VERSION_STRING)}"


class Linux31Lzo(Compressor):
    name = "lzo1x-1-linux31"
    summary = (
        "Linux 3.1 lib/lzo lzo1x_1_compress, pure Python, clean dictionary: exact 2011"
        " sizes, for the seed"
    )
    speed = "about 800 pages/s (pure Python)"
    calls = ("zcache",)

    def __init__(self, level: int | None = None, call: str = "zcache") -> None:
        super().__init__(level, call)
        from xcfbench.sim.compressors import lzo31

        self._lzo31 = lzo31
        self._decoder = PythonLzo()

    def compress(self, page: bytes) -> bytes:
        return self._lzo31.compress(page)

    def size(self, page: bytes) -> int:
        fast = getattr(self._lzo31, "compressed_size", None)
        return fast(page) if fast else len(self._lzo31.compress(page))

    def decompress(self, data: bytes) -> bytes:
        # LZO1X streams decode the same whichever encoder made them.
        return self._decoder.decompress(data)

    def version(self) -> str:
        return "xcfbench lzo31 (Linux 3.1 lib/lzo/lzo1x_compress.c, LZO 2.02 port)"


from xcfbench.sim.compressors.kernel_libs import Deflate, Lz4, Lz4hc, Zstd  # noqa: E402
from xcfbench.sim.compressors.kernel_lzo import KernelLzo, KernelLzoRle, Sw842  # noqa: E402

COMPRESSORS: dict[str, type[Compressor]] = {
    c.name: c
    for c in (PythonLzo, Linux31Lzo, KernelLzo, KernelLzoRle, Lz4, Lz4hc, Zstd, Deflate, Sw842)
}
COMPRESSOR_ALIASES = {
    "python-lzo": "lzo1x-1",
    "lzo-linux31": "lzo1x-1-linux31",
    "k31": "lzo1x-1-linux31",
    "lzorle": "lzo-rle",
    "sw842": "842",
}


def canonical_compressor(name: str) -> str:
    key = COMPRESSOR_ALIASES.get(name, name)
    if key not in COMPRESSORS:
        raise InputError(f"unknown compressor {name!r}: choose from {', '.join(COMPRESSORS)}")
    return key


def get_compressor_class(name: str) -> type[Compressor]:
    return COMPRESSORS[canonical_compressor(name)]


def create_compressor(name: str, call: str | None = None, **options: Any) -> Compressor:
    """The compressor name as call invokes it (its first call when None), with options
    (level=N) checked against what the kernel accepts."""
    cls = get_compressor_class(name)
    unknown = set(options) - {"level"}
    if unknown:
        raise InputError(
            f"compressor {cls.name} has no option {sorted(unknown)[0]!r} (options: level)"
        )
    return cls(call=call or cls.calls[0], **options)


def get_compressor(name: str) -> Compressor:
    return create_compressor(name)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
