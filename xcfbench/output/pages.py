"""`xcfbench pages`: the summary table, and the JSON Lines and CSV page rows."""

from __future__ import annotations

import csv
import json
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import JustifyMethod


def json_line(obj: dict[str, Any]) -> str:
    return json.dumps(obj, separators=(", ", ": ")) + "\n"


class CsvRows:
    """Page rows as CSV: page, zero, same_filled, then one column per compressor (empty
    where the call failed)."""

    def __init__(self, out: IO[str], names: list[str]) -> None:
        self.names = names
        self.writer = csv.writer(out, lineterminator="\n")
        self.writer.writerow(["page", "zero", "same_filled", *names])

    def write(self, row: dict[str, Any]) -> None:
        self.writer.writerow(
            [
                row["page"],
                int(row["zero"]),
                int(row["same_filled"]),
                *("" if row[n] is None else row[n] for n in self.names),
            ]
        )


def summary_table(summary: dict[str, Any], title: str):
    from rich.table import Table

    huge = summary["huge_class_size"]
    t = Table(
        title=title,
        caption=(
            f"{summary['pages']} pages; zero {summary['zero']} ({_pct(summary['zero_pct'])});"
            f" same-filled (zero included) {summary['same_filled']}"
            f" ({_pct(summary['same_filled_pct'])}); huge: >= huge_class_size {huge}"
            f" (zsmalloc, chain {summary['chain_size']}); sizes as the {summary['call']} call makes"
            " them"
        ),
    )
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("compressor", "left"),
        ("mean size", "right"),
        ("ratio", "right"),
        ("huge", "right"),
        ("zswap rejects", "right"),
        ("median", "right"),
        ("90th pct", "right"),
    )
    for col, just in columns:
        t.add_column(col, justify=just)
    for c in summary["compressors"]:
        t.add_row(
            c["compressor"],
            _num(c["mean_size"], 1),
            _num(c["ratio"], 3),
            _pct(c["huge_pct"]),
            _pct(c["zswap_rejected_pct"]),
            _quantile(c["histogram"], 0.5, summary["histogram_bucket"]),
            _quantile(c["histogram"], 0.9, summary["histogram_bucket"]),
        )
    return t


def _quantile(hist: list[int], q: float, bucket: int) -> str:
    """The 32-byte bucket holding the q-quantile of the sizes, as 'lo-hi'."""
    total = sum(hist)
    if not total:
        return "-"
    seen = 0
    for i, n in enumerate(hist):
        seen += n
        if seen >= q * total:
            return f"{i * bucket}-{i * bucket + bucket - 1}"
    return "-"


def _num(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"
