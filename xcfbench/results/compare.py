"""Comparing result documents: `xcfbench diff` and the regression gate `xcfbench check`.

What is read
------------
Every result file is turned into a Source: a list of Entries, each one result with the
configuration that produced it.

    run       one RunResult                  config = the document's config
    compare   a list of RunResults           config = the shared config, with this result's
    reproduce a list of {measured: ...}                allocator and fill put back in
    sweep     a list of run documents        config = each run's own
    *.jsonl   one run document a line        (the file `xcfbench sweep` appends to)
    replay    one ReplayResult               config = the document's config
    bench     a list of figures              config = the document's config, with the
                                                       figure's case put in (`make bench`)

Run results, replay results and bench figures measure different things and are never
mixed.

How results are paired
----------------------
The first file is the reference.  When every file holds one result of the same case
(allocator and fill, or trace and allocator) they are paired; results of different cases
are paired in order only with pair_any (`--pair-any`: that is how two allocators are
compared), and refused without it, so a gate never holds a run to another fill's numbers.
Otherwise a result is
known by its case: the allocator and the fill (the trace, for replays) and every other
configuration field that varies within one of the files (a sweep's axes).  A case missing from
a file shows as an empty column; for `check`, a baseline case missing from the current
file fails the gate.

What is compared
----------------
Every metric of the registry (metrics.py) that some file reports, in registry order, with
the absolute difference and the relative one (in % of the reference).  The registry says
which way is better, so each difference is "better", "worse", "same", or "changed" for a
figure that is neither (curr_pages).  Configurations that differ in anything but the case
fields produce warnings naming the field: arch, compressor_version and corpus_sha256
first, since those silently change every number.

Thresholds
----------
`METRIC:+N%` fails when METRIC grows by more than N % of the baseline, `METRIC:+X` when it
grows by more than X; a minus sign guards a fall instead.  Page counts of a seeded run are
exact integers, so every exact page-count metric where lower is better gets the default
threshold `METRIC:+0` (any increase), unless a --fail-on guards a rise of that metric (a
guard on a fall leaves the default in place).  A noisy metric (a timing: metrics.py gives
it a tolerance_pct) is never held to "any increase": its default threshold is a move the
wrong way by more than its tolerance (`seconds:+25%`, `ops_per_s:-25%`), replaced by a
--fail-on that guards the same direction.  A metric a threshold applies to that is not
a finite number (a string, NaN, Infinity, a boolean, or null on one side only: null on
both is a figure neither run has) in the baseline or the current results fails the check,
naming it: a gate never passes on what it cannot compare.

This module is plain Python: no click, no rich.  It raises InputError for bad input.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from xcfbench.errors import InputError
from xcfbench.io import read_input
from xcfbench.results.document import check_document, json_loads, parse_document
from xcfbench.results.metrics import METRICS, Metric, metric_value
from xcfbench.sim.config import format_size

RUN_KINDS = ("run", "compare", "reproduce", "sweep")
KINDS = RUN_KINDS + ("replay", "bench")

# What names a result within its family, before any varying field is added.
CASE_FIELDS = {"run": ("alloc", "fill"), "replay": ("trace", "alloc"), "bench": ("case",)}
FAMILY_NAMES = {"run": "run results", "replay": "replay results", "bench": "bench figures"}

# Config fields that change every number without being part of a case: named first.
WATCHED_FIELDS = ("arch", "compressor", "compressor_version", "corpus_sha256", "tool_version")

# Provenance that follows from other fields (the fill, the compressor): in a case's key,
# but not worth a place in its label.
DERIVED_FIELDS = ("compressor_version", "corpus", "corpus_bytes", "corpus_pages", "corpus_sha256")

# Shorter names for varying fields in case labels.
_LABEL_NAMES = {"size_bytes": "size", "limit_bytes": "limit", "totalram_bytes": "totalram"}


# -- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    config: dict[str, Any]  # the configuration of this one result
    result: dict[str, Any]  # the result's fields, as in the JSON


@dataclass(frozen=True)
class Source:
    path: str
    family: str  # "run" or "replay"
    kind: str  # the document's kind ("jsonl" for a sweep results file)
    tool_version: str | None
    entries: tuple[Entry, ...]


def load_source(path: str) -> Source:
    """Read a result document or a sweep's JSON-lines file; InputError when it is neither."""
    text = read_input(path, "result file")
    first = text.lstrip().split("\n", 1)[0].strip()
    if first.startswith("{") and first.endswith("}") and _is_json_object(first):
        return _load_lines(path, text)
    doc = parse_document(text, path)
    return _source_of(path, doc, doc.get("kind"))


def load_sources(paths: Iterable[str]) -> list[Source]:
    sources = [load_source(p) for p in paths]
    families = {s.family for s in sources}
    if len(families) > 1:
        first = sources[0]
        other = next(s for s in sources if s.family != first.family)
        a, b = (
            (first, other) if (first.family, other.family) != ("replay", "run") else (other, first)
        )
        raise InputError(
            f"cannot compare {FAMILY_NAMES[a.family]} ({a.path})"
            f" with {FAMILY_NAMES[b.family]} ({b.path})"
        )
    return sources


def source_of(doc: Any, name: str = "<document>") -> Source:
    """A document already in memory (a command's own output) as a Source."""
    check_document(doc, name)
    return _source_of(name, doc, doc.get("kind"))


def _is_json_object(line: str) -> bool:
    try:
        return isinstance(json_loads(line, "<line>"), dict)
    except InputError:
        return False


def _load_lines(path: str, text: str) -> Source:
    """One document a line: what `xcfbench sweep` appends, or a one-line document."""
    sources = []
    lines = text.splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            doc = json_loads(line, f"{path!r} line {number}")
        except InputError:
            if number == len(lines) and not text.endswith("\n"):
                break  # a line a running sweep is writing, or one it tore
            raise
        check_document(doc, f"{path!r} line {number}")
        sources.append(_source_of(path, doc, doc.get("kind")))
    if len(sources) == 1:
        return sources[0]
    if len({s.family for s in sources}) > 1:
        raise InputError(f"result file {path!r} mixes run and replay results")
    entries = tuple(e for s in sources for e in s.entries)
    return Source(path, sources[0].family, "jsonl", sources[0].tool_version, entries)


def _source_of(path: str, doc: dict[str, Any], kind: Any) -> Source:
    if kind not in KINDS:
        raise InputError(
            f"result file {path!r} has kind {kind!r}; expected one of {', '.join(KINDS)}"
        )
    config = doc.get("config")
    results: Any = doc.get("results")  # JSON, checked below (_need_result, isinstance)
    if not isinstance(config, dict):
        raise InputError(f"result file {path!r} has no config object")
    if kind == "run":
        _need_result(path, kind, results)
        entries = [
            Entry({**config, "alloc": results["allocator"], "fill": results.get("fill")}, results)
        ]
    elif kind == "replay":
        _need_result(path, kind, results)
        entries = [
            Entry(
                {
                    **config,
                    "alloc": results["allocator"],
                    "trace": results.get("trace", config.get("trace")),
                },
                results,
            )
        ]
    elif kind == "bench":
        if not isinstance(results, list):
            raise InputError(f"result file {path!r}: kind 'bench' needs a list of figures")
        entries = []
        for item in results:
            if not isinstance(item, dict) or not isinstance(item.get("case"), str):
                raise InputError(
                    f"result file {path!r}: kind 'bench' but a figure is not an object with a case"
                )
            entries.append(Entry({**config, "case": item["case"]}, item))
    elif kind == "sweep":
        if not isinstance(results, list):
            raise InputError(f"result file {path!r}: kind 'sweep' needs a list of runs")
        entries = []
        for n, run_doc in enumerate(results):
            check_document(run_doc, f"{path!r} run {n}")
            entries.extend(_source_of(path, run_doc, "run").entries)
    else:
        if not isinstance(results, list):
            raise InputError(f"result file {path!r}: kind {kind!r} needs a list of results")
        entries = []
        # A compare of several front ends, compressors or chain sizes lists each
        # result's own values of them in config "runs".
        runs = config.get("runs")
        if runs is not None and (
            not isinstance(runs, list)
            or len(runs) != len(results)
            or not all(isinstance(r, dict) for r in runs)
        ):
            raise InputError(f"result file {path!r}: config 'runs' does not match its results")
        common = {k: v for k, v in config.items() if k != "runs"}
        for n, item in enumerate(results):
            result: Any = (
                item.get("measured") if kind == "reproduce" and isinstance(item, dict) else item
            )
            _need_result(path, kind, result)
            own = runs[n] if runs is not None else {}
            entries.append(
                Entry(
                    {**common, **own, "alloc": result["allocator"], "fill": result.get("fill")},
                    result,
                )
            )
    family = kind if kind in ("replay", "bench") else "run"
    return Source(path, family, kind, doc.get("tool_version"), tuple(entries))


def _need_result(path: str, kind: str, result: Any) -> None:
    if not isinstance(result, dict) or "allocator" not in result:
        raise InputError(
            f"result file {path!r}: kind {kind!r} but a result is not an object with an allocator"
        )


# -- cases ----------------------------------------------------------------------------------


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def case_fields(entries: Iterable[Entry], family: str) -> tuple[str, ...]:
    """The case fields plus every config field whose value varies among entries."""
    entries = list(entries)
    base = CASE_FIELDS[family]
    names = sorted({k for e in entries for k in e.config} - set(base))
    varying = tuple(k for k in names if len({_canon(e.config.get(k)) for e in entries}) > 1)
    return base + varying


def case_key(entry: Entry, fields: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(_canon(entry.config.get(f)) for f in fields)


def field_value(field: str, value: Any) -> str:
    """A config value as a label shows it: sizes with a suffix, objects as compact JSON."""
    if isinstance(value, int) and not isinstance(value, bool) and field.endswith("_bytes"):
        return format_size(value)
    if isinstance(value, (dict, list)):
        return _canon(value)
    return str(value)


def field_name(field: str) -> str:
    return _LABEL_NAMES.get(field, field)


def case_label(entry: Entry, fields: tuple[str, ...]) -> str:
    parts = []
    for f in fields:
        if f in DERIVED_FIELDS:
            continue
        value = field_value(f, entry.config.get(f))
        named = f in CASE_FIELDS["run"] + CASE_FIELDS["replay"] + CASE_FIELDS["bench"]
        parts.append(value if named else f"{field_name(f)}={value}")
    return " ".join(parts)


def entry_labels(sources: list[Source]) -> list[list[str]]:
    """A short, distinct label for every entry of every source (for legends)."""
    family = sources[0].family
    fields = case_fields([e for s in sources for e in s.entries], family)
    labels = [[case_label(e, fields) for e in s.entries] for s in sources]
    flat = [lab for per in labels for lab in per]
    if len(set(flat)) < len(flat):
        labels = [
            [f"{os.path.basename(s.path)}: {lab}" for lab in per]
            for s, per in zip(sources, labels, strict=True)
        ]
    return labels


# -- comparison -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Delta:
    absolute: int | float | None
    relative_pct: float | None  # of the reference value; None when that is 0 or absent
    verdict: str  # better, worse, same, changed (no better side), n/a


@dataclass(frozen=True)
class MetricRow:
    metric: str
    values: tuple[Any, ...]  # one per source, None where absent
    deltas: tuple[Delta | None, ...]  # one per source; None for the reference


@dataclass(frozen=True)
class Case:
    label: str  # the reference's name for it
    labels: tuple[str | None, ...]  # each source's own label; None where absent
    rows: tuple[MetricRow, ...]
    entries: tuple[Entry | None, ...] = ()  # the paired results, as read

    @property
    def missing(self) -> tuple[int, ...]:
        return tuple(i for i, lab in enumerate(self.labels) if lab is None)


@dataclass(frozen=True)
class Comparison:
    sources: tuple[str, ...]
    cases: tuple[Case, ...]
    warnings: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference": self.sources[0],
            "sources": list(self.sources),
            "warnings": list(self.warnings),
            "cases": [
                {
                    "case": c.label,
                    "labels": list(c.labels),
                    "metrics": [
                        {
                            "metric": r.metric,
                            "unit": METRICS[r.metric].unit,
                            "better": METRICS[r.metric].better,
                            "values": list(r.values),
                            "deltas": [
                                None
                                if d is None
                                else {
                                    "absolute": d.absolute,
                                    "relative_pct": d.relative_pct,
                                    "verdict": d.verdict,
                                }
                                for d in r.deltas
                            ],
                        }
                        for r in c.rows
                    ],
                }
                for c in self.cases
            ],
        }


def _number(value: Any) -> bool:
    """A finite number (not a boolean): what can be differenced and gated."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def difference(metric: Metric, reference: Any, value: Any) -> Delta:
    if not (_number(reference) and _number(value)):
        return Delta(None, None, "n/a")
    absolute = value - reference
    if isinstance(absolute, float):
        absolute = round(absolute, 6)  # results carry 6 decimals; keep the noise out
    if reference:
        relative = round(100.0 * absolute / abs(reference), 6)
    else:
        relative = 0.0 if absolute == 0 else None
    if absolute == 0:
        verdict = "same"
    elif metric.better == "lower":
        verdict = "better" if absolute < 0 else "worse"
    elif metric.better == "higher":
        verdict = "better" if absolute > 0 else "worse"
    else:
        verdict = "changed"
    return Delta(absolute, relative, verdict)


def compare(sources: list[Source], pair_any: bool = False) -> Comparison:
    """Pair the results of every source with the first one's and difference them."""
    if len(sources) < 2:
        raise InputError("a comparison needs at least two result files")
    family = sources[0].family
    if all(len(s.entries) == 1 for s in sources):
        fields: tuple[str, ...] = CASE_FIELDS[family]
        if not pair_any:
            _same_case(sources, fields)
        paired: list[list[Entry | None]] = [[s.entries[0] for s in sources]]
    else:
        # What varies within any one file names a case; what differs only between files
        # is a config difference, warned about below.
        # Provenance (the corpus digest) varies with the fill: it is warned about, never
        # a reason not to pair two results.
        varying = {f for s in sources for f in case_fields(s.entries, family)}
        base = CASE_FIELDS[family]
        fields = base + tuple(sorted(varying - set(base) - set(DERIVED_FIELDS)))
        paired = _pair_by_case(sources, fields)
    cases = []
    for group in paired:
        shown = next(e for e in group if e is not None)
        labels = tuple(None if e is None else case_label(e, fields) for e in group)
        cases.append(Case(case_label(shown, fields), labels, _metric_rows(group), tuple(group)))
    return Comparison(
        tuple(s.path for s in sources),
        tuple(cases),
        tuple(config_warnings(sources, paired, fields)),
    )


def _same_case(sources: list[Source], fields: tuple[str, ...]) -> None:
    ref = sources[0].entries[0]
    for s in sources[1:]:
        if case_key(s.entries[0], fields) != case_key(ref, fields):
            raise InputError(
                f"{sources[0].path} ({case_label(ref, fields)}) and {s.path}"
                f" ({case_label(s.entries[0], fields)}) are results of different cases;"
                " pass --pair-any to compare them anyway"
            )


def _pair_by_case(sources: list[Source], fields: tuple[str, ...]) -> list[list[Entry | None]]:
    order: list[tuple[str, ...]] = []
    index: list[dict[tuple[str, ...], Entry]] = []
    for s in sources:
        by_key: dict[tuple[str, ...], Entry] = {}
        for e in s.entries:
            key = case_key(e, fields)
            if key not in by_key:  # a file with a case twice: the first one counts
                by_key[key] = e
                if key not in order:
                    order.append(key)
        index.append(by_key)
    return [[by_key.get(key) for by_key in index] for key in order]


def _metric_rows(group: list[Entry | None]) -> tuple[MetricRow, ...]:
    rows = []
    for name, metric in METRICS.items():
        values = tuple(None if e is None else metric_value(e.result, name) for e in group)
        if not any(_number(v) for v in values):
            continue
        values = tuple(v if _number(v) else None for v in values)
        deltas = (None,) + tuple(difference(metric, values[0], v) for v in values[1:])
        rows.append(MetricRow(name, values, deltas))
    return tuple(rows)


def config_warnings(
    sources: list[Source], paired: list[list[Entry | None]], fields: tuple[str, ...]
) -> list[str]:
    """One line for every config field, and every distinct pair of values, in which a
    result differs from the reference result it is compared with (case fields aside)."""
    ref = sources[0]
    skip = set(CASE_FIELDS[ref.family]) | set(fields)
    found: dict[tuple[int, str], list[tuple[str, str]]] = {}
    for group in paired:
        if group[0] is None:
            continue
        ref_config = {**group[0].config, "tool_version": ref.tool_version}
        for i, entry in enumerate(group[1:], 1):
            if entry is None:
                continue
            config = {**entry.config, "tool_version": sources[i].tool_version}
            for name in (set(ref_config) | set(config)) - skip:
                a, b = ref_config.get(name, _ABSENT), config.get(name, _ABSENT)
                if _canon_or_absent(a) != _canon_or_absent(b):
                    pairs = found.setdefault((i, name), [])
                    if (_show(a), _show(b)) not in pairs:
                        pairs.append((_show(a), _show(b)))

    def order(item):
        (i, name), _ = item
        watched = WATCHED_FIELDS.index(name) if name in WATCHED_FIELDS else len(WATCHED_FIELDS)
        return i, watched, name

    return [
        f"config differs in {name}: {a} in {ref.path}, {b} in {sources[i].path}"
        for (i, name), pairs in sorted(found.items(), key=order)
        for a, b in pairs
    ]


_ABSENT = object()


def _canon_or_absent(value: Any) -> str:
    return "<absent>" if value is _ABSENT else _canon(value)


def _show(value: Any) -> str:
    if value is _ABSENT:
        return "absent"
    text = repr(value) if isinstance(value, str) else _canon(value)
    return text if len(text) <= 80 else text[:77] + "..."  # a warning stays one line


# -- thresholds -----------------------------------------------------------------------------

_THRESHOLD = re.compile(
    r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*:\s*([+-])\s*"
    r"(\d+(?:\.\d*)?|\.\d+)\s*(%?)\s*$"
)


@dataclass(frozen=True)
class Threshold:
    metric: str
    sign: int  # +1 guards a rise, -1 a fall
    amount: float  # N (percent of the baseline) or X (in the metric's unit)
    relative: bool
    text: str
    default: bool = False

    def exceeded(self, baseline: float, current: float) -> bool:
        change = (current - baseline) * self.sign  # > 0: moved the guarded way
        if self.relative:
            # Compare without dividing, so that a rise of exactly N % passes.
            return change * 100 > abs(baseline) * self.amount
        return change > self.amount

    def describe(self) -> str:
        if self.default and self.relative:
            return f"{self.text} (default tolerance of a noisy figure)"
        if self.default:
            return f"{self.text} (default: any increase)"
        return self.text


def parse_threshold(text: str) -> Threshold:
    """'zv_page_count:+1%' or 'metadata_bytes:+4096' -> Threshold; InputError otherwise."""
    name = text.partition(":")[0].strip()
    if ":" in text and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", name) and name not in METRICS:
        raise InputError(
            f"unknown metric {name!r} in threshold {text!r}; metrics: {', '.join(METRICS)}"
        )
    m = _THRESHOLD.match(text) if text.isascii() else None
    if not m:
        raise InputError(
            f"bad threshold {text!r}: expected METRIC:+N% or METRIC:+X"
            " (or - to guard a fall), e.g. zv_page_count:+1%"
        )
    name, sign, amount, pct = m.groups()
    if len(amount) > 30 or not math.isfinite(float(amount)):
        raise InputError(f"bad threshold {text!r}: the amount is too large")
    if name not in METRICS:
        raise InputError(
            f"unknown metric {name!r} in threshold {text!r}; metrics: {', '.join(METRICS)}"
        )
    return Threshold(
        name, 1 if sign == "+" else -1, float(amount), pct == "%", f"{name}:{sign}{amount}{pct}"
    )


def default_thresholds() -> list[Threshold]:
    """Any increase of an exact page count where lower is better fails, and so does any
    increase of a pool size a front end reports in bytes (mm_stat.mem_used_total, ...);
    a noisy figure fails when it moves the wrong way by more than its tolerance."""
    out = []
    for m in METRICS.values():
        if m.exact and (m.unit == "pages" or m.pool) and m.better == "lower":
            out.append(Threshold(m.name, 1, 0.0, False, f"{m.name}:+0", default=True))
        elif m.tolerance_pct is not None and m.better in ("lower", "higher"):
            sign = 1 if m.better == "lower" else -1
            text = f"{m.name}:{'+' if sign > 0 else '-'}{m.tolerance_pct:g}%"
            out.append(Threshold(m.name, sign, m.tolerance_pct, True, text, default=True))
    return out


def thresholds_for(texts: Iterable[str], defaults: bool = True) -> list[Threshold]:
    explicit = [parse_threshold(t) for t in texts]
    # A guard replaces the default guard of its metric in the same direction only (a
    # guard on a fall leaves the any-increase guard of a page count in place).
    named = {(t.metric, t.sign) for t in explicit}
    implied = (
        [t for t in default_thresholds() if (t.metric, t.sign) not in named] if defaults else []
    )
    return implied + explicit


@dataclass(frozen=True)
class Outcome:
    case: str
    threshold: Threshold | None  # None: the case itself is missing from the current file
    baseline: Any
    current: Any
    delta: Delta | None
    failed: bool
    invalid: str | None = None  # where the metric is not a finite number

    def describe(self) -> str:
        if self.threshold is None:
            return f"{self.case}: in the baseline but not in the current results"
        name = self.threshold.metric
        if self.invalid:
            value = self.baseline if self.invalid == "the baseline" else self.current
            return (
                f"{self.case}: {name} is not a finite number in {self.invalid}"
                f" ({_shown(value)}); {self.threshold.describe()} cannot pass"
            )
        if self.current is None:
            return f"{self.case}: {name} {self.baseline} in the baseline, absent now"
        d = self.delta
        rel = "" if d is None or d.relative_pct is None else f", {d.relative_pct:+.2f}%"
        diff = "" if d is None or d.absolute is None else f" ({_signed(d.absolute)}{rel})"
        return (
            f"{self.case}: {name} {self.baseline} -> {self.current}{diff}"
            f" exceeds {self.threshold.describe()}"
        )


def _shown(value: Any) -> str:
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _signed(value: int | float) -> str:
    return f"{value:+d}" if isinstance(value, int) else f"{value:+.6g}"


@dataclass(frozen=True)
class CheckReport:
    comparison: Comparison
    thresholds: tuple[Threshold, ...]
    outcomes: tuple[Outcome, ...]

    @property
    def failures(self) -> tuple[Outcome, ...]:
        return tuple(o for o in self.outcomes if o.failed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "comparison": self.comparison.to_dict(),
            "thresholds": [t.describe() for t in self.thresholds],
            "checked": len(self.outcomes),
            "failed": [o.describe() for o in self.failures],
            "passed": not self.failures,
        }


def check(
    baseline: Source, current: Source, thresholds: list[Threshold], pair_any: bool = False
) -> CheckReport:
    """Compare current against baseline and apply every threshold to every case."""
    comparison = compare([baseline, current], pair_any)
    outcomes = []
    for case in comparison.cases:
        if case.labels[0] is None:
            continue  # new in the current file: nothing to hold it to
        if case.labels[1] is None:
            outcomes.append(Outcome(case.label, None, None, None, None, True))
            continue
        rows = {r.metric: r for r in case.rows}
        for t in thresholds:
            raw = (
                [_raw_value(e, t.metric) for e in case.entries[:2]]
                if case.entries
                else [_ABSENT, _ABSENT]
            )
            # null on both sides is a figure neither run has (no compaction, say);
            # anything else that is not a finite number cannot be held to a threshold.
            both_null = raw[0] is None and raw[1] is None
            bad = [r is not _ABSENT and not _number(r) and not both_null for r in raw]
            if any(bad):
                outcomes.append(
                    Outcome(
                        case.label,
                        t,
                        raw[0],
                        raw[1],
                        None,
                        True,
                        invalid=("the baseline" if bad[0] else "the current results"),
                    )
                )
                continue
            row = rows.get(t.metric)
            if row is None or row.values[0] is None:
                continue  # not measured in the baseline
            base, cur = row.values
            failed = cur is None or t.exceeded(base, cur)
            outcomes.append(Outcome(case.label, t, base, cur, row.deltas[1], failed))
    return CheckReport(comparison, tuple(thresholds), tuple(outcomes))


def _raw_value(entry: Entry | None, metric: str) -> Any:
    """A metric's raw value in a result, _ABSENT where the result has no such field."""
    if entry is None:
        return _ABSENT
    if "." not in metric:
        return entry.result.get(metric, _ABSENT)
    value = metric_value(entry.result, metric)
    return _ABSENT if value is None else value


def threshold_map(report: CheckReport) -> dict[tuple[str, str], list[Outcome]]:
    """(case, metric) -> the outcomes of the thresholds applied there."""
    out: dict[tuple[str, str], list[Outcome]] = {}
    for o in report.outcomes:
        if o.threshold is not None:
            out.setdefault((o.case, o.threshold.metric), []).append(o)
    return out
