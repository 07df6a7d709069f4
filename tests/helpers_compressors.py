"""The kernel's compressed lengths of the reference pages, as a compressor.

tests/reference/compressors/ holds 1990 pages and, for each, the length Linux 6.12.117's
compressors give it as zram and as zswap call them (README.md there).  TableCompressor
returns that length for a page by its SHA-256, for one algorithm and call: compress()
gives a bytes object of that length (only its size matters), or None where the kernel's
call fails.  register_table() puts one in the compressor registry as "table-ALG".
"""

from __future__ import annotations

import hashlib
import json
import lzma
from functools import cache
from pathlib import Path

from xcfbench.sim.compressors.base import Compressor

REF = Path(__file__).resolve().parent / "reference" / "compressors"
PAGE = 4096


@cache
def sizes() -> dict:
    with open(REF / "sizes.json", encoding="utf-8") as f:
        return json.load(f)


@cache
def pages_data() -> bytes:
    return lzma.decompress((REF / "pages.bin.xz").read_bytes())


def page(n: int) -> bytes:
    return pages_data()[n * PAGE : (n + 1) * PAGE]


@cache
def length_table(alg: str, call: str) -> dict[str, int | None]:
    return {p["sha256"]: p[call][alg] for p in sizes()["pages"]}


def table_class(alg: str) -> type[Compressor]:
    class TableCompressor(Compressor):
        name = f"table-{alg}"
        summary = f"the kernel's {alg} lengths of the reference pages (tests only)"
        calls = ("zram", "zswap")

        def __init__(self, level=None, call="zram"):
            super().__init__(level, call)
            self.table = length_table(alg, call)

        def size(self, page: bytes) -> int | None:
            return self.table[hashlib.sha256(page).hexdigest()]

        def compress(self, page: bytes) -> bytes | None:
            n = self.size(page)
            return None if n is None else bytes(n)

        def version(self) -> str:
            return f"kernel {alg} lengths from tests/reference/compressors/sizes.json"

    return TableCompressor


def register_table(monkeypatch, alg: str) -> str:
    from xcfbench.sim import compressors

    cls = table_class(alg)
    monkeypatch.setitem(compressors.COMPRESSORS, cls.name, cls)
    return cls.name
