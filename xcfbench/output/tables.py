"""Results to rich tables (and progress on stderr).  Reads results; computes nothing new
beyond differences between them."""

from __future__ import annotations

import sys
import time
from typing import Any, Iterable

from rich import box
from rich.console import Console, Group, RenderableType
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from xcfbench.results.metrics import METRICS
from xcfbench.sim.records import ReplayResult, RunResult


def fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def signed(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:+.{digits}f}"


def run_table(result: RunResult) -> Table:
    t = Table(title=f"{result.allocator} · {result.fill} · {result.arch} · {result.compressor}",
              title_justify="left")
    t.add_column("figure")
    t.add_column("value", justify="right")
    t.add_column("meaning", style="dim")
    rows = [
        ("curr_pages", result.curr_pages),
        ("zv_page_count", result.zv_page_count),
        ("zv_desc_count", result.zv_desc_count),
        ("effective_compression_pct", result.effective_compression_pct),
        ("stored_per_pool", result.stored_per_pool),
        ("effective_compression_pages_only_pct", result.effective_compression_pages_only_pct),
        ("mean_compressed_pct", result.mean_compressed_pct),
        ("pages_held", result.pages_held),
        ("peak_pool_pages", result.peak_pool_pages),
        ("metadata_bytes", result.metadata_bytes),
        ("succ_puts", result.succ_puts),
        ("failed_puts", result.failed_puts),
    ]
    if result.pool_pages_after_compact is not None:
        rows += [("pool_pages_after_compact", result.pool_pages_after_compact),
                 ("pages_compacted", result.pages_compacted)]
    for name, value in rows:
        if name == "zv_desc_count" and value is None:
            continue
        m = METRICS[name]
        shown = f"{fmt(value)} %" if m.unit == "%" else (
            f"{fmt(value)} ×" if m.unit == "x" else fmt(value))
        t.add_row(name, shown, m.help)
    for reason, count in result.rejects.items():
        if count:
            t.add_row(f"  rejected: {reason}", str(count), "failed puts for this reason")
    if result.verified:
        t.add_row("verify_errors", str(result.verify_errors),
                  "stored pages that did not read back and decompress intact")
    return t


def compare_table(results: list[RunResult], title: str = "") -> Table:
    """The letter's table: one row per allocator × fill, deltas against the first
    allocator on the same fill, in percentage points (lower is better)."""
    t = Table(title=title or None, title_justify="left")
    for name, justify in (("allocator", "left"), ("fill", "left"), ("curr_pages", "right"),
                          ("zv_page_count", "right"), ("zv_desc_count", "right"),
                          ("effective", "right"), ("Δ points", "right"),
                          ("stored/pool", "right"), ("failed puts", "right")):
        t.add_column(name, justify=justify, no_wrap=True)
    base: dict[str, RunResult] = {}
    for r in results:
        base.setdefault(r.fill, r)
    for r in results:
        b = base[r.fill]
        delta = None
        if r is not b and None not in (r.effective_compression_pct, b.effective_compression_pct):
            delta = r.effective_compression_pct - b.effective_compression_pct
        t.add_row(r.allocator, r.fill, str(r.curr_pages), str(r.zv_page_count),
                  fmt(r.zv_desc_count), f"{fmt(r.effective_compression_pct)}%",
                  _coloured_delta(delta), f"{fmt(r.stored_per_pool)}×", str(r.failed_puts))
    return t


def _coloured_delta(delta: float | None) -> str:
    if delta is None:
        return "—"
    colour = "green" if delta < 0 else ("red" if delta > 0 else "white")
    return f"[{colour}]{delta:+.2f}[/]"


def reproduce_table(rows: Iterable[dict[str, Any]], note: str = "") -> Table:
    t = Table(title="The xcfmalloc v2 cover letter (2011), published vs measured",
              title_justify="left", caption=note or None, caption_justify="left")
    for name, justify in (("case", "left"), ("figure", "left"), ("published", "right"),
                          ("measured", "right"), ("difference", "right")):
        t.add_column(name, justify=justify, no_wrap=True)
    t.add_column("why it differs", ratio=1)
    for row in rows:
        last = len(row["figures"]) - 1
        for n, (figure, pub, got, diff) in enumerate(row["figures"]):
            t.add_row(row["case"] if n == 0 else "", figure, pub, got, diff,
                      row["why"] if n == 0 else "", end_section=n == last)
    return t


def replay_table(r: ReplayResult) -> Table:
    t = Table(title=f"replay {r.trace} · {r.allocator} · {r.arch}", title_justify="left")
    t.add_column("figure")
    t.add_column("value", justify="right")
    t.add_column("meaning", style="dim")
    d = r.to_dict()
    names = ["pool_pages", "peak_pool_pages", "pages_held", "failed_allocs", "frees_of_failed",
             "live_objects", "live_bytes", "desc_count", "pool_pages_after_compact",
             "pages_compacted"]
    for name in names:
        if d.get(name) is None:
            continue
        m = METRICS.get(name)
        t.add_row(name, str(d[name]), m.help if m else "")
    t.add_row("ops", str(r.ops), f"{r.allocs} allocs, {r.frees} frees")
    if r.verified:
        t.add_row("verify_errors", str(r.verify_errors),
                  "objects that did not read back as written")
    return t


def classes_table(rows: list[dict[str, Any]]) -> Table:
    """zsmalloc's debugfs `classes` file as a table: one row per class with zspages."""
    t = Table(title="size classes (debugfs zsmalloc/<pool>/classes)", title_justify="left",
              box=box.SIMPLE_HEAD, padding=(0, 1))
    columns = [c for c in rows[0] if c != "objs_per_zspage"] if rows else ["class", "size"]
    for name in columns:
        t.add_column(name, justify="right", no_wrap=True)
    for row in rows:
        t.add_row(*(str(row.get(c, "")) for c in columns))
    return t


def with_classes(table: Table, stats: dict[str, Any], wanted: bool) -> RenderableType:
    if not wanted:
        return table
    return Group(table, classes_table(stats.get("classes", [])))


def zramctl_table(stats: dict[str, Any]) -> Table:
    """zramctl's columns for the device: DATA COMPR TOTAL ZERO-PAGES ALGORITHM (bytes, as
    `zramctl --bytes` prints them)."""
    z = stats["zramctl"]
    t = Table(title="zramctl --bytes", title_justify="left", box=box.SIMPLE_HEAD)
    cols = ("ALGORITHM", "DATA", "COMPR", "TOTAL", "ZERO-PAGES")
    for c in cols:
        t.add_column(c, justify="left" if c == "ALGORITHM" else "right")
    t.add_row(*(str(z[c]) for c in cols))
    return t


def frontend_table(stats: dict[str, Any], title: str = "") -> RenderableType | None:
    """A zram's or zswap's counters under the kernel's file names; zram's mm_stat, io_stat,
    bd_stat and debug_stat lines exactly as sysfs prints them.  None for other front ends."""
    parts: list[RenderableType] = []
    if "mm_stat" in stats:
        t = Table(title=title or "zram (/sys/block/zramN)", title_justify="left",
                  box=box.SIMPLE_HEAD)
        t.add_column("file")
        t.add_column("contents", no_wrap=True)
        for name, line in stats["lines"].items():
            t.add_row(name, line.replace("\n", " / "))
        parts += [t, zramctl_table(stats)]
    elif "zswap" in stats:
        t = Table(title=title or "zswap", title_justify="left", box=box.SIMPLE_HEAD)
        t.add_column("counter")
        t.add_column("value", justify="right")
        for group in ("zswap", "memory.stat", "vmstat"):
            for name, value in stats[group].items():
                t.add_row(f"{group}.{name}" if group != "zswap" else f"debugfs zswap/{name}",
                          str(value))
        parts.append(t)
    else:
        return None
    memcg = stats.get("memcg")
    if memcg and memcg.get("reclaim_stalls"):
        parts.append(f"[bold red]reclaim could not make room {memcg['reclaim_stalls']} times:"
                     " writes kept failing and the cgroup stayed over its limit (the kernel"
                     " would OOM)[/]")
    return Group(*parts)


def with_frontend(table: RenderableType, stats: dict[str, Any]) -> RenderableType:
    extra = frontend_table(stats)
    return table if extra is None else Group(table, extra)


def listing(sections: dict[str, list[tuple[str, str]]]) -> Table:
    t = Table(show_header=False, box=None, pad_edge=False)
    t.add_column(style="bold")
    t.add_column()
    for section, items in sections.items():
        t.add_row(f"[underline]{section}[/]", "")
        for name, summary in items:
            t.add_row(f"  {name}", summary)
    return t


class ProgressBar:
    """A progress bar on stderr that appears only once a task has run for a second, and
    never when stderr is not a terminal or the user asked for quiet."""

    def __init__(self, description: str, enabled: bool = True, delay_s: float = 1.0) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.description = description
        self.delay_s = delay_s
        self.started = time.monotonic()
        self.progress: Progress | None = None
        self.task = None

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self.progress is None:
            if time.monotonic() - self.started < self.delay_s:
                return
            self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                     TextColumn("{task.percentage:>3.0f}%"),
                                     TimeRemainingColumn(), console=Console(stderr=True),
                                     transient=True)
            self.progress.start()
            self.task = self.progress.add_task(self.description, total=total)
        self.progress.update(self.task, completed=done, total=total)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
