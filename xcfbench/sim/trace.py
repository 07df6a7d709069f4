"""Trace v1: read, write and replay allocator call sequences.

Format (../shared/reference/README.md): UTF-8 text, one operation per line,

    a ID SIZE     allocate SIZE bytes and name the object ID
    f ID          free the object ID

Blank lines and lines starting with '#' are ignored.  ID is a non-negative integer unique
among live objects; SIZE is exactly what the allocator's malloc receives.  A refused
allocation counts in failed_allocs and a later free of its ID is a counted no-op
(frees_of_failed).  A malformed line, a duplicate live ID or a free of an ID that is not
live is an error, reported with its line number.

Liveness is checked when the trace is read, independently of any allocator: an ID whose
allocation an allocator later refuses is still "live" as far as the trace is concerned,
which is what makes its free legal.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Callable, Iterable

from xcfbench.sim.allocators import create
from xcfbench.sim.arch import Arch
from xcfbench.errors import InputError
from xcfbench.io import read_input
from xcfbench.sim.records import ReplayResult

FREE = -1   # the size slot of a free operation


@dataclass(frozen=True)
class Trace:
    name: str
    ops: tuple[tuple[int, int], ...]    # (id, size) for an alloc, (id, FREE) for a free
    comments: tuple[str, ...] = ()


def parse_trace(lines: Iterable[str], name: str = "<trace>") -> Trace:
    ops: list[tuple[int, int]] = []
    comments: list[str] = []
    live: set[int] = set()
    for lineno, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line:
            continue
        if line[0] == "#":
            comments.append(line[1:].strip())
            continue
        fields = line.split()
        op = fields[0]
        try:
            if op == "a" and len(fields) == 3:
                oid, size = int(fields[1]), int(fields[2])
                if size < 0:
                    raise ValueError
            elif op == "f" and len(fields) == 2:
                oid, size = int(fields[1]), FREE
            else:
                raise ValueError
            if oid < 0:
                raise ValueError
        except ValueError:
            raise InputError(f"{name}:{lineno}: malformed trace line {line[:60]!r}"
                             " (expected 'a ID SIZE' or 'f ID', non-negative integers)") from None
        if size == FREE:
            if oid not in live:
                raise InputError(f"{name}:{lineno}: free of ID {oid}, which is not live")
            live.remove(oid)
        else:
            if oid in live:
                raise InputError(f"{name}:{lineno}: duplicate live ID {oid}")
            live.add(oid)
        ops.append((oid, size))
    return Trace(name=name, ops=tuple(ops), comments=tuple(comments))


def read_trace(path: str | os.PathLike[str]) -> Trace:
    path = os.fspath(path)
    return parse_trace(read_input(path, "trace").splitlines(), name=os.path.basename(path))


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


def replay(trace: Trace, alloc_name: str, arch: Arch, *, verify: bool = False,
           compact: str | None = None, options: dict | None = None,
           progress: Callable[[int, int], None] | None = None) -> ReplayResult:
    """Run every operation of trace through a fresh allocator and report its accounting.

    With verify, the allocator keeps real bytes: each object is written on allocation and
    read back on free and at the end.  compact is None, 'end' or 'every:N'."""
    every = parse_compact(compact)
    alloc = create(alloc_name, arch, store=verify, **(options or {}))
    if every is not None and not alloc.supports_compaction:
        raise InputError(f"allocator {alloc.name} does not support compaction")
    malloc, free, pool_pages, pages_held = (alloc.malloc, alloc.free, alloc.pool_pages,
                                            alloc.pages_held)
    handles: dict[int, object] = {}
    sizes: dict[int, int] = {}
    allocs = frees = failed_allocs = frees_of_failed = 0
    live_bytes = peak_live_objects = peak_live_bytes = 0
    peak_pool = peak_held = 0
    verify_errors = 0
    pages_compacted = 0
    total = len(trace.ops)
    step = max(1, total // 100)
    for n, (oid, size) in enumerate(trace.ops, 1):
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
            if h is None:          # its allocation was refused
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
            progress(n, total)
    pool_end, held_end = pool_pages(), pages_held()
    after_compact = None
    if every is not None:
        pages_compacted += alloc.compact()
        after_compact = pool_pages()
    if verify:
        for oid, h in handles.items():
            if alloc.read(h) != object_bytes(oid, sizes[oid]):
                verify_errors += 1
        alloc.check()
    return ReplayResult(
        trace=trace.name, allocator=alloc.name, arch=arch.name, ops=total, allocs=allocs,
        frees=frees, failed_allocs=failed_allocs, frees_of_failed=frees_of_failed,
        live_objects=len(handles), live_bytes=live_bytes,
        peak_live_objects=peak_live_objects, peak_live_bytes=peak_live_bytes,
        pool_pages=pool_end, peak_pool_pages=peak_pool, pages_held=held_end,
        peak_pages_held=peak_held,
        pool_pages_after_compact=after_compact,
        pages_compacted=pages_compacted if every is not None else None,
        verified=verify, verify_errors=verify_errors if verify else None,
        allocator_stats=alloc.stats(), metadata_bytes=alloc.metadata_bytes())
