"""capture: the pages of live processes that would go to swap, into a page image.

Which pages (linux Documentation/admin-guide/mm/pagemap.rst, one u64 per virtual page):

    bit 63 present      bit 62 swapped      bit 61 file-page or shared-anon
    bit 56 exclusively mapped               bits 0-54 PFN (zero without CAP_SYS_ADMIN)

A page is kept when it is present (63) and not a file page or shared anonymous memory (61
clear): private anonymous memory, heap, stacks, and the copy-on-write copies of private
file mappings (a written page of a private mapping is an anonymous page).  Exclusivity (56)
does not matter: an anonymous page shared copy-on-write with a fork still goes to swap.
Not kept: pages mapping the kernel's zero page (a read of untouched anonymous memory; its
PFN is learnt from our own pagemap, so only where PFNs are visible, i.e. as root), and the
kernel's special regions [vvar], [vvar_vclock] and [vsyscall], which cannot be swapped.
Swapped-out entries (62) are counted, not read: their bytes are not in memory.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import platform
import signal
import struct
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO

from xcfbench.errors import InputError
from xcfbench.sim.arch import PAGE_SIZE
from xcfbench.sim.images import IMAGE_MAGIC, VERSION, ContainerWriter, DigestSet, digest8

PRESENT, SWAPPED, FILE_SHARED, EXCLUSIVE = 1 << 63, 1 << 62, 1 << 61, 1 << 56
PFN_MASK = (1 << 55) - 1
SPECIAL = ("[vvar]", "[vvar_vclock]", "[vsyscall]")
RUN = 256  # pages read from /proc/PID/mem at once
ZERO_PAGE = bytes(PAGE_SIZE)


@dataclass
class CaptureStats:
    pages: int = 0
    distinct: int = 0
    zero_pages: int = 0
    swapped_out: int = 0
    file_or_shared: int = 0
    zero_page_mapped: int = 0
    unreadable: int = 0
    regions: int = 0
    incomplete: list[str] = field(default_factory=list)


def zero_pfn() -> int:
    """The PFN of the kernel's zero page, from a read of our own untouched page; 0 where
    PFNs are hidden."""
    buf = mmap.mmap(-1, PAGE_SIZE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    try:
        cbuf = ctypes.c_char.from_buffer(buf)
        addr = ctypes.addressof(cbuf)
        _ = buf[0]  # a read fault maps the zero page
        with open("/proc/self/pagemap", "rb") as f:
            f.seek(addr // PAGE_SIZE * 8)
            (entry,) = struct.unpack("<Q", f.read(8))
        del cbuf
    except OSError:
        return 0
    finally:
        try:
            buf.close()
        except BufferError:
            pass
    return entry & PFN_MASK if entry & PRESENT else 0


def privilege_message(pid: int) -> str:
    try:
        uid = os.stat(f"/proc/{pid}").st_uid
    except OSError:
        uid = None
    scope = "no Yama on this kernel"
    try:
        with open("/proc/sys/kernel/yama/ptrace_scope") as f:
            scope = f"now {f.read().strip()}"
    except OSError:
        pass
    owner = f" (uid {uid}; you are uid {os.geteuid()})" if uid is not None else ""
    return (
        f"permission denied reading process {pid}{owner}: reading another process's memory"
        f" needs CAP_SYS_PTRACE (run as root), or the same uid with"
        f" kernel.yama.ptrace_scope 0 ({scope})"
    )


def check_process(pid: int) -> str:
    """The process's comm, or an InputError: no such process, or not permitted."""
    try:
        with open(f"/proc/{pid}/comm") as f:
            comm = f.read().strip()
        with open(f"/proc/{pid}/maps"):
            pass
        with open(f"/proc/{pid}/mem", "rb"):
            pass
        with open(f"/proc/{pid}/pagemap", "rb"):
            pass
    except FileNotFoundError:
        raise InputError(f"no process {pid}") from None
    except ProcessLookupError:
        raise InputError(f"no process {pid}") from None
    except PermissionError:
        raise InputError(privilege_message(pid)) from None
    return comm


def parse_maps(text: str) -> list[dict]:
    regions = []
    for line in text.splitlines():
        parts = line.split(None, 5)
        if len(parts) < 5:
            continue
        lo, hi = (int(x, 16) for x in parts[0].split("-"))
        regions.append(
            {
                "start": lo,
                "end": hi,
                "perms": parts[1],
                "offset": int(parts[2], 16),
                "name": parts[5].strip() if len(parts) > 5 else "",
            }
        )
    return regions


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


@contextmanager
def frozen(pids: list[int], enabled: bool = True) -> Iterator[None]:
    """SIGSTOP the processes for the block and SIGCONT them whatever happens, SIGINT and
    SIGTERM included (both raise here, so the finally runs).  A process already stopped
    is left as it was found."""
    if not enabled:
        yield
        return
    old = {}

    def interrupted(signum, frame):
        raise KeyboardInterrupt

    for s in (signal.SIGINT, signal.SIGTERM):
        old[s] = signal.signal(s, interrupted)
    stopped = []
    try:
        for pid in pids:
            try:
                if _state(pid) in ("T", "t"):
                    continue  # stopped by someone else (job control, a debugger)
            except OSError:
                continue
            os.kill(pid, signal.SIGSTOP)
            stopped.append(pid)
        deadline = time.monotonic() + 10.0  # a loaded machine delivers SIGSTOP late
        for pid in pids:  # wait until each is stopped (state T), briefly
            while time.monotonic() < deadline:
                try:
                    if _state(pid) in ("T", "t", "Z", "X"):
                        break
                except OSError:
                    break
                time.sleep(0.001)
        yield
    finally:
        for pid in stopped:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        for s, h in old.items():
            signal.signal(s, h)


def capture(
    pids: list[int],
    out: IO[bytes],
    freeze: bool = False,
    progress: Callable[[int], None] | None = None,
    skip_unreadable: bool = False,
) -> tuple[str, dict, CaptureStats]:
    """Write a page image of pids to out (a seekable binary file); returns its checksum,
    its metadata and the counts.  skip_unreadable (for --all) passes over processes we may
    not read instead of failing."""
    comms = {}
    for pid in pids:
        try:
            comms[pid] = check_process(pid)
        except InputError:
            if not skip_unreadable:
                raise
    stats = CaptureStats()
    seen = DigestSet()
    zpfn = zero_pfn()
    w = ContainerWriter(out, IMAGE_MAGIC)
    with frozen(list(comms), freeze):
        for pid, comm in comms.items():
            complete = _capture_one(pid, comm, w, seen, zpfn, stats, progress)
            w.record(b"P", {"pid": pid, "comm": comm, "complete": complete})
            if not complete:
                stats.incomplete.append(f"{pid} ({comm})")
    stats.distinct = seen.count
    executables = sorted(set(comms.values()))
    meta = {
        "format": "xcfbench page image",
        "version": VERSION,
        "kernel": platform.release(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "executables": executables if len(executables) <= 64 else executables[:64] + ["..."],
        "processes": len(comms),
        "pages": stats.pages,
        "distinct_pages": stats.distinct,
        "zero_pages": stats.zero_pages,
        "swapped_out": stats.swapped_out,
        "regions": stats.regions,
        "frozen": freeze,
        "complete": not stats.incomplete,
        "rule": "pagemap present and not file/shared-anon; not the zero page;"
        " not [vvar]/[vsyscall]",
    }
    checksum = w.finish(meta)
    return checksum, meta, stats


def _capture_one(
    pid: int,
    comm: str,
    w: ContainerWriter,
    seen: DigestSet,
    zpfn: int,
    stats: CaptureStats,
    progress,
) -> bool:
    """Capture one process; False if it went away (or its memory did) midway."""
    try:
        with open(f"/proc/{pid}/maps") as f:
            regions = parse_maps(f.read())
        pagemap = os.open(f"/proc/{pid}/pagemap", os.O_RDONLY)
    except (FileNotFoundError, ProcessLookupError):
        return False
    except PermissionError:
        raise InputError(privilege_message(pid)) from None
    try:
        mem = os.open(f"/proc/{pid}/mem", os.O_RDONLY)
    except PermissionError:
        os.close(pagemap)
        raise InputError(privilege_message(pid)) from None
    except (FileNotFoundError, ProcessLookupError):
        os.close(pagemap)
        return False
    add, write = seen.add, w.write
    pack_n, pack_d = struct.Struct("<Q").pack, struct.Struct("<QQ").pack
    try:
        for reg in regions:
            if reg["name"] in SPECIAL:
                continue
            w.record(b"R", {"pid": pid, **reg})
            stats.regions += 1
            addr = reg["start"]
            while addr < reg["end"]:
                n = min(RUN, (reg["end"] - addr) // PAGE_SIZE)
                try:
                    raw = os.pread(pagemap, 8 * n, addr // PAGE_SIZE * 8)
                except OSError as e:
                    if e.errno in (errno.ESRCH, errno.ENOENT):
                        return False
                    raise
                if not raw:
                    return not _gone(pid)
                entries = struct.unpack(f"<{len(raw) // 8}Q", raw)
                want = []
                for i, entry in enumerate(entries):
                    if entry & SWAPPED:
                        stats.swapped_out += 1
                    elif entry & PRESENT:
                        if entry & FILE_SHARED:
                            stats.file_or_shared += 1
                        elif zpfn and (entry & PFN_MASK) == zpfn:
                            stats.zero_page_mapped += 1
                        else:
                            want.append(i)
                for lo, hi in _runs(want):
                    # Only the pages we keep are read: a read of a swapped-out or untouched
                    # page would swap it in or map it.
                    try:
                        data = os.pread(mem, (hi - lo) * PAGE_SIZE, addr + lo * PAGE_SIZE)
                    except OSError as e:
                        if e.errno == errno.ESRCH:
                            return False
                        if e.errno != errno.EIO:  # EIO: a range the kernel will not read
                            raise
                        data = b""
                    if len(data) == (hi - lo) * PAGE_SIZE:
                        pages = [
                            (lo + j, data[j * PAGE_SIZE : (j + 1) * PAGE_SIZE])
                            for j in range(hi - lo)
                        ]
                    elif _gone(pid):
                        return False
                    else:
                        pages = _read_pages(mem, addr, range(lo, hi), stats)
                    for i, page in pages:
                        a = addr + i * PAGE_SIZE
                        d = digest8(page)
                        if add(d):
                            write(b"N" + pack_n(a) + page)
                        else:
                            write(b"D" + pack_d(a, d))
                        if page == ZERO_PAGE:
                            stats.zero_pages += 1
                    stats.pages += len(pages)
                    if progress is not None:
                        progress(stats.pages)
                addr += len(entries) * PAGE_SIZE
    finally:
        os.close(mem)
        os.close(pagemap)
    return not _gone(pid)


def _runs(want: list[int]) -> Iterator[tuple[int, int]]:
    """[1, 2, 3, 7, 8] -> (1, 4), (7, 9)."""
    start: int | None = None
    prev = 0  # read only once start is set
    for i in want:
        if start is None:
            start = prev = i
        elif i == prev + 1:
            prev = i
        else:
            yield start, prev + 1
            start = prev = i
    if start is not None:
        yield start, prev + 1


def _read_pages(mem: int, addr: int, want, stats: CaptureStats) -> list:
    out = []
    for i in want:
        try:
            page = os.pread(mem, PAGE_SIZE, addr + i * PAGE_SIZE)
        except OSError:
            page = b""
        if len(page) == PAGE_SIZE:
            out.append((i, page))
        else:
            stats.unreadable += 1
    return out


def _gone(pid: int) -> bool:
    try:
        return _state(pid) in ("Z", "X")
    except OSError:
        return True


def all_pids() -> list[int]:
    me = os.getpid()
    return sorted(int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != me)


BENCH_PROGRAM = """
import mmap, sys
n = int(sys.argv[1])
m = mmap.mmap(-1, n * 4096, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
for i in range(n):            # every page touched and distinct, mostly zeros
    m[i * 4096:i * 4096 + 8] = i.to_bytes(8, "little")
print("ready", flush=True)
sys.stdin.read()
"""


def bench_capture(gib: float, directory: str) -> dict:
    """Capture a process of gib GiB of touched, distinct anonymous pages (one it starts,
    with an empty environment) in a separate xcfbench process; its peak RSS against the
    bound of 100 MB + 16 bytes per distinct page.  For `make bench`."""
    import subprocess
    import sys

    pages = int(gib * (1 << 30)) // PAGE_SIZE
    target = subprocess.Popen(
        ["env", "-i", sys.executable, "-c", BENCH_PROGRAM, str(pages)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert target.stdout is not None  # stdout=PIPE
    try:
        if target.stdout.readline().strip() != "ready":
            raise RuntimeError("the process to capture did not start")
        out = os.path.join(directory, "bench.xcfimg")
        t0 = time.monotonic()
        cap = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "xcfbench",
                "capture",
                str(target.pid),
                "--freeze",
                "-q",
                "-o",
                out,
            ]
        )
        _, status, usage = os.wait4(cap.pid, 0)
        cap.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.monotonic() - t0
        if cap.returncode:
            raise RuntimeError(f"capture exited {cap.returncode}")
        size = os.path.getsize(out)
        os.unlink(out)
    finally:
        target.kill()
        target.wait()
    peak = usage.ru_maxrss * 1024
    bound = 100_000_000 + 16 * pages
    return {
        "gib": gib,
        "pages": pages,
        "peak_rss_bytes": peak,
        "bound_bytes": bound,
        "within_bound": peak <= bound,
        "seconds": round(seconds, 2),
        "image_bytes": size,
    }
