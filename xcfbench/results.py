"""Frozen result records and the versioned JSON document that carries them.

A document is {"schema_version", "tool_version", "kind", "config", "results"}.  Field
names carry their unit (pool_pages, live_bytes, ..._pct) and use the kernel's name where
the kernel has one (curr_pages, zv_page_count, zv_desc_count, pages_compacted).  The
loader refuses a document of another schema version with a clear message.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import uuid
from dataclasses import dataclass, field
from typing import IO, Any, Iterator

from .errors import InputError, read_input

SCHEMA_VERSION = 1
TOOL_VERSION = "0.1.0"


@dataclass(frozen=True)
class ReplayResult:
    trace: str
    allocator: str
    arch: str
    ops: int
    allocs: int
    frees: int
    failed_allocs: int
    frees_of_failed: int
    live_objects: int
    live_bytes: int
    peak_live_objects: int
    peak_live_bytes: int
    pool_pages: int
    peak_pool_pages: int
    pages_held: int
    peak_pages_held: int
    pool_pages_after_compact: int | None
    pages_compacted: int | None
    verified: bool
    verify_errors: int | None
    metadata_bytes: int
    allocator_stats: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        # The allocator's own headline counters (xcfmalloc's desc_count, zsmalloc's
        # huge_class_size) also stand at the top level, under their kernel names.
        for key, value in self.allocator_stats.items():
            if not isinstance(value, (dict, list)):
                d.setdefault(key, value)
        return d


def document(kind: str, config: dict[str, Any], results: Any) -> dict[str, Any]:
    return {"schema_version": SCHEMA_VERSION, "tool_version": TOOL_VERSION, "kind": kind,
            "config": config, "results": results}


def dumps(doc: dict[str, Any]) -> str:
    """Canonical JSON: sorted keys, fixed separators, so equal documents are equal bytes."""
    return json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def check_output_dir(path: str) -> str:
    """The directory path will be written in; an InputError now if it does not exist, so
    that a long run does not fail at its very end."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise InputError(f"cannot write {path!r}: directory {directory!r} does not exist")
    return directory


@contextlib.contextmanager
def atomic_open(path: str, mode: str = "w") -> Iterator[IO]:
    """Open a temporary file beside path and rename it over path when the block ends
    without an exception: a reader sees the old file or the whole new one, never half."""
    directory = check_output_dir(path)
    tmp = os.path.join(directory, f".xcfbench-{uuid.uuid4().hex}.tmp")
    try:
        # Not mkstemp: its 0600 would stick to the result; 0666 lets the umask decide.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as e:
        raise InputError(f"cannot write {path!r}: {e.strerror}") from None
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_atomic(path: str, text: str) -> None:
    with atomic_open(path) as f:
        f.write(text)


def load_document(path: str) -> dict[str, Any]:
    return parse_document(read_input(path, "result file"), path)


def parse_document(text: str, name: str) -> dict[str, Any]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"result file {name!r} is not valid JSON: {e}") from None
    check_document(doc, repr(name))
    return doc


def check_document(doc: Any, where: str) -> None:
    """An xcfbench result document of the version this xcfbench reads, or InputError;
    where says which file (and line) it came from."""
    if not isinstance(doc, dict) or "schema_version" not in doc:
        raise InputError(f"result file {where} is not an xcfbench result (no schema_version)")
    if doc["schema_version"] != SCHEMA_VERSION:
        raise InputError(f"result file {where} has schema_version {doc['schema_version']!r};"
                         f" this xcfbench reads version {SCHEMA_VERSION}")


@dataclass(frozen=True)
class RunResult:
    """One run of the seed experiment: what frontswap, zcache and the allocator report."""
    allocator: str
    fill: str
    arch: str
    compressor: str
    pages_written: int
    pages_evicted: int          # pages reclaim pushed out (offered to frontswap)
    resident_pages: int         # the workload's pages still in the cgroup at the end
    curr_pages: int             # frontswap: pages held in zcache
    succ_puts: int
    failed_puts: int
    rejects: dict[str, int]     # failed puts by reason
    zv_page_count: int          # the allocator's reported pool pages
    zv_desc_count: int | None   # xcfmalloc's block descriptors (zcache sysfs), else None
    pages_held: int             # every page the allocator holds, reserves included
    peak_pool_pages: int
    metadata_bytes: int         # descriptor/handle slab bytes outside the pool pages
    orig_data_size: int         # curr_pages * PAGE_SIZE
    compr_data_size: int        # Σ clen of stored pages (headers excluded)
    zv_hdr_bytes: int           # sizeof(struct zv_hdr) added to every allocation
    mean_compressed_pct: float | None     # Σ clen / orig_data_size, %
    effective_compression_pct: float | None        # (pool + metadata pages) / curr_pages, %
    effective_compression_pages_only_pct: float | None
    stored_per_pool: float | None         # the inverse: curr_pages / (pool + metadata pages)
    comp_ratio: float | None              # zramctl's orig_data_size / pool bytes
    pool_pages_after_compact: int | None
    pages_compacted: int | None
    distinct_pages_compressed: int
    verified: bool
    verify_errors: int | None
    zv_curr_dist_counts: list[int]
    clen_histogram: list[int]              # every offered page's clen, 32-byte buckets
    samples: list[list[int]]               # [pages_written, curr_pages, pool_pages]
    allocator_stats: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)   # versions, corpus digest

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunResult":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})
