"""`make kernel-check`: zram's mm_stat on the running kernel against the model.

Opt-in and root only; never part of `make test` or CI.  For each algorithm it creates its
OWN zram device (/sys/class/zram-control/hot_add), sets comp_algorithm and disksize,
replays a page trace into it (w: one O_DIRECT 4096-byte write; d: BLKDISCARD of the
page; r: an O_DIRECT read; c: compact), reads mm_stat, and compares every field with
`xcfbench replay --frontend zram --zram-mode block` on the same trace.  The device is
always reset and hot_removed (try/finally).  It touches no other zram device, no swap and
no zswap parameter.

The model uses the kernel compressors registered under the algorithm's name (issue 9:
lz4, lzo-rle and lzo by default); an algorithm that is not registered falls back to
--sizes FILE, a sizes.json of the reference pages (tests/reference/compressors), which
then must be the --pages written.  The built-in traces: the reference pages with random
overwrites and discards and a compaction; their same-filled pages only; and
--text-pages pages of the text fill with overwrites, discards and reads.

    python -m xcfbench.cli.kernelcheck [--pages FILE] [--trace FILE] [--alg lz4 ...]
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import mmap
import os
import platform
import random
import struct
import sys
from pathlib import Path

from xcfbench.errors import InputError

CONTROL = Path("/sys/class/zram-control")
BLKDISCARD = 0x1277  # _IO(0x12, 119)
PAGE = 4096
REPO = Path(__file__).resolve().parents[2]
REF = REPO / "tests" / "reference" / "compressors"


def churn_trace(n_pages: int, seed: int, ops: int) -> list[str]:
    rng = random.Random(seed)
    lines = [f"w {n} {n}" for n in range(n_pages)]
    for _ in range(ops):
        block = rng.randrange(n_pages + 64)
        lines.append(f"d {block}" if rng.random() < 0.3 else f"w {block} {rng.randrange(n_pages)}")
    lines.append("c")
    return lines


def same_filled_trace(data: bytes, sizes: dict | None) -> list[str]:
    """Only the same-filled and zero pages, written, overwritten and discarded."""
    n = len(data) // PAGE
    same = [
        i
        for i in range(n)
        if data[i * PAGE : (i + 1) * PAGE] == data[i * PAGE : i * PAGE + 8] * (PAGE // 8)
    ]
    lines = [f"w {k} {p}" for k, p in enumerate(same)]
    lines += [f"w {k} {same[-1 - k]}" for k in range(0, len(same), 3)]
    lines += [f"d {k}" for k in range(0, len(same), 4)] + ["c"]
    return lines


def text_pages(n_pages: int, seed: int) -> bytes:
    """The first n_pages pages the text fill writes (corpora/english.txt)."""
    from xcfbench.sim.workloads import create_workload

    w = create_workload("text", seed, None, False)
    return b"".join(w.page(w.key(i)) for i in range(n_pages))


def read_churn_trace(n_pages: int, seed: int, ops: int) -> list[str]:
    """churn_trace with reads too: each op a write, a discard or a read of a block."""
    rng = random.Random(seed)
    lines = [f"w {n} {n}" for n in range(n_pages)]
    for _ in range(ops):
        block, x = rng.randrange(n_pages + 64), rng.random()
        if x < 0.2:
            lines.append(f"d {block}")
        elif x < 0.4:
            lines.append(f"r {block}")
        else:
            lines.append(f"w {block} {rng.randrange(n_pages)}")
    lines.append("c")
    return lines


def table_compressor(sizes_path: Path, alg: str):
    from xcfbench.sim.compressors import COMPRESSORS
    from xcfbench.sim.compressors.base import Compressor

    rows = json.loads(sizes_path.read_text())["pages"]
    table = {r["sha256"]: r["zram"][alg] for r in rows}

    class Table(Compressor):
        name = f"table-{alg}"
        summary = f"the kernel's {alg} lengths of the reference pages"
        calls = ("zram",)

        def size(self, page):
            try:
                return table[hashlib.sha256(page).hexdigest()]
            except KeyError:
                raise InputError("--sizes has no length for a page written") from None

        def compress(self, page):
            return bytes(self.size(page))

        def version(self):
            return f"kernel {alg} lengths from {sizes_path.name}"

    COMPRESSORS[Table.name] = Table
    return Table.name


def sysfs_write(path: Path, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def run_kernel(alg: str, data: bytes, lines: list[str]) -> tuple[str, list[int]]:
    """Replay lines into a new zram device; returns (mm_stat text, fields)."""
    dev_id = int((CONTROL / "hot_add").read_text().strip())
    sysdir = Path(f"/sys/block/zram{dev_id}")
    try:
        sysfs_write(sysdir / "comp_algorithm", alg)
        max_block = max(int(x.split()[1]) for x in lines if x[0] in "wdr")
        sysfs_write(sysdir / "disksize", str((max_block + 1) * PAGE))
        fd = os.open(f"/dev/zram{dev_id}", os.O_RDWR | os.O_DIRECT)
        buf = mmap.mmap(-1, PAGE)  # page-aligned, as O_DIRECT needs
        try:
            for line in lines:
                f = line.split()
                if f[0] == "w":
                    block, page = int(f[1]), int(f[2])
                    buf.seek(0)
                    buf.write(data[page * PAGE : (page + 1) * PAGE])
                    if os.pwritev(fd, [buf], block * PAGE) != PAGE:
                        raise OSError(f"short write at block {block}")
                elif f[0] == "d":
                    fcntl.ioctl(fd, BLKDISCARD, struct.pack("QQ", int(f[1]) * PAGE, PAGE))
                elif f[0] == "r":
                    os.preadv(fd, [buf], int(f[1]) * PAGE)
                elif f[0] == "c":
                    os.fsync(fd)
                    sysfs_write(sysdir / "compact", "1")
        finally:
            buf.close()
            os.close(fd)
        text = (sysdir / "mm_stat").read_text().rstrip("\n")
        return text, [int(x) for x in text.split()]
    finally:
        try:
            sysfs_write(sysdir / "reset", "1")
        finally:
            sysfs_write(CONTROL / "hot_remove", str(dev_id))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="xcfbench-kernel-check", description=__doc__.split("\n")[0])
    ap.add_argument("--pages", default=str(REF / "pages.bin.xz"))
    ap.add_argument(
        "--sizes",
        default=None,
        help="sizes.json of --pages (default: the reference set's, when --pages"
        " is the reference set and the algorithm is not registered)",
    )
    ap.add_argument("--trace", default=None, help="a page trace (default: built-in traces)")
    ap.add_argument("--alg", action="append", default=None)
    ap.add_argument("--chain-size", type=int, default=8)
    ap.add_argument("--seed", type=int, default=10)
    ap.add_argument("--ops", type=int, default=3000)
    ap.add_argument("--text-pages", type=int, default=2048, help="pages of the text trace")
    args = ap.parse_args(argv)
    from xcfbench.sim.compressors import COMPRESSORS
    from xcfbench.sim.frontends.zram import MM_STAT_FIELDS
    from xcfbench.sim.pagetrace import read_pages, replay_pages

    print(f"kernel: Linux {platform.release()} ({platform.machine()})")
    if os.geteuid() != 0:
        print("kernel-check needs root (it creates its own zram device)", file=sys.stderr)
        return 2
    if not CONTROL.is_dir():
        print("no /sys/class/zram-control: zram is not available", file=sys.stderr)
        return 2
    data = read_pages(args.pages)
    n = len(data) // PAGE
    # name -> (pages, trace lines, whether the reference sizes table describes the pages)
    traces: dict[str, tuple[bytes, list[str], bool]] = {}
    if args.trace:
        lines = Path(args.trace).read_text().splitlines()
        lines = [x for x in lines if x.strip() and not x.startswith("#")]
        traces[os.path.basename(args.trace)] = (data, lines, True)
    else:
        pages_name = os.path.basename(args.pages)
        traces[f"{pages_name} churn(seed={args.seed}, ops={args.ops})"] = (
            data,
            churn_trace(n, args.seed, args.ops),
            True,
        )
        traces[f"{pages_name} same-filled only"] = (data, same_filled_trace(data, None), True)
        text_data = text_pages(args.text_pages, args.seed)
        traces[
            f"text fill, {args.text_pages} pages, writes/discards/reads"
            f" churn(seed={args.seed}, ops={args.ops})"
        ] = (text_data, read_churn_trace(args.text_pages, args.seed, args.ops), False)
    sizes = (
        Path(args.sizes)
        if args.sizes
        else (
            REF / "sizes.json"
            if Path(args.pages).resolve() == (REF / "pages.bin.xz").resolve()
            else None
        )
    )
    failures = 0
    for alg in args.alg or ["lz4", "lzo-rle", "lzo"]:
        for name, (pages, lines, sized) in traces.items():
            if alg in COMPRESSORS:
                model, how = alg, f"registered compressor {alg}"
            elif sizes is not None and sized:
                model, how = table_compressor(sizes, alg), f"kernel lengths from {sizes}"
            else:
                print(f"{alg} · {name}: SKIP: {alg} is not registered (and no --sizes)")
                continue
            text, kernel = run_kernel(alg, pages, lines)
            r = replay_pages(
                lines,
                pages,
                frontend="zram",
                compressor=model,
                options={"mode": "block"},
                alloc_options={"chain_size": args.chain_size},
            )
            mm = r["frontend_stats"]["mm_stat"]
            mine = [mm[f] for f in MM_STAT_FIELDS]
            diff = [
                f"{f} kernel {k} model {m}"
                for f, k, m in zip(MM_STAT_FIELDS, kernel, mine, strict=False)
                if k != m
            ]
            verdict = "EQUAL" if not diff else "DIFFERENT: " + "; ".join(diff)
            failures += bool(diff)
            print(f"{alg} · {name} · model: {how}")
            print(f"  kernel mm_stat: {text}")
            print(f"  model  mm_stat: {r['frontend_stats']['lines']['mm_stat']}")
            print(f"  {verdict}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
