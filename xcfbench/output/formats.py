"""Result documents and comparisons as CSV (for machines) and Markdown (for people).

CSV: one row per result, every scalar the result carries.  The columns are, in order:
the case (allocator and fill, or trace and allocator; for reproduce the letter's case
and its published figures), the config fields that vary between the results (a sweep's
axes), every registry metric (metrics.py order), the remaining scalar fields sorted by
name, then the scalars of nested objects as "rejects.compress_poor",
"provenance.corpus_sha256", ....  Lists (samples, histograms, class tables) are left to
the JSON.  Numbers are written as Python prints them, so a CSV round-trips exactly; an
absent value is an empty cell.

Markdown: what the rich tables show, as GitHub-flavoured tables, with floats to two
decimals.  A comparison is one table, reference first, then each other file's value,
difference, relative difference and verdict; warnings and failed thresholds follow it.

Everything here is a pure function of its input: the same document gives the same bytes.
Plain Python: no click, no rich.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from xcfbench.errors import InputError
from xcfbench.output.values import (
    OPTIONAL_FIGURES,
    REPLAY_FIGURES,
    RUN_FIGURES,
    cell,
    human,
    signed,
    signed_pct,
)
from xcfbench.results.compare import (
    DERIVED_FIELDS,
    CheckReport,
    Comparison,
    Entry,
    Source,
    case_fields,
    field_name,
    field_value,
    source_of,
    threshold_map,
)
from xcfbench.results.metrics import METRICS, metric_value
from xcfbench.sim.config import format_size

_NESTED = ("rejects", "allocator_stats", "provenance")


def render_document(doc: dict[str, Any], fmt: str) -> str:
    """A result document (any kind) as 'csv' or 'markdown' text."""
    source = source_of(doc)
    if fmt == "csv":
        return _csv(*document_rows(doc, source))
    if fmt == "markdown":
        return document_markdown(doc, source)
    raise InputError(f"unknown format {fmt!r}: choose from csv, markdown")


def _csv(header: list[str], rows: Iterable[list[Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for row in rows:
        w.writerow([cell(v) for v in row])
    return buf.getvalue()


def _md_cell(text: Any) -> str:
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _md_table(header: list[str], rows: Iterable[list[Any]], align: list[str]) -> str:
    marks = {"l": "---", "r": "---:", "c": ":---:"}
    lines = [
        "| " + " | ".join(_md_cell(h) for h in header) + " |",
        "|" + "|".join(marks[a] for a in align) + "|",
    ]
    for row in rows:
        lines.append("| " + " | ".join(_md_cell(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


# -- documents as CSV -------------------------------------------------------------------------


def document_rows(doc: dict[str, Any], source: Source) -> tuple[list[str], list[list[Any]]]:
    entries = source.entries
    family = source.family
    fields = case_fields(entries, family)
    varying = [f for f in fields if f not in ("alloc", "fill", "trace") + DERIVED_FIELDS]
    ident = (
        ["trace", "allocator", "arch"]
        if family == "replay"
        else ["allocator", "fill", "arch", "compressor"]
    )
    varying = [f for f in varying if f not in ident]
    results = [e.result for e in entries]

    # A top-level metric counts when its key is there (null or not); a front-end counter
    # when the front end reported it.
    metrics = [
        m
        for m in METRICS
        if any(m in r if "." not in m else metric_value(r, m) is not None for r in results)
    ]
    taken = set(ident) | set(metrics) | set(_NESTED)
    scalars = sorted(
        {
            k
            for r in results
            for k, v in r.items()
            if k not in taken and not isinstance(v, (dict, list))
        }
    )
    nested = sorted(
        {
            (outer, k)
            for r in results
            for outer in _NESTED
            for k, v in (r.get(outer) or {}).items()
            if not isinstance(v, (dict, list)) and k not in r
        }
    )

    header: list[str] = []
    pre: list[list[Any]] = [[] for _ in entries]
    if doc.get("kind") == "reproduce":
        published = sorted({k for row in doc["results"] for k in row.get("published", {})})
        header += ["case"] + [f"published.{k}" for k in published]
        for out, row in zip(pre, doc["results"], strict=False):
            out += [row.get("case")] + [row.get("published", {}).get(k) for k in published]
    header += ident + varying + metrics + scalars + [f"{o}.{k}" for o, k in nested]
    rows = []
    for out, e in zip(pre, entries, strict=False):
        r = e.result
        rows.append(
            out
            + [r.get(f) for f in ident]
            + [e.config.get(f) for f in varying]
            + [metric_value(r, m) for m in metrics]
            + [r.get(k) for k in scalars]
            + [(r.get(o) or {}).get(k) for o, k in nested]
        )
    return header, rows


# -- documents as Markdown --------------------------------------------------------------------


def document_markdown(doc: dict[str, Any], source: Source) -> str:
    kind = doc.get("kind")
    if kind == "run":
        return _run_markdown(source.entries[0])
    if kind == "replay":
        return _replay_markdown(source.entries[0])
    if kind == "reproduce":
        return _reproduce_markdown(doc)
    return _summary_markdown(source.entries, doc)


def _setup_line(config: dict[str, Any]) -> str:
    """What a reader needs to reproduce the table: sizes, seed, library, corpus."""
    parts = []
    for name, show in (("size_bytes", "size"), ("limit_bytes", "limit")):
        if isinstance(config.get(name), int):
            parts.append(f"{show} {format_size(config[name])}")
    for name in ("seed", "compressor_version", "corpus_sha256"):
        if config.get(name) is not None:
            value = config[name]
            parts.append(f"{name} `{value}`" if isinstance(value, str) else f"{name} {value}")
    return " · ".join(parts)


def _run_markdown(e: Entry) -> str:
    r = e.result
    title = f"### {r['allocator']} · {r.get('fill')} · {r.get('arch')} · {r.get('compressor')}"
    rows = []
    for name in RUN_FIGURES:
        value = r.get(name)
        if value is None and name in OPTIONAL_FIGURES:
            continue
        m = METRICS[name]
        rows.append([name, human(value, m.unit), m.unit, m.help])
    for reason, count in sorted((r.get("rejects") or {}).items()):
        if count:
            rows.append([f"rejected: {reason}", str(count), "pages", "failed puts for this reason"])
    if r.get("verified"):
        rows.append(
            [
                "verify_errors",
                human(r.get("verify_errors")),
                "pages",
                "stored pages that did not read back and decompress intact",
            ]
        )
    table = _md_table(["figure", "value", "unit", "meaning"], rows, ["l", "r", "l", "l"])
    return f"{title}\n\n{_setup_line(e.config)}\n\n{table}"


def _replay_markdown(e: Entry) -> str:
    r = e.result
    title = f"### replay {r.get('trace')} · {r['allocator']} · {r.get('arch')}"
    rows = []
    for name in REPLAY_FIGURES:
        if r.get(name) is None:
            continue
        m = METRICS[name]
        rows.append([name, human(r[name], m.unit), m.unit, m.help])
    rows.append(
        ["ops", str(r.get("ops")), "count", f"{r.get('allocs')} allocs, {r.get('frees')} frees"]
    )
    if r.get("verified"):
        rows.append(
            [
                "verify_errors",
                human(r.get("verify_errors")),
                "count",
                "objects that did not read back as written",
            ]
        )
    return f"{title}\n\n" + _md_table(
        ["figure", "value", "unit", "meaning"], rows, ["l", "r", "l", "l"]
    )


def _reproduce_markdown(doc: dict[str, Any]) -> str:
    rows = []
    for item in doc["results"]:
        first = True
        for figure, published, measured, diff in item["figures"]:
            rows.append(
                [
                    item["case"] if first else "",
                    figure,
                    published,
                    measured,
                    diff,
                    item.get("why", "") if first else "",
                ]
            )
            first = False
    head = "### The xcfmalloc v2 cover letter (2011), published vs measured"
    table = _md_table(
        ["case", "figure", "published", "measured", "difference", "why it differs"],
        rows,
        ["l", "l", "r", "r", "r", "l"],
    )
    return f"{head}\n\n{_setup_line(doc['config'])}\n\n{table}"


_OPTION_FIELDS = ("alloc_options", "frontend_options")
_NO_OPTION = object()


def _option_cell(value: Any) -> str:
    return "-" if value is _NO_OPTION else field_value("", value)


@dataclass(frozen=True)
class Summary:
    """The letter's table for any set of runs: one row per run, raw values."""

    header: tuple[str, ...]  # the case, the fields a sweep varies, then 7 figures
    rows: tuple[tuple[Any, ...], ...]


def summary(entries: tuple[Entry, ...] | list[Entry]) -> Summary:
    """Δ points: effective compression against the first run that differs only in the
    allocator and its options (the letter compares allocators on the same fill)."""
    entries = list(entries)
    fields = case_fields(entries, "run")
    extra = [f for f in fields if f not in ("alloc", "fill") + DERIVED_FIELDS]
    others = tuple(f for f in fields if f not in ("alloc", "alloc_options"))
    # Option dicts (alloc_options, frontend_options) that vary show as one column per
    # option that varies (chain_size, mode, ...), "-" where a run has no such option.
    columns: list[tuple[str, str | None]] = []
    for f in extra:
        if f in _OPTION_FIELDS:
            keys = sorted({k for e in entries for k in (e.config.get(f) or {})})
            columns += [
                (f, k)
                for k in keys
                if len({repr((e.config.get(f) or {}).get(k)) for e in entries}) > 1
            ]
        else:
            columns.append((f, None))
    base: dict[tuple[str, ...], Entry] = {}
    rows = []
    for e in entries:
        b = base.setdefault(tuple(repr(e.config.get(f)) for f in others), e)
        r, rb = e.result, b.result
        delta = None
        if b is not e and None not in (
            r.get("effective_compression_pct"),
            rb.get("effective_compression_pct"),
        ):
            delta = round(r["effective_compression_pct"] - rb["effective_compression_pct"], 6)
        values = [
            field_value(f, e.config.get(f))
            if k is None
            else _option_cell((e.config.get(f) or {}).get(k, _NO_OPTION))
            for f, k in columns
        ]
        rows.append(
            (
                r["allocator"],
                r.get("fill"),
                *values,
                r.get("curr_pages"),
                r.get("zv_page_count"),
                r.get("zv_desc_count"),
                r.get("effective_compression_pct"),
                delta,
                r.get("stored_per_pool"),
                r.get("failed_puts"),
            )
        )
    header = (
        "allocator",
        "fill",
        *(field_name(f) if k is None else k for f, k in columns),
        "curr_pages",
        "zv_page_count",
        "zv_desc_count",
        "effective",
        "Δ points",
        "stored/pool",
        "failed puts",
    )
    return Summary(header, tuple(rows))


def _summary_markdown(entries: tuple[Entry, ...], doc: dict[str, Any]) -> str:
    s = summary(entries)
    n_extra = len(s.header) - 9
    rows = []
    for row in s.rows:
        (*ids, curr, zv, desc, eff, delta, density, failed) = row
        rows.append(
            [
                *ids,
                human(curr),
                human(zv),
                human(desc),
                human(eff, "%"),
                signed(delta),
                human(density, "x"),
                human(failed),
            ]
        )
    table = _md_table(list(s.header), rows, ["l", "l"] + ["l"] * n_extra + ["r"] * 7)
    config = doc.get("config", {})
    if doc.get("kind") == "sweep":
        axes = config.get("axes", {})
        setup = " · ".join(f"{k}: {', '.join(map(str, v))}" for k, v in axes.items())
    else:
        setup = _setup_line(config)
    return f"{setup}\n\n{table}" if setup else table


# -- comparisons ------------------------------------------------------------------------------


def comparison_csv(cmp: Comparison, report: CheckReport | None = None) -> str:
    header = ["case", "metric", "unit", "better", f"value:{cmp.sources[0]}"]
    for path in cmp.sources[1:]:
        header += [f"value:{path}", f"delta:{path}", f"delta_pct:{path}", f"verdict:{path}"]
    gates = threshold_map(report) if report else {}
    if report:
        header += ["thresholds", "failed"]
    rows = []
    for case in cmp.cases:
        if report and case.labels[0] is not None and case.labels[1] is None:
            rows.append([case.label, "", "", "", "", "", "", "", "", "case present", True])
        for r in case.rows:
            m = METRICS[r.metric]
            row: list[Any] = [case.label, r.metric, m.unit, m.better, r.values[0]]
            for v, d in zip(r.values[1:], r.deltas[1:], strict=False):
                assert d is not None  # only the reference, deltas[0], has no delta
                row += [v, d.absolute, d.relative_pct, d.verdict]
            if report:
                outcomes = gates.get((case.label, r.metric), [])
                row += [
                    ";".join(o.threshold.describe() for o in outcomes if o.threshold is not None),
                    any(o.failed for o in outcomes) if outcomes else None,
                ]
            rows.append(row)
    return _csv(header, rows)


def comparison_markdown(cmp: Comparison, report: CheckReport | None = None) -> str:
    many = len(cmp.cases) > 1
    names = list(cmp.sources)
    header = (["case"] if many else []) + ["metric", names[0]]
    align = (["l"] if many else []) + ["l", "r"]
    for name in names[1:]:
        header += [name, "Δ", "Δ %", "verdict"]
        align += ["r", "r", "r", "l"]
    gates = threshold_map(report) if report else {}
    if report:
        header.append("gate")
        align.append("l")
    rows = []
    for case in cmp.cases:
        first = True
        for r in case.rows:
            m = METRICS[r.metric]
            row: list[Any] = [case.label if first else ""] if many else []
            row += [r.metric, human(r.values[0], m.unit)]
            for v, d in zip(r.values[1:], r.deltas[1:], strict=False):
                assert d is not None  # only the reference, deltas[0], has no delta
                verdict = f"**{d.verdict}**" if d.verdict == "worse" else d.verdict
                row += [human(v, m.unit), signed(d.absolute), signed_pct(d.relative_pct), verdict]
            if report:
                outcomes = gates.get((case.label, r.metric), [])
                row.append(
                    ""
                    if not outcomes
                    else ("**FAIL**" if any(o.failed for o in outcomes) else "ok")
                )
            rows.append(row)
            first = False
    parts = [f"Reference: `{names[0]}`\n", _md_table(header, rows, align)]
    if cmp.warnings:
        parts.append("\n".join(f"> **warning:** {w}" for w in cmp.warnings) + "\n")
    if report:
        parts.append(check_verdict_markdown(report))
    return "\n".join(parts)


def check_verdict_markdown(report: CheckReport) -> str:
    failures = report.failures
    if not failures:
        return f"**All {len(report.outcomes)} checks passed.**\n"
    lines = [f"**{len(failures)} of {len(report.outcomes)} checks failed:**", ""]
    lines += [f"- {_md_cell(o.describe())}" for o in failures]
    return "\n".join(lines) + "\n"


def render_comparison(cmp: Comparison, fmt: str, report: CheckReport | None = None) -> str:
    if fmt == "csv":
        return comparison_csv(cmp, report)
    if fmt == "markdown":
        return comparison_markdown(cmp, report)
    raise InputError(f"unknown format {fmt!r}: choose from csv, markdown")
