"""Pictures of results: compressed sizes, pool pages over a run, zsmalloc's size classes.

Three kinds, each drawn from what a run result already stores:

    sizes     clen_histogram: every page offered to zcache, by compressed size in 32-byte
              buckets (rejected pages included), with zv_max_zsize marked
    pool      samples: the front end's pool pages (zv_page_count, zram's mem_used_total,
              zswap's pool_total_size in pages) against pages written, about 256 points
              a run, with the pages stored (curr_pages) dashed beside them and, for
              zswap, the pages written back to swap so far (written_back_pages) dotted
    classes   allocator_stats["classes"]: zsmalloc's per-class table, objects allocated
              against objects in use for each class size (occupancy); one panel per run
              or replay

prepare() turns result files into a Picture: plain numbers, no plotting library.  Two
renderers draw it: save() writes PNG or SVG with matplotlib's object API on the Agg
canvas (no pyplot, so no global figure state and no display needed), and terminal()
returns the same picture as text with plotext, for when no file is wanted.  Both
libraries are imported inside the renderer that needs them.

The same results give the same bytes: SVG ids come from a fixed hash salt and its date
is left out; PNG metadata holds only matplotlib's version.  Files are written to a
temporary name and renamed, so an interrupted plot leaves no half-written picture.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from xcfbench.errors import InputError
from xcfbench.io import atomic_open, check_output
from xcfbench.results.compare import Source, entry_labels

KINDS = ("sizes", "pool", "classes")
HIST_BUCKET = 32  # bytes per clen_histogram bucket (engine.HIST_SHIFT)
MAX_PANELS = 8  # classes: one panel per run
FIG_WIDTH_IN, FIG_HEIGHT_IN, DPI = 8.0, 4.5, 100
PANEL_HEIGHT_IN = 4.25


@dataclass(frozen=True)
class Series:
    label: str
    x: tuple[float, ...]
    y: tuple[float, ...]
    y2: tuple[float, ...] = ()  # pool: curr_pages; classes: obj_used
    note: str = ""  # classes: the panel's summary line
    y3: tuple[float, ...] = ()  # pool: zswap's written_back_pages
    y4: tuple[float, ...] = ()  # pool: live pages, ceil(bytes of stored objects / 4096)


@dataclass(frozen=True)
class Picture:
    kind: str
    title: str
    xlabel: str
    ylabel: str
    series: tuple[Series, ...]
    marks: tuple[tuple[float, str], ...] = ()  # vertical lines: (x, label)

    @property
    def size_px(self) -> tuple[int, int]:
        """(width, height) of the PNG save() writes."""
        w, h = figure_size_in(self)
        return round(w * DPI), round(h * DPI)


def figure_size_in(pic: Picture) -> tuple[float, float]:
    if pic.kind == "classes":
        return FIG_WIDTH_IN, 0.75 + PANEL_HEIGHT_IN * len(pic.series)
    return FIG_WIDTH_IN, FIG_HEIGHT_IN


# -- data -------------------------------------------------------------------------------------


def prepare(kind: str, sources: list[Source]) -> Picture:
    if kind not in KINDS:
        raise InputError(f"unknown plot kind {kind!r}: choose from {', '.join(KINDS)}")
    for s in sources:
        if s.family != "run" and kind != "classes":
            raise InputError(
                f"{s.path} holds replay results; --kind {kind} needs run results"
                " (run, compare, reproduce or sweep)"
            )
    labels = entry_labels(sources)
    pairs = [
        (lab, e)
        for s, labs in zip(sources, labels, strict=True)
        for lab, e in zip(labs, s.entries, strict=True)
    ]
    return {"sizes": _sizes, "pool": _pool, "classes": _classes}[kind](pairs)


def _sizes(pairs) -> Picture:
    series = []
    for label, e in pairs:
        hist = e.result.get("clen_histogram")
        if not isinstance(hist, list):
            raise InputError(f"result {label!r} has no clen_histogram")
        hist = hist or [0]
        series.append(Series(label, tuple(i * HIST_BUCKET for i in range(len(hist))), tuple(hist)))
    limits = {e.config.get("zv_max_zsize") for _, e in pairs}
    marks = tuple((float(v), f"zv_max_zsize {v}") for v in sorted(limits) if isinstance(v, int))
    return Picture(
        "sizes",
        "Compressed sizes of the pages offered to zcache",
        f"compressed size (bytes, {HIST_BUCKET}-byte buckets)",
        "pages",
        tuple(series),
        marks,
    )


def prepare_pages(docs: list[tuple[str, dict]]) -> Picture:
    """--kind sizes of `xcfbench pages --format json` outputs: one series per compressor
    (and file), with zsmalloc's huge_class_size marked."""
    series = []
    limits = set()
    for label, doc in docs:
        summary = doc["summary"]
        bucket = summary.get("histogram_bucket", HIST_BUCKET)
        limits.add(summary.get("huge_class_size"))
        for c in summary.get("compressors", []):
            hist = c.get("histogram") or [0]
            name = c["compressor"] if len(docs) == 1 else f"{label} {c['compressor']}"
            series.append(Series(name, tuple(i * bucket for i in range(len(hist))), tuple(hist)))
    if not series:
        raise InputError("the pages output names no compressor")
    marks = tuple((float(v), f"huge_class_size {v}") for v in sorted(limits) if isinstance(v, int))
    return Picture(
        "sizes",
        "Compressed sizes of the pages, per compressor",
        f"compressed size (bytes, {HIST_BUCKET}-byte buckets)",
        "pages",
        tuple(series),
        marks,
    )


def _pool(pairs) -> Picture:
    series = []
    for label, e in pairs:
        samples = e.result.get("samples")
        if not isinstance(samples, list) or not samples:
            raise InputError(f"result {label!r} has no samples of the pool")
        series.append(
            Series(
                label,
                tuple(s[0] for s in samples),
                tuple(s[2] for s in samples),
                tuple(s[1] for s in samples),
                y3=tuple(s[4] for s in samples) if all(len(s) > 4 for s in samples) else (),
                y4=tuple(s[3] for s in samples) if all(len(s) > 3 for s in samples) else (),
                note=_fragmentation(samples),
            )
        )
    wb = any(s.y3 for s in series)
    live = any(s.y4 for s in series)
    ends = "; ".join(
        f"{s.label}: {s.note}" if len(series) > 1 else s.note for s in series if s.note
    )
    styles = ["dashed: stored (curr_pages)"]
    if live:
        styles.append("dash-dot: live bytes / 4096 (the gap above is fragmentation)")
    if wb:
        styles.append("dotted: written back by zswap")
    return Picture(
        "pool",
        "Pool pages over the run\n" + "; ".join(styles) + (f"\nat the end: {ends}" if ends else ""),
        "pages written, then accesses",
        "pages",
        tuple(series),
    )


def _fragmentation(samples: list[list[int]]) -> str:
    """The pool at the end against the pages its live bytes would fill if packed."""
    last = samples[-1]
    if len(last) < 4 or not last[3]:
        return ""
    return f"pool {last[2]} pages for {last[3]} pages of live bytes: +{last[2] / last[3] - 1:.1%}"


def _classes(pairs) -> Picture:
    series = []
    for label, e in pairs:
        rows = (e.result.get("allocator_stats") or {}).get("classes")
        if not isinstance(rows, list):
            continue  # not zsmalloc: nothing to show for it
        rows = sorted(rows, key=lambda r: r["size"])
        allocated = sum(r["obj_allocated"] for r in rows)
        used = sum(r["obj_used"] for r in rows)
        pages = sum(r.get("pages_used", 0) for r in rows)
        pct = 100.0 * used / allocated if allocated else 0.0
        note = (
            f"{label}: {len(rows)} classes in use, {pages} pages,"
            f" {used} of {allocated} objects in use ({pct:.1f}%)"
        )
        series.append(
            Series(
                label,
                tuple(r["size"] for r in rows),
                tuple(r["obj_allocated"] for r in rows),
                tuple(r["obj_used"] for r in rows),
                note,
            )
        )
    if not series:
        raise InputError(
            "--kind classes needs zsmalloc results (a per-class table in"
            " allocator_stats); none of the results has one"
        )
    if len(series) > MAX_PANELS:
        raise InputError(
            f"--kind classes draws one panel per run; {len(series)} runs are more than {MAX_PANELS}"
        )
    return Picture(
        "classes",
        "zsmalloc size classes: objects allocated and in use",
        "class size (bytes)",
        "objects",
        tuple(series),
    )


# -- files ------------------------------------------------------------------------------------


def save(pic: Picture, path: str, inputs: tuple[str, ...] = ()) -> None:
    """Write pic as PNG or SVG, by path's extension."""
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    if ext not in ("png", "svg"):
        raise InputError(f"cannot tell the picture format of {path!r}: end it in .png or .svg")
    check_output(path, inputs, what="--out")

    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with matplotlib.rc_context({"svg.hashsalt": "xcfbench", "font.size": 9}):
        fig = Figure(figsize=figure_size_in(pic), dpi=DPI, layout="constrained")
        FigureCanvasAgg(fig)
        _draw(fig, pic)
        metadata = {"Date": None} if ext == "svg" else None
        with atomic_open(path, "wb", inputs=inputs) as f:
            fig.savefig(f, format=ext, dpi=DPI, metadata=metadata)


def _draw(fig, pic: Picture) -> None:
    if pic.kind == "classes":
        # Per run: objects allocated and in use by class size, and below it the share in
        # use (stems, so that a class of one object is as visible as one of thousands).
        n = len(pic.series)
        axes = fig.subplots(
            2 * n, 1, squeeze=False, sharex=True, gridspec_kw={"height_ratios": [3, 2] * n}
        )[:, 0]
        fig.suptitle(pic.title)
        for i, s in enumerate(pic.series):
            objects, share = axes[2 * i], axes[2 * i + 1]
            width = _bar_width(s.x)
            objects.bar(s.x, s.y, width=width, color="#b8c9e0", label="allocated")
            objects.bar(s.x, s.y2, width=width * 0.6, color="#1f4e8c", label="in use")
            objects.set_title(s.note, fontsize=8, loc="left")
            objects.set_ylabel(pic.ylabel)
            objects.grid(axis="y", alpha=0.3)
            objects.legend(loc="upper left", fontsize=8)
            pct = [100.0 * u / a if a else 0.0 for u, a in zip(s.y2, s.y, strict=False)]
            share.vlines(s.x, 0, pct, color="#1f4e8c", linewidth=1)
            share.plot(s.x, pct, "o", color="#1f4e8c", markersize=2.5)
            share.set_ylim(0, 105)
            share.set_ylabel("in use (%)")
            share.grid(axis="y", alpha=0.3)
        axes[-1].set_xlabel(pic.xlabel)
        return
    ax = fig.subplots()
    ax.set_title(pic.title)
    ax.set_xlabel(pic.xlabel)
    ax.set_ylabel(pic.ylabel)
    ax.grid(alpha=0.3)
    if pic.kind == "sizes":
        for s in pic.series:
            edges = list(s.x) + [s.x[-1] + HIST_BUCKET]
            ax.stairs(s.y, edges, fill=len(pic.series) == 1, alpha=0.8, label=s.label)
        for x, label in pic.marks:
            ax.axvline(x, color="#c0392b", linestyle=":", linewidth=1)
            ax.annotate(
                label,
                (x, 1),
                xycoords=("data", "axes fraction"),
                rotation=90,
                va="top",
                ha="right",
                fontsize=8,
                color="#c0392b",
            )
    else:
        for s in pic.series:
            (line,) = ax.plot(s.x, s.y, label=s.label, linewidth=1.5)
            ax.plot(s.x, s.y2, linestyle="--", linewidth=1, alpha=0.6, color=line.get_color())
            if s.y3:
                ax.plot(s.x, s.y3, linestyle=":", linewidth=1.5, color=line.get_color())
            if s.y4:
                ax.plot(s.x, s.y4, linestyle="-.", linewidth=1, color=line.get_color())
        ax.set_ylim(bottom=0)
    ax.set_xlim(left=0)
    ax.legend(fontsize=8)


def _bar_width(xs: tuple[float, ...]) -> float:
    gaps = [b - a for a, b in zip(xs, xs[1:], strict=False) if b > a]
    return 0.8 * min(gaps) if gaps else 16.0


# -- the terminal -----------------------------------------------------------------------------

_MARKERS = ("hd", "dot", "x", "+", "*", "o", "#", "@")


def terminal(pic: Picture, width: int = 100, height: int = 25, color: bool = False) -> str:
    """The picture as text (plotext); ANSI colours only when color is set.

    plotext keeps one global figure whose subplot grid survives clear_figure(), so every
    panel here is a figure of its own, cleared before and after, and panels are joined
    as text: the same picture then always gives the same text."""
    import plotext as plt

    if pic.kind == "classes":
        n = len(pic.series)
        objects_height = max(10, height * 3 // (5 * n))
        share_height = max(8, height * 2 // (5 * n))
        panels = []
        for s in pic.series:
            panels.append(_panel(plt, pic, [s], width, objects_height, color, s.note))
            pct = tuple(100.0 * u / a if a else 0.0 for u, a in zip(s.y2, s.y, strict=False))
            share = Picture(
                "share", "", pic.xlabel, "in use (%)", (Series("in use (%)", s.x, pct),)
            )
            panels.append(
                _panel(
                    plt,
                    share,
                    list(share.series),
                    width,
                    share_height,
                    color,
                    f"{s.label}: share of allocated objects in use (%)",
                )
            )
        return "\n".join(panels)
    # plotext draws one title line: the first, and what the run ended with if it says
    lines = pic.title.splitlines()
    title = lines[0] + (f" ({lines[-1]})" if lines[-1].startswith("at the end") else "")
    return _panel(plt, pic, list(pic.series), width, height, color, title)


def _panel(
    plt, pic: Picture, series: list[Series], width: int, height: int, color: bool, title: str
) -> str:
    plt.clear_figure()
    plt.theme("pro" if color else "clear")
    plt.limitsize(False, False)  # the size asked for, not the terminal's
    plt.plotsize(width, height)
    plt.title(_fit(title, width - 12))  # plotext drops a title wider than the plot
    plt.xlabel(pic.xlabel)
    if pic.kind == "classes":
        (s,) = series
        plt.bar(s.x, s.y, label="allocated", marker="sd" if color else "░", width=0.8)
        plt.bar(s.x, s.y2, label="in use", marker="hd" if color else "█", width=0.8)
    elif pic.kind == "share":
        (s,) = series
        plt.bar(s.x, s.y, marker="hd" if color else "█", width=0.8)
        plt.ylim(0, 100)
    else:
        plt.ylabel(pic.ylabel)
        for i, s in enumerate(series):
            if pic.kind == "sizes" and len(series) == 1:
                plt.bar(s.x, s.y, label=s.label, width=1, marker="hd" if color else "█")
            else:
                plt.plot(
                    s.x, s.y, label=s.label, marker="hd" if color else _MARKERS[i % len(_MARKERS)]
                )
            if pic.kind == "pool" and len(series) == 1:
                plt.plot(s.x, s.y2, label="stored (curr_pages)", marker="dot")
            if pic.kind == "pool" and s.y3:
                name = "written back" if len(series) == 1 else f"{s.label} written back"
                plt.plot(s.x, s.y3, label=name, marker="x")
            if pic.kind == "pool" and s.y4 and len(series) == 1:
                plt.plot(s.x, s.y4, label="live bytes / 4096", marker="+")
        for x, _ in pic.marks:
            plt.vline(x)
    text = plt.build()
    plt.clear_figure()
    return text if color else plt.uncolorize(text)


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(1, width - 1)] + "…"
