"""The one value formatter every output uses, and the figures each kind of result shows.

A table, its Markdown twin and a CSV cell of the same value read alike because they all
come from here.
"""

from __future__ import annotations

from typing import Any

# The figures a single run shows, in every format, in this order.
RUN_FIGURES = (
    "curr_pages",
    "zv_page_count",
    "zv_desc_count",
    "effective_compression_pct",
    "stored_per_pool",
    "effective_compression_pages_only_pct",
    "mean_compressed_pct",
    "pages_held",
    "peak_pool_pages",
    "metadata_bytes",
    "succ_puts",
    "failed_puts",
    "pool_pages_after_compact",
    "pages_compacted",
)
# Figures left out of a table when the run has none (no descriptors, no compaction).
OPTIONAL_FIGURES = frozenset(
    {"zv_desc_count", "pool_pages_after_compact", "pages_compacted", "desc_count"}
)
REPLAY_FIGURES = (
    "pool_pages",
    "peak_pool_pages",
    "pages_held",
    "failed_allocs",
    "frees_of_failed",
    "live_objects",
    "live_bytes",
    "desc_count",
    "pool_pages_after_compact",
    "pages_compacted",
)


def cell(value: Any) -> str:
    """A CSV cell: exact, empty for absent."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def human(value: Any, unit: str | None = None) -> str:
    """A value for people: floats to two decimals, units where they help."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        text = f"{value:.2f}"
    else:
        text = str(value)
    if unit == "%":
        return f"{text} %"
    if unit == "x":
        return f"{text} ×"
    return text


def signed(value: int | float | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, int):
        return f"{value:+d}"
    if value and abs(value) < 0.005:
        return f"{value:+.2e}"
    return f"{value:+.2f}"


def signed_pct(value: float | None) -> str:
    return "—" if value is None else f"{signed(value)}%"
