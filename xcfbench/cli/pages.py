"""`xcfbench pages FILE...`: how well the pages of any files compress, page by page.

Streams: one page is read, sized and written out at a time, so a file of any length takes
constant memory.  The work is sim/pagestats.py; the rendering output/pages.py.
"""

from __future__ import annotations

import sys

import click

from xcfbench import __version__
from xcfbench.cli.common import cli, split_list, stdout_console
from xcfbench.sim.config import parse_alloc_options


@cli.command("pages")
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@click.option(
    "--compressor",
    "-c",
    default="lzo,lzo-rle,lz4,zstd",
    show_default=True,
    help="comma-separated compressors (see `xcfbench list`)",
)
@click.option(
    "--call",
    type=click.Choice(("zram", "zswap")),
    default="zram",
    show_default=True,
    help="size the pages as zram's backend or zswap's crypto"
    " call makes them (zswap: None where the 4096-byte destination overflows)",
)
@click.option(
    "--comp-opt",
    "comp_opts",
    multiple=True,
    metavar="NAME=VALUE",
    help="compressor option for every compressor, e.g. level=9 (repeatable)",
)
@click.option(
    "--chain-size",
    type=int,
    default=None,
    help="zsmalloc pages per zspage, for huge_class_size [default: 8]",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(("table", "json", "csv")),
    default="table",
    show_default=True,
    help="table: the summary; json: JSON Lines, a page a line, then the summary;"
    " csv: the page rows",
)
def pages(
    files: tuple[str, ...],
    compressor: str,
    call: str,
    comp_opts: tuple[str, ...],
    chain_size: int | None,
    fmt: str,
) -> None:
    """Per page of FILE... ('-' is stdin; a page image gives its pages in address
    order): zero and same-filled flags and the compressed
    length under each compressor; then per compressor the mean size and ratio, the sizes
    in 32-byte buckets, the share at or above zsmalloc's huge_class_size (stored whole by
    zram) and the share zswap would reject."""
    from xcfbench.io import check_input_file, iter_pages
    from xcfbench.output.pages import CsvRows, json_line, summary_table
    from xcfbench.results.pages import KIND
    from xcfbench.sim.images import image_pages, is_container
    from xcfbench.sim.pagestats import PageStats

    for path in files:
        check_input_file(path, "file")
    stats = PageStats(
        split_list(compressor), call, dict(parse_alloc_options(comp_opts)), chain_size
    )
    out = sys.stdout
    rows = CsvRows(out, stats.names) if fmt == "csv" else None
    for path in files:
        pages_of = image_pages(path) if is_container(path) else iter_pages(path, "file")
        for page in pages_of:
            row = stats.add(page)
            if fmt == "json":
                out.write(json_line(row))
            elif rows is not None:
                rows.write(row)
    summary = stats.summary()
    if fmt == "json":
        out.write(
            json_line(
                {
                    "kind": KIND,
                    "tool_version": __version__,
                    "files": list(files),
                    "summary": summary,
                }
            )
        )
    elif fmt == "table":
        stdout_console().print(summary_table(summary, f"pages of {', '.join(files)}"))
