"""Page traces: page-level operations replayed through a front end (zram, zswap, zcache).

Format: UTF-8 text, one operation per line; blank lines and lines starting with '#' are
ignored.

    w SLOT PAGE   write page PAGE (0-based, 4096-byte pages) of the pages file to swap
                  slot or block SLOT (a swap-out, or a block write)
    r SLOT        read SLOT back (a swap-in: frees zswap's entry and, in zram swap mode,
                  the slot)
    d SLOT        free the slot (swap) or discard the block (zram block mode)
    c             compact the pool
    i             mark every stored page idle (zram)
    R             recompress with --recompress's parameters (zram)
    B             write back with --writeback's mode (zram)

SLOT and PAGE are non-negative integers.  The trace is read as a stream: a malformed
line, a page beyond the file, or an operation the front end does not have is reported with
its line number (one line, InputError).  The pages file is raw pages, or xz-compressed
(.xz), read once.
"""

from __future__ import annotations

import hashlib
import lzma
import os
from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import Any, TextIO

from xcfbench.errors import InputError
from xcfbench.io import MAX_LINE_BYTES
from xcfbench.sim.allocators import create
from xcfbench.sim.arch import PAGE_SIZE, get_arch
from xcfbench.sim.compressors import create_compressor
from xcfbench.sim.frontends import compressor_call, create_frontend
from xcfbench.sim.pages import PageCache

OPS = {"w": 2, "r": 1, "d": 1, "c": 0, "i": 0, "R": 0, "B": 0}
MAX_PAGES_BYTES = 4 << 30  # a pages file is held in memory: 1 Mi pages at most
OP_METHODS = {"i": "mark_idle", "R": "recompress", "B": "writeback"}


def read_pages(path: str | os.PathLike[str]) -> bytes:
    """A pages file's bytes (xz-compressed when its name ends in .xz): a regular file or a
    pipe, held in memory, so at most MAX_PAGES_BYTES once decompressed."""
    from xcfbench.io import read_input, too_large

    path = os.fspath(path)
    data = read_input(path, "pages file", binary=True, limit=MAX_PAGES_BYTES, allow_fifo=True)
    if path.endswith(".xz"):
        unxz = lzma.LZMADecompressor()
        try:
            data = unxz.decompress(data, max_length=MAX_PAGES_BYTES + 1)
        except lzma.LZMAError as e:
            raise InputError(f"pages file {path}: not xz data ({e})") from None
        if len(data) > MAX_PAGES_BYTES:
            raise too_large(path, "pages file", MAX_PAGES_BYTES)
        if not unxz.eof:
            raise InputError(f"pages file {path}: not xz data (truncated)")
    if not data or len(data) % PAGE_SIZE:
        raise InputError(
            f"pages file {path}: {len(data)} bytes is not a whole number of {PAGE_SIZE}-byte pages"
        )
    return data


def iter_trace_lines(path: str) -> Iterator[str]:
    """The lines of a page trace, read as a stream like trace v1: a regular file (plain,
    or gzip, xz or zstd, recognised by magic), a pipe, or '-' for standard input.  Lines
    end at '\n' only; a corrupt or truncated compressed stream, or bytes that are not
    UTF-8, is a one-line InputError."""
    from xcfbench.compressed_io import close_text_stream, open_text_stream
    from xcfbench.io import open_stream
    from xcfbench.sim.trace import decode_errors, is_compressed_file

    name = "<stdin>" if path == "-" else os.path.basename(path)
    if path == "-" or not is_compressed_file(path):
        with open_stream(path, "page trace") as f:
            for lineno, raw in enumerate(iter(lambda: f.readline(MAX_LINE_BYTES + 3), b""), 1):
                _check_length(raw, name, lineno)
                try:
                    yield raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise InputError(f"{name}:{lineno}: not UTF-8 text ({e.reason})") from None
        return
    text = open_text_stream(path, "page trace")
    try:
        lineno = 0
        while True:
            lineno += 1
            try:
                line = text.readline(MAX_LINE_BYTES + 3)
            except UnicodeDecodeError as e:
                raise InputError(f"{name}: not UTF-8 text ({e.reason})") from None
            except decode_errors() as e:
                raise InputError(
                    f"{name}: corrupt or truncated compressed page trace ({e})"
                ) from None
            if not line:
                return
            _check_length(line, name, lineno)
            yield line
    finally:
        close_text_stream(text)


def _check_length(line: bytes | str, name: str, lineno: int) -> None:
    """A line of more than MAX_LINE_BYTES, its line end aside, is refused (as in trace
    v1): a page trace is read a bounded line at a time."""
    end = len(line)
    for mark in ("\n", "\r"):
        if end and line[end - 1 : end] in (mark, mark.encode()):
            end -= 1
    if end > MAX_LINE_BYTES:
        raise InputError(f"{name}:{lineno}: line longer than {MAX_LINE_BYTES} bytes")


def parse_line(line: str, lineno: int, name: str, n_pages: int) -> tuple[str, int, int]:
    fields = line.split()
    op = fields[0]
    nargs = OPS.get(op)
    try:
        if nargs is None or len(fields) != nargs + 1:
            raise ValueError
        # ASCII digits only, as in trace v1 (int() would take '1_0', '+1' and other
        # scripts' digits), and no more of them than a u64 has
        if not all(x.isascii() and x.isdigit() and len(x) <= 20 for x in fields[1:]):
            raise ValueError
        args = [int(x) for x in fields[1:]]
    except ValueError:
        raise InputError(
            f"{name}:{lineno}: malformed page-trace line {line[:60]!r}"
            " (expected 'w SLOT PAGE', 'r SLOT', 'd SLOT', 'c', 'i', 'R'"
            " or 'B')"
        ) from None
    slot = args[0] if args else -1
    page = args[1] if len(args) > 1 else -1
    if page >= n_pages:
        raise InputError(f"{name}:{lineno}: page {page} is beyond the pages file ({n_pages} pages)")
    return op, slot, page


class PageOps:
    """The page-trace operations on a front end: what replay_pages does for each line and
    what a run with churn does to the front end (engine.py), so both drive it alike.  With
    out, every operation is also written as its trace line (run --emit-trace)."""

    __slots__ = ("fe", "out", "write", "read", "free", "compact")

    def __init__(self, fe: Any, out: TextIO | None = None) -> None:
        self.fe, self.out = fe, out
        if out is None:
            self.write = lambda slot, page, key: fe.store(slot, key)
            self.read, self.free, self.compact = fe.load, fe.invalidate, fe.compact
            return
        put = out.write

        def write(slot: int, page: int, key: Hashable) -> bool:
            put(f"w {slot} {page}\n")
            return fe.store(slot, key)

        def read(slot: int) -> bool:
            put(f"r {slot}\n")
            return fe.load(slot)

        def free(slot: int) -> bool:
            put(f"d {slot}\n")
            return fe.invalidate(slot)

        def compact() -> int:
            put("c\n")
            return fe.compact()

        self.write, self.read, self.free, self.compact = write, read, free, compact


def frontend_config(
    frontend: str,
    compressor: str,
    alloc: str,
    arch: str,
    options: dict[str, Any],
    alloc_options: dict[str, Any],
    compressor_options: dict[str, Any],
) -> dict[str, Any]:
    return {
        "frontend": frontend,
        "compressor": compressor,
        "alloc": alloc,
        "arch": arch,
        "frontend_options": options,
        "alloc_options": alloc_options,
        "compressor_options": compressor_options,
    }


def build(
    frontend: str,
    pages_data: bytes,
    *,
    compressor: str,
    alloc: str = "zsmalloc",
    arch: str = "x86_64",
    options: dict[str, Any] | None = None,
    alloc_options: dict[str, Any] | None = None,
    compressor_options: dict[str, Any] | None = None,
    totalram_pages: int = 1 << 20,
):
    """A fresh front end over a pages file: pages are keyed by their index's content
    digest, so equal pages are compressed once."""
    comp = create_compressor(
        compressor, call=compressor_call(frontend, compressor), **(compressor_options or {})
    )
    arch_info = get_arch(arch)
    allocator = create(alloc, arch_info, **(alloc_options or {}))
    by_digest: dict[bytes, bytes] = {}

    def page_of(key: bytes) -> bytes:
        return by_digest[key]

    cache = PageCache(page_of, comp)
    fe = create_frontend(
        frontend, allocator, arch_info, cache, totalram_pages=totalram_pages, **(options or {})
    )

    def key_of(n: int) -> bytes:
        page = pages_data[n * PAGE_SIZE : (n + 1) * PAGE_SIZE]
        key = hashlib.sha256(page).digest()
        by_digest.setdefault(key, page)
        return key

    return fe, key_of


def replay_pages(
    lines: Iterable[str],
    pages_data: bytes,
    *,
    frontend: str,
    compressor: str,
    alloc: str = "zsmalloc",
    arch: str = "x86_64",
    options: dict[str, Any] | None = None,
    alloc_options: dict[str, Any] | None = None,
    compressor_options: dict[str, Any] | None = None,
    totalram_pages: int = 1 << 20,
    name: str = "<page trace>",
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Replay a page trace; the result dict carries the front end's stats."""
    fe, key_of = build(
        frontend,
        pages_data,
        compressor=compressor,
        alloc=alloc,
        arch=arch,
        options=options,
        alloc_options=alloc_options,
        compressor_options=compressor_options,
        totalram_pages=totalram_pages,
    )
    n_pages = len(pages_data) // PAGE_SIZE
    counts = dict.fromkeys(OPS, 0)
    ops = PageOps(fe)
    peak_pool = 0
    pool_pages = fe.alloc.pool_pages
    for lineno, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line[0] == "#":
            continue
        op, slot, page = parse_line(line, lineno, name, n_pages)
        counts[op] += 1
        if op == "w":
            ops.write(slot, page, key_of(page))
        elif op == "r":
            ops.read(slot)
        elif op == "d":
            ops.free(slot)
        elif op == "c":
            ops.compact()
        else:
            method = getattr(fe, OP_METHODS[op], None)
            if method is None:
                raise InputError(
                    f"{name}:{lineno}: front end {fe.name} has no"
                    f" {OP_METHODS[op].replace('_', ' ')} (op {op})"
                )
            try:
                method()
            except InputError as e:
                raise InputError(f"{name}:{lineno}: {e}") from None
        p = pool_pages()
        if p > peak_pool:
            peak_pool = p
        if progress is not None and lineno % 4096 == 0:
            progress(lineno)
    return {
        "trace": name,
        "frontend": fe.name,
        "allocator": fe.alloc.name,
        "compressor": fe.pages.compressor.name,
        "ops": counts,
        "succ_puts": fe.succ_puts,
        "failed_puts": fe.failed_puts,
        "rejects": dict(fe.rejects),
        "stored_pages": fe.stored_pages,
        "compr_data_size": fe.compr_data_size,
        "pool_pages": pool_pages(),
        "peak_pool_pages": peak_pool,
        "kernel_pairing": fe.alloc.name in fe.kernel_allocators,
        "frontend_stats": fe.stats(),
        "allocator_stats": fe.alloc.stats(),
    }
