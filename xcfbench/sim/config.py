"""The frozen configuration of one run, and the parsing of what users type.

Every knob that changes a number is here, so that a result's config reproduces it.
Defaults are the seed's setup: i386, 512 MB written into a 256 MB cgroup, zcache 3.1 with
zv_max_zsize = zv_max_mean_zsize = 3584, lzo1x-1.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from xcfbench.errors import InputError
from xcfbench.sim.arch import PAGE_SIZE, get_arch
from xcfbench.sim.memcg import DEFAULT_OVERHEAD_PAGES, SWAP_CLUSTER_MAX

# Upper bounds (README, "Limits"): a run writes at most 64 GiB (16 Mi pages, a few GB of
# simulator memory at most), a machine has at most 1 TiB, reclaim takes at most 65536
# pages at a time.
MAX_SIZE_BYTES = 64 << 30
MAX_TOTALRAM_BYTES = 1 << 40
MAX_RECLAIM_BATCH = 65536

_SIZE = re.compile(r"^\s*([0-9]{1,20})\s*([KMGT]?)(i?B?)?\s*$", re.IGNORECASE)
_SCALE = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text: str | int, what: str = "size") -> int:
    """'256M' -> 268435456.  K/M/G/T are powers of 1024, as memory.limit_in_bytes reads
    them; a bare number is bytes."""
    if isinstance(text, int):
        value = text
    else:
        m = _SIZE.match(str(text))
        if not m:
            raise InputError(
                f"bad {what} {text!r}: expected a number of bytes with an optional"
                " K, M, G or T suffix, e.g. 256M"
            )
        value = int(m.group(1)) * _SCALE[m.group(2).upper()]
    if value <= 0:
        raise InputError(f"bad {what} {text!r}: must be more than 0 bytes")
    return value


def format_size(n: int) -> str:
    for suffix, scale in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if n % scale == 0:
            return f"{n // scale}{suffix}"
    return str(n)


MAX_OPS = 1 << 32  # churn accesses (time: about a second per million)


@dataclass(frozen=True)
class RunConfig:
    alloc: str = "xcfmalloc"
    fill: str = "text"
    arch: str = "i386"
    compressor: str = "lzo1x-1"
    frontend: str = "zcache"
    size_bytes: int = 512 << 20
    limit_bytes: int = 256 << 20
    overhead_pages: int = DEFAULT_OVERHEAD_PAGES
    reclaim_batch: int = SWAP_CLUSTER_MAX
    zv_max_zsize: int = PAGE_SIZE // 8 * 7
    zv_max_mean_zsize: int = PAGE_SIZE // 8 * 7
    zv_page_count_policy_percent: int = 75
    totalram_bytes: int = 4 << 30
    zv_hdr_sentinel: bool = True
    corpus: str | None = None
    seed: int = 0
    compact: str | None = None
    verify: bool = False
    samples: int = 256
    alloc_options: tuple[tuple[str, Any], ...] = field(default_factory=tuple)
    frontend_options: tuple[tuple[str, Any], ...] = field(default_factory=tuple)
    compressor_options: tuple[tuple[str, Any], ...] = field(default_factory=tuple)
    shuffle: bool = False  # --fill image:FILE pages in a seeded random order
    ops: int = 0  # churn: page accesses after the initial write (sim/churn.py)
    access: str = "uniform"
    dirty: float = 0.0

    def __post_init__(self) -> None:
        from xcfbench.sim.allocators import canonical_name, get_allocator_class
        from xcfbench.sim.compressors import canonical_compressor, get_compressor_class
        from xcfbench.sim.frontends import get_frontend_class
        from xcfbench.sim.trace import parse_compact
        from xcfbench.sim.workloads import get_workload_class

        object.__setattr__(self, "alloc", canonical_name(self.alloc))
        object.__setattr__(self, "compressor", canonical_compressor(self.compressor))
        object.__setattr__(self, "arch", get_arch(self.arch).name)
        get_workload_class(self.fill)
        if self.shuffle and get_workload_class(self.fill).name != "image":
            raise InputError(f"--shuffle applies to --fill image:FILE, not {self.fill!r}")
        parse_compact(self.compact)
        from xcfbench.sim.churn import parse_access, parse_dirty

        if self.ops < 0:
            raise InputError(f"bad --ops {self.ops}: 0 or more")
        parse_access(self.access)
        parse_dirty(self.dirty)
        if not self.ops and (self.access != "uniform" or self.dirty):
            raise InputError("--access and --dirty apply to the accesses of --ops N")
        frontend = get_frontend_class(self.frontend)
        for key, _ in self.frontend_options:
            if key not in frontend.options:
                raise InputError(
                    f"front end {frontend.name} has no option {key!r}"
                    f" (options: {', '.join(frontend.options) or 'none'})"
                )
        for key, value in self.compressor_options:
            if key != "level":
                raise InputError(
                    f"compressor {self.compressor} has no option {key!r} (options: level)"
                )
            get_compressor_class(self.compressor)(
                level=value, call=get_compressor_class(self.compressor).calls[0]
            )
        for what, value, most in self._bounds():
            if value > most:
                show = format_size if what in ("--size", "--limit", "--totalram") else str
                raise InputError(f"bad {what} {show(value)}: at most {show(most)}")
        if self.size_bytes < PAGE_SIZE:
            raise InputError(
                f"bad size {self.size_bytes}: write at least one page ({PAGE_SIZE} bytes)"
            )
        if self.limit_bytes < PAGE_SIZE:
            raise InputError(f"bad limit {self.limit_bytes}: at least one page ({PAGE_SIZE} bytes)")
        if self.overhead_pages < 0:
            raise InputError(f"bad overhead {self.overhead_pages}: pages cannot be negative")
        if self.seed < 0:
            raise InputError(f"bad seed {self.seed}: must be 0 or more")
        if self.totalram_bytes < PAGE_SIZE:
            raise InputError(f"bad totalram {self.totalram_bytes}: at least one page")
        if self.samples < 1:
            raise InputError("samples must be at least 1")
        cls = get_allocator_class(self.alloc)
        for key, _ in self.alloc_options:
            if key not in cls.options:
                raise InputError(
                    f"allocator {cls.name} has no option {key!r}"
                    f" (options: {', '.join(cls.options) or 'none'})"
                )
        if self.compact is not None and not cls.supports_compaction:
            raise InputError(f"allocator {cls.name} does not support compaction")

    def _bounds(self) -> tuple[tuple[str, int, int], ...]:
        """(option, value, upper bound): what sizes memory or time has a documented most
        (README, "Limits")."""
        return (
            ("--size", self.size_bytes, MAX_SIZE_BYTES),
            ("--limit", self.limit_bytes, MAX_SIZE_BYTES),
            ("--totalram", self.totalram_bytes, MAX_TOTALRAM_BYTES),
            ("--overhead-pages", self.overhead_pages, MAX_SIZE_BYTES // PAGE_SIZE),
            ("--reclaim-batch", self.reclaim_batch, MAX_RECLAIM_BATCH),
            ("--seed", self.seed, (1 << 64) - 1),
            ("samples", self.samples, 1 << 20),
            ("--ops", self.ops, MAX_OPS),
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["alloc_options"] = {k: v for k, v in self.alloc_options}
        d["frontend_options"] = {k: v for k, v in self.frontend_options}
        d["compressor_options"] = {k: v for k, v in self.compressor_options}
        if not self.shuffle:
            del d["shuffle"]  # only image fills shuffle; other results stay as they were
        if not self.ops:
            for key in ("ops", "access", "dirty"):
                del d[key]  # write-once runs' results stay as they were
        return d


def parse_alloc_options(items: tuple[str, ...] | list[str]) -> tuple[tuple[str, Any], ...]:
    """['chain_size=4', 'rule=v1'] -> (('chain_size', 4), ('rule', 'v1')), sorted."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise InputError(f"bad allocator option {item!r}: expected NAME=VALUE")
        value: Any = raw.strip()
        if value.lower() in ("true", "yes", "on"):
            value = True
        elif value.lower() in ("false", "no", "off"):
            value = False
        else:
            try:
                value = int(value)
            except ValueError:
                pass
        out[key] = value
    return tuple(sorted(out.items()))
