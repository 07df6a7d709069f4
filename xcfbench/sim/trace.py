"""Trace v1: read, write and replay allocator call sequences.

Format (tests/reference/README.md): UTF-8 text, one operation per line,

    a ID SIZE     allocate SIZE bytes and name the object ID
    f ID          free the object ID

Blank lines and lines starting with '#' are ignored.  ID is a non-negative integer unique
among live objects; SIZE is exactly what the allocator's malloc receives.  A refused
allocation counts in failed_allocs and a later free of its ID is a counted no-op
(frees_of_failed).  A malformed line, a duplicate live ID or a free of an ID that is not
live is an error, reported with its line number.

Exactly v1 is accepted: ID and SIZE are ASCII digits (no sign, no '_', no other script's
digits) below 2**64; fields are separated by spaces or tabs; a line ends in '\n' or
'\r\n' and nothing else splits one (not '\x0b', '\x0c' or U+2028); a line is at most
4096 bytes.  A UTF-8 byte-order mark at the very start of the file is accepted and skipped.

A trace is read as a stream (open_trace): a regular file, a pipe or '-' for standard input,
one line at a time, so the memory it takes grows with the live objects, never with the
file's length.  read_trace() reads a whole trace into memory (tests, benchmarks).

Liveness is checked when the trace is read, independently of any allocator: an ID whose
allocation an allocator later refuses is still "live" as far as the trace is concerned,
which is what makes its free legal.
"""

from __future__ import annotations

import contextlib
import hashlib
import lzma
import os
import re
import stat
import zlib
from collections.abc import Callable, Iterable, Iterator, Sized
from dataclasses import dataclass, field
from typing import Any, BinaryIO, cast

from xcfbench.compressed_io import (
    GZIP_MAGIC,
    XZ_MAGIC,
    ZSTD_MAGIC,
    close_text_stream,
    open_text_stream,
)
from xcfbench.errors import InputError
from xcfbench.io import MAX_LINE_BYTES, open_stream
from xcfbench.sim.allocators import create, twins
from xcfbench.sim.arch import Arch
from xcfbench.sim.records import ReplayResult

FREE = -1  # the size slot of a free operation
ID_LIMIT = 1 << 64  # IDs and sizes are below 2**64 (a u64 in the kernel's harness)
MAX_COMMENTS = 64  # comments kept (they are carried into gen-trace's header only)

_ALLOC = re.compile(rb"[ \t]*a[ \t]+([0-9]{1,20})[ \t]+([0-9]{1,20})[ \t]*")
_FREE = re.compile(rb"[ \t]*f[ \t]+([0-9]{1,20})[ \t]*")
_BLANK = re.compile(rb"[ \t]*")
BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Trace:
    name: str
    ops: tuple[tuple[int, int], ...]  # (id, size) for an alloc, (id, FREE) for a free
    comments: tuple[str, ...] = ()


def _malformed(name: str, lineno: int, line: bytes, why: str = "") -> InputError:
    shown = line[:60].decode("utf-8", "replace")
    why = why or " (expected 'a ID SIZE' or 'f ID', non-negative integers in ASCII digits)"
    return InputError(f"{name}:{lineno}: malformed trace line {shown!r}{why}")


def read_line(
    raw: bytes | str, lineno: int, name: str, comments: list[str] | None = None
) -> tuple[int, int] | None:
    """The operation of one trace v1 line (with or without its line end), None for a
    blank line or a comment (appended to comments, up to MAX_COMMENTS); an InputError for
    anything else.  Liveness is the caller's to check."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogateescape")
    if lineno == 1 and raw.startswith(BOM):
        raw = raw[len(BOM) :]
    if raw.endswith(b"\n"):
        raw = raw[:-1]
        if raw.endswith(b"\r"):
            raw = raw[:-1]
    if len(raw) > MAX_LINE_BYTES:
        raise InputError(f"{name}:{lineno}: line longer than {MAX_LINE_BYTES} bytes")
    m = _ALLOC.fullmatch(raw)
    if m:
        oid, size = int(m.group(1)), int(m.group(2))
        if oid >= ID_LIMIT or size >= ID_LIMIT:
            raise _malformed(name, lineno, raw, " (ID and SIZE must be below 2**64)")
        return oid, size
    m = _FREE.fullmatch(raw)
    if m:
        return int(m.group(1)), FREE
    if _BLANK.fullmatch(raw):
        return None
    if raw.lstrip(b" \t").startswith(b"#"):
        try:
            text = raw.lstrip(b" \t")[1:].decode("utf-8").strip()
        except UnicodeDecodeError as e:
            raise InputError(
                f"{name}:{lineno}: not UTF-8 text (byte {e.start + 1} of the comment)"
            ) from None
        if comments is not None and len(comments) < MAX_COMMENTS:
            comments.append(text)
        return None
    if lineno == 1 and raw.startswith((b"\xfe\xff", b"\xff\xfe")):
        raise InputError(f"{name}:{lineno}: a UTF-16 byte-order mark; a trace is UTF-8")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{name}:{lineno}: not UTF-8 text (byte {e.start + 1})") from None
    raise _malformed(name, lineno, raw)


def duplicate_error(name: str, lineno: int, oid: int) -> InputError:
    return InputError(f"{name}:{lineno}: duplicate live ID {oid}")


def not_live_error(name: str, lineno: int, oid: int) -> InputError:
    return InputError(f"{name}:{lineno}: free of ID {oid}, which is not live")


def iter_ops(
    lines: Iterable[bytes | str], name: str = "<trace>", comments: list[str] | None = None
) -> Iterator[tuple[int, int]]:
    """The operations of trace v1 lines (each with or without its line end), checked as
    they come; comments (up to MAX_COMMENTS) are appended to comments."""
    live: set[int] = set()
    for lineno, raw in enumerate(lines, 1):
        op = read_line(raw, lineno, name, comments)
        if op is None:
            continue
        oid, size = op
        if size != FREE:
            if oid in live:
                raise duplicate_error(name, lineno, oid)
            live.add(oid)
        else:
            if oid not in live:
                raise not_live_error(name, lineno, oid)
            live.remove(oid)
        yield op


def parse_trace(lines: Iterable[bytes | str], name: str = "<trace>") -> Trace:
    comments: list[str] = []
    ops = tuple(iter_ops(lines, name, comments))
    return Trace(name=name, ops=ops, comments=tuple(comments))


def _lines(f: BinaryIO) -> Iterator[bytes]:
    """Lines split at b'\n' only, each at most MAX_LINE_BYTES (+ its line end) long: a
    longer one is yielded cut, and refused by iter_ops."""
    while True:
        line = f.readline(MAX_LINE_BYTES + 3)
        if not line:
            return
        if not line.endswith(b"\n") and len(line) >= MAX_LINE_BYTES + 3:
            yield line  # too long: refused by iter_ops
            return
        yield line


@dataclass
class TraceStream:
    """A trace being read: iterate ops once.  position/size give progress in bytes (size
    is None for a pipe)."""

    name: str
    file: BinaryIO
    size: int | None
    comments: list[str] = field(default_factory=list)

    @property
    def ops(self) -> Iterator[tuple[int, int]]:
        return iter_ops(_lines(self.file), self.name, self.comments)

    def progress(self) -> tuple[int, int] | None:
        if self.size is None:
            return None
        try:
            return self.file.tell(), self.size
        except OSError:
            return None


@contextlib.contextmanager
def open_trace(path: str | os.PathLike[str]) -> Iterator[TraceStream]:
    """A trace file, a pipe or '-' (standard input), as a stream of checked operations.
    A regular file compressed with gzip, xz or zstd (recognised by its magic bytes) is
    decompressed as it is read; a corrupt or truncated one is a one-line InputError."""
    path = os.fspath(path)
    name = "<stdin>" if path == "-" else os.path.basename(path)
    if path != "-" and is_compressed_file(path):
        text = open_text_stream(path, "trace")
        try:
            yield TraceStream(name, cast(BinaryIO, _Decoding(text.buffer, name)), None)
        finally:
            close_text_stream(text)
        return
    with open_stream(path, "trace") as f:
        try:
            st = os.fstat(f.fileno())
            size = st.st_size if stat.S_ISREG(st.st_mode) else None
        except (OSError, ValueError, AttributeError):
            size = None
        yield TraceStream(name, f, size)


def is_compressed_file(path: str) -> bool:
    """path is a regular file that starts with gzip's, xz's or zstd's magic bytes."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return False
        with open(path, "rb") as f:
            head = f.read(6)
    except OSError:
        return False  # open_stream reports it
    return head.startswith((GZIP_MAGIC, XZ_MAGIC, ZSTD_MAGIC))


def decode_errors() -> tuple[type[BaseException], ...]:
    errors: tuple[type[BaseException], ...] = (EOFError, OSError, lzma.LZMAError, zlib.error)
    try:
        import zstandard
    except ImportError:
        return errors
    return (*errors, zstandard.ZstdError)


class _Decoding:
    """A decompressing binary stream whose decoding errors (a corrupt or truncated
    .gz/.xz/.zst) become one-line InputErrors naming the trace."""

    def __init__(self, f: BinaryIO, name: str) -> None:
        self.f, self.name = f, name

    def readline(self, limit: int = -1) -> bytes:
        try:
            return self.f.readline(limit)
        except decode_errors() as e:
            raise InputError(f"{self.name}: corrupt or truncated compressed trace ({e})") from None

    def read(self, size: int = -1) -> bytes:
        try:
            return self.f.read(size)
        except decode_errors() as e:
            raise InputError(f"{self.name}: corrupt or truncated compressed trace ({e})") from None

    def fileno(self) -> int:
        raise OSError("a decompressed stream has no descriptor")

    def tell(self) -> int:
        raise OSError("a decompressed stream's position is not the file's")


def read_trace(path: str | os.PathLike[str]) -> Trace:
    """A whole trace in memory (for tests and benchmarks; the CLI streams)."""
    with open_trace(path) as stream:
        ops = tuple(stream.ops)
        return Trace(name=stream.name, ops=ops, comments=tuple(stream.comments))


def format_trace(ops: Iterable[tuple[int, int]], comments: Iterable[str] = ()) -> str:
    out = ["# xcfbench trace v1"]
    out += [f"# {c}" for c in comments]
    out += [f"f {oid}" if size == FREE else f"a {oid} {size}" for oid, size in ops]
    return "\n".join(out) + "\n"


def object_bytes(oid: int, size: int) -> bytes:
    """The bytes --verify writes into object oid: a 251-byte pattern hashed from the ID,
    repeated.  A read of another object fails, and so does a copy shifted by fewer than
    251 bytes, since 251 is prime and the pattern has no shorter period."""
    seed = hashlib.blake2b(oid.to_bytes(8, "little"), digest_size=64).digest()
    unit = (seed * 4)[:251]
    return (unit * (size // 251 + 1))[:size]


def parse_compact(spec: str | None) -> int | None:
    """'end' -> 0 (compact once at the end), 'every:N' -> N, None -> None."""
    if spec is None or spec == "none":
        return None
    if spec == "end":
        return 0
    if spec.startswith("every:"):
        try:
            n = int(spec[6:])
        except ValueError:
            n = 0
        if n > 0:
            return n
    raise InputError(f"bad --compact {spec!r}: use 'end' or 'every:N' with N > 0")


def replay(
    trace: Trace | TraceStream,
    alloc_name: str,
    arch: Arch,
    *,
    verify: bool = False,
    compact: str | None = None,
    options: dict | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ReplayResult:
    """Run every operation of trace through a fresh allocator and report its accounting.

    With verify, the allocator keeps real bytes: each object is written on allocation and
    read back on free and at the end.  compact is None, 'end' or 'every:N'."""
    every = parse_compact(compact)
    alloc = create(alloc_name, arch, store=verify, **(options or {}))
    if every is not None and not alloc.supports_compaction:
        raise InputError(f"allocator {alloc.name} does not support compaction")
    if twins.is_twin(alloc):
        return _replay_native(trace, alloc, arch, every, progress)
    malloc, free, pool_pages, pages_held = (
        alloc.malloc,
        alloc.free,
        alloc.pool_pages,
        alloc.pages_held,
    )
    handles: dict[int, object] = {}
    sizes: dict[int, int] = {}
    allocs = frees = failed_allocs = frees_of_failed = 0
    live_bytes = peak_live_objects = peak_live_bytes = 0
    peak_pool = peak_held = 0
    verify_errors = 0
    pages_compacted = 0
    ops = trace.ops
    total = len(ops) if isinstance(ops, Sized) else None
    step = max(1, total // 100) if total is not None else 4096
    n = 0
    for n, (oid, size) in enumerate(ops, 1):
        if size >= 0:
            allocs += 1
            h = malloc(size)
            if h is None:
                failed_allocs += 1
            else:
                handles[oid] = h
                sizes[oid] = size
                live_bytes += size
                if len(handles) > peak_live_objects:
                    peak_live_objects = len(handles)
                if live_bytes > peak_live_bytes:
                    peak_live_bytes = live_bytes
                if verify:
                    alloc.write(h, object_bytes(oid, size))
        else:
            frees += 1
            h = handles.pop(oid, None)
            if h is None:  # its allocation was refused
                frees_of_failed += 1
            else:
                size = sizes.pop(oid)
                live_bytes -= size
                if verify and alloc.read(h) != object_bytes(oid, size):
                    verify_errors += 1
                free(h)
        p = pool_pages()
        if p > peak_pool:
            peak_pool = p
        p = pages_held()
        if p > peak_held:
            peak_held = p
        if every and n % every == 0:
            pages_compacted += alloc.compact()
        if progress is not None and n % step == 0:
            if total is not None:
                progress(n, total)
            elif isinstance(trace, TraceStream) and (where := trace.progress()) is not None:
                progress(*where)

    def read_back() -> int:
        """--verify's last look, after the end's compaction: every live object intact."""
        errors = sum(alloc.read(h) != object_bytes(oid, sizes[oid]) for oid, h in handles.items())
        alloc.check()
        return verify_errors + errors

    counts = {
        "ops": n,
        "allocs": allocs,
        "frees": frees,
        "failed_allocs": failed_allocs,
        "frees_of_failed": frees_of_failed,
        "live_objects": len(handles),
        "live_bytes": live_bytes,
        "peak_live_objects": peak_live_objects,
        "peak_live_bytes": peak_live_bytes,
        "peak_pool_pages": peak_pool,
        "peak_pages_held": peak_held,
    }
    return _finish(
        trace.name, alloc, arch, every, pages_compacted, counts, read_back if verify else None
    )


def _finish(
    name: str,
    alloc: Any,
    arch: Arch,
    every: int | None,
    pages_compacted: int,
    counts: dict[str, int],
    read_back: Callable[[], int] | None = None,
) -> ReplayResult:
    """The end of a replay on either path: the pool as the trace left it, the end's
    compaction, --verify's read-back (read_back: all the verify errors), the result."""
    pool_end, held_end = alloc.pool_pages(), alloc.pages_held()
    after_compact = None
    if every is not None:
        pages_compacted += alloc.compact()
        after_compact = alloc.pool_pages()
    return ReplayResult(
        trace=name,
        allocator=alloc.name,
        arch=arch.name,
        **counts,
        pool_pages=pool_end,
        pages_held=held_end,
        pool_pages_after_compact=after_compact,
        pages_compacted=pages_compacted if every is not None else None,
        verified=read_back is not None,
        verify_errors=read_back() if read_back is not None else None,
        allocator_stats=alloc.stats(),
        metadata_bytes=alloc.metadata_bytes(),
    )


CHUNK_BYTES = 1 << 20  # the native replay reads a stream this much at a time
SIZE_CAP = (1 << 63) - 1
# The Replayer's counters that a ReplayResult takes under the same names.
REPLAYER_COUNTS = (
    "ops",
    "allocs",
    "frees",
    "failed_allocs",
    "frees_of_failed",
    "live_objects",
    "live_bytes",
    "peak_live_objects",
    "peak_live_bytes",
)  # sizes past it are refused by every allocator all the same


def _chunks(f: BinaryIO) -> Iterator[bytes]:
    """A trace's bytes, CHUNK_BYTES or so at a time.  A decompressing stream is read a
    line at a time, as the reference reads it: a corrupt stream raises its error at the
    same line, after the same lines were taken (a read of a whole chunk could meet the
    error first, or later)."""
    if not isinstance(f, _Decoding):
        while chunk := f.read(CHUNK_BYTES):
            yield chunk
        return
    lines: list[bytes] = []
    size = 0
    it = _lines(f)
    while True:
        try:
            line = next(it, None)
        except InputError:
            if lines:
                yield b"".join(lines)  # what the reference read before the error
            raise
        if line is None:
            break
        lines.append(line)
        size += len(line)
        if size >= CHUNK_BYTES:
            yield b"".join(lines)
            lines, size = [], 0
    if lines:
        yield b"".join(lines)


def _replay_native(
    trace: Trace | TraceStream,
    alloc: Any,
    arch: Arch,
    every: int | None,
    progress: Callable[[int, int], None] | None,
) -> ReplayResult:
    """replay() through a twin: the C loop runs the plainly well-formed lines and hands
    every other line to read_line(), so what is accepted, and every error, is the
    reference's."""
    rp = twins.replayer(alloc, every or 0)
    slow, dup, dead = twins.feed_statuses()
    name = trace.name

    def fail(status: int) -> None:
        if status == dup:
            raise duplicate_error(name, rp.lineno, rp.error_id)
        if status == dead:
            raise not_live_error(name, rp.lineno, rp.error_id)

    if isinstance(trace, Trace):
        total = len(trace.ops)
        step = max(1, total // 100)
        for start in range(0, total, step):
            fail(rp.run(trace.ops[start : start + step]))
            if progress is not None:
                progress(min(start + step, total), total)
    else:
        chunks = _chunks(trace.file)
        buf, pos, final, more = b"", 0, False, True
        while True:
            if more and not final:  # only when the lines in hand are used up
                chunk = next(chunks, b"")
                final = not chunk
                buf, pos = buf[pos:] + chunk, 0
            pos, status = rp.feed(buf, pos, final)
            more = status == 0
            if status == slow:
                eol = buf.find(b"\n", pos, pos + MAX_LINE_BYTES + 3)
                end = eol + 1 if eol >= 0 else min(len(buf), pos + MAX_LINE_BYTES + 3)
                op = read_line(buf[pos:end], rp.lineno + 1, name, trace.comments)
                rp.skip_line()
                pos = end
                if op is not None:
                    oid, size = op
                    if size == FREE and oid >= ID_LIMIT:
                        raise not_live_error(name, rp.lineno, oid)
                    status = rp.apply(oid, min(size, SIZE_CAP))
            fail(status)
            if final and pos >= len(buf):
                break
            if progress is not None and status == 0 and (where := trace.progress()) is not None:
                progress(*where)
    counts = {name: getattr(rp, name) for name in REPLAYER_COUNTS}
    counts["peak_pool_pages"], counts["peak_pages_held"] = rp.peak_pool, rp.peak_held
    return _finish(name, alloc, arch, every, rp.pages_compacted, counts)
