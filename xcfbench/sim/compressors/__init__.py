"""Page compressors and the per-run size cache.

The seed measured lzo1x-1 as compiled into Linux 3.1.  Two implementations are offered:

  lzo1x-1          python-lzo (liblzo2 2.10) lzo1x_1_compress, no header: fast, C, the
                   default.  Not byte-identical to the 2011 kernel: a zero page is 44 bytes
                   instead of 28 and text is about 1% larger (spec lzo1x-linux31.md §4.3).
  lzo1x-1-linux31  xcfbench.lzo31, a pure-Python port of Linux 3.1 lib/lzo with a clean
                   dictionary per page: the exact sizes the seed's kernel produced, slower.

Workload pages that repeat carry a key; SizeCache compresses each key once per run.
"""

from __future__ import annotations

from typing import Callable, ClassVar

from xcfbench.errors import InputError


class Compressor:
    name: ClassVar[str]
    summary: ClassVar[str]

    def compress(self, page: bytes) -> bytes:
        raise NotImplementedError

    def size(self, page: bytes) -> int:
        return len(self.compress(page))

    def version(self) -> str:
        raise NotImplementedError


class PythonLzo(Compressor):
    name = "lzo1x-1"
    summary = "liblzo2 lzo1x_1_compress through python-lzo (level 1, no header); fast, default"

    def __init__(self) -> None:
        try:
            import lzo
        except ImportError:
            raise InputError("python-lzo is not installed (it needs liblzo2-dev):"
                             " run `make run` or `pip install python-lzo`") from None
        self._lzo = lzo

    def compress(self, page: bytes) -> bytes:
        return self._lzo.compress(page, 1, False)

    def version(self) -> str:
        from importlib.metadata import version
        return (f"python-lzo {version('python-lzo')}, "
                f"liblzo2 {_text(self._lzo.LZO_VERSION_STRING)}")


class Linux31Lzo(Compressor):
    name = "lzo1x-1-linux31"
    summary = "Linux 3.1 lib/lzo lzo1x_1_compress, pure Python, clean dictionary: exact 2011 sizes"

    def __init__(self) -> None:
        from xcfbench.sim.compressors import lzo31
        self._lzo31 = lzo31

    def compress(self, page: bytes) -> bytes:
        return self._lzo31.compress(page)

    def size(self, page: bytes) -> int:
        fast = getattr(self._lzo31, "compressed_size", None)
        return fast(page) if fast else len(self._lzo31.compress(page))

    def version(self) -> str:
        return "xcfbench lzo31 (Linux 3.1 lib/lzo/lzo1x_compress.c, LZO 2.02 port)"


COMPRESSORS: dict[str, type[Compressor]] = {c.name: c for c in (PythonLzo, Linux31Lzo)}
COMPRESSOR_ALIASES = {"lzo": "lzo1x-1", "python-lzo": "lzo1x-1", "lzo-linux31": "lzo1x-1-linux31",
                      "k31": "lzo1x-1-linux31"}


def canonical_compressor(name: str) -> str:
    key = COMPRESSOR_ALIASES.get(name, name)
    if key not in COMPRESSORS:
        raise InputError(f"unknown compressor {name!r}: choose from {', '.join(COMPRESSORS)}")
    return key


def get_compressor(name: str) -> Compressor:
    return COMPRESSORS[canonical_compressor(name)]()


class SizeCache:
    """Compressed size per page key, each computed once.  Owned by one run."""

    __slots__ = ("compressor", "sizes", "hits", "misses")

    def __init__(self, compressor: Compressor) -> None:
        self.compressor = compressor
        self.sizes: dict[object, int] = {}
        self.hits = 0
        self.misses = 0

    def size(self, key: object, page: Callable[[], bytes]) -> int:
        n = self.sizes.get(key)
        if n is None:
            n = self.sizes[key] = self.compressor.size(page())
            self.misses += 1
        else:
            self.hits += 1
        return n


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
