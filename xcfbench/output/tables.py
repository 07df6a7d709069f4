"""Results as rich tables, and progress on stderr.

Reads results and computes nothing new: differences come from results.compare, the
letter's summary from output.formats.summary.  Colours follow the metric registry through
Delta.verdict: green is better, red is worse, yellow a change in a figure that is neither
(curr_pages), dim the same.  Values are formatted by output.values, as in every format.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from typing import Any, cast

from rich import box
from rich.console import Console, Group, JustifyMethod, RenderableType
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from xcfbench.output.formats import Summary
from xcfbench.output.values import (
    OPTIONAL_FIGURES,
    REPLAY_FIGURES,
    RUN_FIGURES,
    human,
    signed,
    signed_pct,
)
from xcfbench.results.compare import CheckReport, Comparison, threshold_map
from xcfbench.results.metrics import METRICS
from xcfbench.sim.records import ReplayResult, RunResult


def _figure_rows(t: Table, result: dict[str, Any], names: Iterable[str]) -> None:
    for name in names:
        value = result.get(name)
        if value is None and name in OPTIONAL_FIGURES:
            continue
        m = METRICS[name]
        t.add_row(name, human(value, m.unit), m.help)


def run_table(result: RunResult) -> Table:
    t = Table(
        title=f"{result.allocator} · {result.fill} · {result.arch} · {result.compressor}",
        title_justify="left",
    )
    t.add_column("figure")
    t.add_column("value", justify="right")
    t.add_column("meaning", style="dim")
    _figure_rows(t, result.to_dict(), RUN_FIGURES)
    for reason, count in result.rejects.items():
        if count:
            t.add_row(f"  rejected: {reason}", str(count), "failed puts for this reason")
    if result.verified:
        t.add_row(
            "verify_errors",
            str(result.verify_errors),
            "stored pages that did not read back and decompress intact",
        )
    return t


VERDICT_STYLE = {
    "better": "green",
    "worse": "bold red",
    "changed": "yellow",
    "same": "dim",
    "n/a": "dim",
}


def comparison_table(cmp: Comparison, report: CheckReport | None = None) -> Table:
    many = len(cmp.cases) > 1
    t = Table(title=f"reference: {cmp.sources[0]}", title_justify="left")
    if many:
        t.add_column("case")
    t.add_column("metric")
    t.add_column(cmp.sources[0], justify="right")
    for path in cmp.sources[1:]:
        t.add_column(path, justify="right")
        t.add_column("Δ", justify="right")
        t.add_column("Δ %", justify="right")
    gates = threshold_map(report) if report else {}
    if report:
        t.add_column("gate")
    for case in cmp.cases:
        first = True
        for r in case.rows:
            m = METRICS[r.metric]
            cells: list = [case.label if first else ""] if many else []
            cells += [r.metric, human(r.values[0], m.unit)]
            for v, d in zip(r.values[1:], r.deltas[1:], strict=False):
                assert d is not None  # only the reference, deltas[0], has no delta
                style = VERDICT_STYLE[d.verdict]
                cells += [
                    human(v, m.unit),
                    Text(signed(d.absolute), style=style),
                    Text(signed_pct(d.relative_pct), style=style),
                ]
            if report:
                outcomes = gates.get((case.label, r.metric), [])
                if not outcomes:
                    cells.append("")
                elif any(o.failed for o in outcomes):
                    cells.append(Text("FAIL", style="bold red"))
                else:
                    cells.append(Text("ok", style="green"))
            t.add_row(*cells)
            first = False
        if many:
            t.add_section()
    return t


def check_verdict(report: CheckReport):
    failures = report.failures
    if not failures:
        return Text(f"All {len(report.outcomes)} checks passed.", style="bold green")
    lines = [Text(f"{len(failures)} of {len(report.outcomes)} checks failed:", style="bold red")]
    lines += [Text(f"  ✗ {o.describe()}", style="red") for o in failures]
    return Group(*lines)


def summary_table(summary: Summary, title: str = "", statuses: list[str] | None = None) -> Table:
    """The letter's table over a sweep's runs, Δ points coloured (lower is better)."""
    t = Table(title=title or None, title_justify="left")
    n_ids = len(summary.header) - 7
    for i, name in enumerate(summary.header):
        t.add_column(name, justify="left" if i < n_ids else "right")
    if statuses is not None:
        t.add_column("run", style="dim")
    for n, row in enumerate(summary.rows):
        (*ids, curr, zv, desc, eff, delta, density, failed) = row
        colour = "dim" if delta is None or delta == 0 else ("green" if delta < 0 else "red")
        cells: list[RenderableType] = [
            *map(str, ids),
            human(curr),
            human(zv),
            human(desc),
            human(eff, "%"),
            Text(signed(delta), style=colour),
            human(density, "x"),
            human(failed),
        ]
        if statuses is not None:
            cells.append(statuses[n])
        t.add_row(*cells)
    return t


def reproduce_table(rows: Iterable[dict[str, Any]], note: str = "") -> Table:
    t = Table(
        title="The xcfmalloc v2 cover letter (2011), published vs measured",
        title_justify="left",
        caption=note or None,
        caption_justify="left",
    )
    for name, justify in (
        ("case", "left"),
        ("figure", "left"),
        ("published", "right"),
        ("measured", "right"),
        ("difference", "right"),
    ):
        t.add_column(name, justify=cast("JustifyMethod", justify), no_wrap=True)  # left/right
    t.add_column("why it differs", ratio=1)
    for row in rows:
        last = len(row["figures"]) - 1
        for n, (figure, pub, got, diff) in enumerate(row["figures"]):
            t.add_row(
                row["case"] if n == 0 else "",
                figure,
                pub,
                got,
                diff,
                row["why"] if n == 0 else "",
                end_section=n == last,
            )
    return t


def replay_table(r: ReplayResult) -> Table:
    t = Table(title=f"replay {r.trace} · {r.allocator} · {r.arch}", title_justify="left")
    t.add_column("figure")
    t.add_column("value", justify="right")
    t.add_column("meaning", style="dim")
    _figure_rows(t, r.to_dict(), REPLAY_FIGURES)
    t.add_row("ops", str(r.ops), f"{r.allocs} allocs, {r.frees} frees")
    if r.verified:
        t.add_row(
            "verify_errors", str(r.verify_errors), "objects that did not read back as written"
        )
    return t


def classes_table(rows: list[dict[str, Any]]) -> Table:
    """zsmalloc's debugfs `classes` file as a table: one row per class with zspages."""
    t = Table(
        title="size classes (debugfs zsmalloc/<pool>/classes)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        padding=(0, 1),
    )
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
        t = Table(
            title=title or "zram (/sys/block/zramN)", title_justify="left", box=box.SIMPLE_HEAD
        )
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
                t.add_row(
                    f"{group}.{name}" if group != "zswap" else f"debugfs zswap/{name}", str(value)
                )
        parts.append(t)
    else:
        return None
    memcg = stats.get("memcg")
    if memcg and memcg.get("reclaim_stalls"):
        parts.append(
            f"[bold red]reclaim could not make room {memcg['reclaim_stalls']} times:"
            " writes kept failing and the cgroup stayed over its limit (the kernel"
            " would OOM)[/]"
        )
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
    """A progress bar on stderr that appears only once a task has run for delay_s, and
    never when stderr is not a terminal or the user asked for quiet.  With runs=True it
    counts runs (done of total, elapsed and left), as a sweep shows them."""

    def __init__(
        self, description: str, enabled: bool = True, delay_s: float = 1.0, runs: bool = False
    ) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.description = description
        self.delay_s = delay_s
        self.runs = runs
        self.started = time.monotonic()
        self.progress: Progress | None = None
        self.task: TaskID | None = None

    def __call__(self, done: float, total: int) -> None:
        if not self.enabled:
            return
        if self.progress is None:
            if time.monotonic() - self.started < self.delay_s:
                return
            columns: list[ProgressColumn] = [TextColumn("{task.description}"), BarColumn()]
            if self.runs:
                columns += [
                    MofNCompleteColumn(),
                    TextColumn("runs"),
                    TimeElapsedColumn(),
                    TextColumn("left"),
                ]
            else:
                columns += [TextColumn("{task.percentage:>3.0f}%")]
            columns.append(TimeRemainingColumn())
            self.progress = Progress(*columns, console=Console(stderr=True), transient=True)
            self.progress.start()
            self.task = self.progress.add_task(self.description, total=total)
        assert self.task is not None
        self.progress.update(self.task, completed=done, total=total)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
