"""Recorded kernel traces: the bpftrace program, and its output turned into trace v1.

The program (BPFTRACE) prints one event a line:

    M <nsecs> <cpu> <size> <handle>    zs_malloc(pool, size, ...) returned handle
    F <nsecs> <cpu> <handle>           zs_free(pool, handle)
    S <nsecs> <cpu> <event>            a swap-level event where a probe point exists
                                       (zswap_store, zswap_load, zswap_invalidate,
                                       zram_free_page): counted, not converted
    Lost <N> events                    bpftrace's own line when its buffer overflowed

Events of different CPUs reach the output slightly out of order, so the converter puts
them back in time order through a window (REORDER_NS) before it follows handles.

Conversion to trace v1: each successful allocation gets the next id (0, 1, 2, ...); a
handle's id lives until its free, and a handle the kernel hands out again after its free
gets a new id.  What cannot be converted is counted, never guessed:

  failed_allocs          a handle of 0 or an ERR_PTR (-4095..-1): the kernel refused
  size_zero, size_over_page  a handle returned for size 0 or size > PAGE_SIZE (zsmalloc
                         refuses both; a record with one is damaged): dropped, its free too
  free_unseen            a free of a handle never allocated in the trace (allocated before
                         the recording began, or its allocation was lost): dropped
  double_free            a free of a handle already freed: dropped
  free_null              zs_free of 0 or an ERR_PTR, a no-op in the kernel
  realloc_live           an allocation returning a handle that is still live: its free
                         was lost; the old id is freed first ("f OLD") and counted
  lost_events            the sum of bpftrace's "Lost N events" lines
  swap_events            S lines, by event name
"""

from __future__ import annotations

import heapq
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from xcfbench.errors import InputError
from xcfbench.sim.arch import PAGE_SIZE

REORDER_NS = 1_000_000_000
ERR_MIN = (1 << 64) - 4095

BPFTRACE = r"""#!/usr/bin/env bpftrace
/*
 * xcfbench record: every zs_malloc (size, returned handle) and zs_free (handle), and the
 * swap-level events that have probe points, one line each.  Run as root:
 *     bpftrace record.bt > zsmalloc.raw
 * then: xcfbench import zsmalloc.raw -o zsmalloc.trace.zst
 * zs_malloc(struct zs_pool *pool, size_t size, gfp_t gfp[, int nid]) returns the handle
 * (0 or an ERR_PTR when it fails); zs_free(struct zs_pool *pool, unsigned long handle).
 */
BEGIN
{
	printf("# xcfbench-bpftrace v1\n");
}

kprobe:zs_malloc
{
	@size[tid] = arg1;
	@in[tid] = 1;
}

kretprobe:zs_malloc
/@in[tid]/
{
	printf("M %llu %d %lu %lu\n", nsecs, cpu, @size[tid], retval);
	delete(@size[tid]);
	delete(@in[tid]);
}

kprobe:zs_free
{
	printf("F %llu %d %lu\n", nsecs, cpu, arg1);
}

kprobe:zswap_store { printf("S %llu %d zswap_store\n", nsecs, cpu); }
kprobe:zswap_load { printf("S %llu %d zswap_load\n", nsecs, cpu); }
kprobe:zswap_invalidate { printf("S %llu %d zswap_invalidate\n", nsecs, cpu); }
kprobe:zram_free_page { printf("S %llu %d zram_free_page\n", nsecs, cpu); }

END
{
	clear(@size);
	clear(@in);
}
"""

_LOST = re.compile(r"^Lost (\d+) events?$")


@dataclass
class ImportStats:
    allocs: int = 0
    frees: int = 0
    failed_allocs: int = 0
    size_zero: int = 0
    size_over_page: int = 0
    free_unseen: int = 0
    double_free: int = 0
    free_null: int = 0
    dropped_frees: int = 0
    realloc_live: int = 0
    lost_events: int = 0
    swap_events: Counter = field(default_factory=Counter)

    def comments(self) -> list[str]:
        out = [f"import: {k}={v}" for k, v in vars(self).items() if k != "swap_events"]
        out += [f"import: swap_event {k}={v}" for k, v in sorted(self.swap_events.items())]
        return out


def _events(lines: Iterable[str], name: str, stats: ImportStats) -> Iterator[tuple]:
    """(nsecs, seq, kind, size, handle) in time order, through the reorder window."""
    heap: list[tuple] = []
    newest = 0
    for lineno, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line[0] == "#" or line.startswith("Attaching "):
            continue
        m = _LOST.match(line)
        if m:
            stats.lost_events += int(m.group(1))
            continue
        f = line.split()
        try:
            if f[0] == "M" and len(f) == 5:
                ev = (int(f[1]), lineno, "M", int(f[3]), int(f[4]))
            elif f[0] == "F" and len(f) == 4:
                ev = (int(f[1]), lineno, "F", 0, int(f[3]))
            elif f[0] == "S" and len(f) == 4:
                int(f[1])
                stats.swap_events[f[3]] += 1
                continue
            else:
                raise ValueError
            if ev[0] < 0 or ev[3] < 0 or not 0 <= ev[4] < 1 << 64:
                raise ValueError
        except ValueError:
            raise InputError(
                f"{name}:{lineno}: not a line of xcfbench's bpftrace program: {line[:60]!r}"
            ) from None
        heapq.heappush(heap, ev)
        newest = max(newest, ev[0])
        while heap and heap[0][0] < newest - REORDER_NS:
            yield heapq.heappop(heap)
    while heap:
        yield heapq.heappop(heap)


def convert(lines: Iterable[str], name: str = "<raw>") -> tuple[Iterator[str], ImportStats]:
    """Trace v1 lines (without their header) from bpftrace output lines, lazily; stats is
    complete once the iterator is exhausted."""
    stats = ImportStats()

    def ops() -> Iterator[str]:
        live: dict[int, int] = {}  # handle -> id
        dead: set[int] = set()  # handles freed (or dropped) and not reissued
        dropped: set[int] = set()  # live handles of allocations we did not convert
        next_id = 0
        for _, _, kind, size, handle in _events(lines, name, stats):
            if kind == "M":
                if handle == 0 or handle >= ERR_MIN:
                    stats.failed_allocs += 1
                    continue
                if handle in live:
                    stats.realloc_live += 1
                    stats.frees += 1
                    yield f"f {live.pop(handle)}"
                dead.discard(handle)
                dropped.discard(handle)
                if size == 0 or size > PAGE_SIZE:
                    if size == 0:
                        stats.size_zero += 1
                    else:
                        stats.size_over_page += 1
                    dropped.add(handle)
                    continue
                live[handle] = next_id
                stats.allocs += 1
                yield f"a {next_id} {size}"
                next_id += 1
            else:
                if handle == 0 or handle >= ERR_MIN:
                    stats.free_null += 1
                elif handle in live:
                    stats.frees += 1
                    dead.add(handle)
                    yield f"f {live.pop(handle)}"
                elif handle in dropped:
                    dropped.discard(handle)
                    dead.add(handle)
                    stats.dropped_frees += 1
                elif handle in dead:
                    stats.double_free += 1
                else:
                    stats.free_unseen += 1
                    dead.add(handle)

    return ops(), stats
