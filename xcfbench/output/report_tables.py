"""diff, check and sweep results as rich tables, and the sweep's progress bar.

Colours follow the metric registry through report.Delta.verdict: green is better, red is
worse, yellow a change in a figure that is neither (curr_pages), dim the same.  The
numbers themselves are formatted as in the Markdown format (formats.human/signed), so a
table and its Markdown twin read alike.
"""

from __future__ import annotations

import sys
import time

from rich.console import Console, Group
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)
from rich.table import Table
from rich.text import Text

from xcfbench.output.formats import Summary, human, signed, signed_pct
from xcfbench.results.metrics import METRICS
from xcfbench.results.compare import CheckReport, Comparison, threshold_map

VERDICT_STYLE = {"better": "green", "worse": "bold red", "changed": "yellow", "same": "dim",
                 "n/a": "dim"}


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
            for v, d in zip(r.values[1:], r.deltas[1:]):
                style = VERDICT_STYLE[d.verdict]
                cells += [human(v, m.unit), Text(signed(d.absolute), style=style),
                          Text(signed_pct(d.relative_pct), style=style)]
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
    lines = [Text(f"{len(failures)} of {len(report.outcomes)} checks failed:",
                  style="bold red")]
    lines += [Text(f"  ✗ {o.describe()}", style="red") for o in failures]
    return Group(*lines)


def summary_table(summary: Summary, title: str = "", statuses: list[str] | None = None
                  ) -> Table:
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
        cells = [*map(str, ids), human(curr), human(zv), human(desc), human(eff, "%"),
                 Text(signed(delta), style=colour), human(density, "x"), human(failed)]
        if statuses is not None:
            cells.append(statuses[n])
        t.add_row(*cells)
    return t


class SweepProgress:
    """Runs done, of how many, and the time left, on stderr; nothing when stderr is not a
    terminal or the user asked for quiet.  Started by the first call, which the sweep
    makes only once its worker processes exist."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.progress: Progress | None = None
        self.task = None
        self.started = time.monotonic()

    def __call__(self, done: float, total: int) -> None:
        if not self.enabled:
            return
        if self.progress is None:
            self.progress = Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("runs"), TimeElapsedColumn(),
                                     TextColumn("left"), TimeRemainingColumn(),
                                     console=Console(stderr=True), transient=True)
            self.progress.start()
            self.task = self.progress.add_task("sweep", total=total)
        self.progress.update(self.task, completed=done, total=total)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def __enter__(self) -> SweepProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
