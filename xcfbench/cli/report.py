"""The commands that read, compare and picture results: diff, check, sweep, plot.

Thin, like cli.py: parse options, call report/sweep/plot, hand the result to a renderer.
One artifact on stdout (a table, JSON, CSV, Markdown or a terminal plot); warnings and
progress on stderr.  Exit status: 0 ok, 1 a check failed, 2 bad input.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from typing import Any

import click

from xcfbench.cli.common import (
    PROG,
    cli,
    emit,
    expand_runs,
    output_format,
    output_inputs,
    run_options,
    stdout_console,
)
from xcfbench.errors import InputError
from xcfbench.output import FORMATS


def _print(renderable: Any) -> None:
    """Print to stdout; into a pipe or a file, as wide as the table needs, never wrapped."""
    from rich.console import Console
    from rich.measure import Measurement

    console = stdout_console()
    if not console.is_terminal:
        need = Measurement.get(console, console.options.update_width(1000), renderable).maximum
        if need > console.width:
            console = Console(soft_wrap=False, width=need)
    console.print(renderable)


def _warn(messages) -> None:
    for message in messages:
        click.echo(f"{PROG}: warning: {message}", err=True)


def _format_option(f: Callable) -> Callable:
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default="table",
        show_default=True,
        help="what stdout gets",
    )(f)


def _emit_comparison(cmp, fmt: str, report=None) -> None:
    if fmt == "json":
        from xcfbench.results.document import dumps

        sys.stdout.write(dumps(report.to_dict() if report else cmp.to_dict()))
    elif fmt == "table":
        from xcfbench.output.tables import check_verdict, comparison_table

        _print(comparison_table(cmp, report))
        if report:
            _print(check_verdict(report))
    else:
        from xcfbench.output.formats import render_comparison

        sys.stdout.write(render_comparison(cmp, fmt, report))


_pair_any_option = click.option(
    "--pair-any",
    is_flag=True,
    help="pair single results of different cases (allocators, fills) in file order",
)


@cli.command()
@click.argument("paths", nargs=-1, metavar="A.json B.json [...]")
@_pair_any_option
@_format_option
def diff(paths: tuple[str, ...], pair_any: bool, fmt: str) -> None:
    """Results side by side, the first file as reference: every metric with its absolute
    and relative difference, coloured by whether it got better or worse.  Also reads a
    sweep's results file."""
    from xcfbench.results.compare import compare, load_sources

    if len(paths) < 2:
        raise InputError("diff needs at least two result files (the first is the reference)")
    cmp = compare(load_sources(paths), pair_any)
    _warn(cmp.warnings)
    _emit_comparison(cmp, fmt)


@cli.command()
@click.option(
    "--baseline", "-b", required=True, metavar="BASE.json", help="the results to hold CURRENT to"
)
@click.argument("current", metavar="CURRENT.json")
@click.option(
    "--fail-on",
    "fail_on",
    multiple=True,
    metavar="METRIC:+N%|METRIC:+X",
    help="fail when METRIC rises by more than N % (or X); '-' guards a fall; repeatable",
)
@click.option(
    "--no-default-thresholds",
    is_flag=True,
    help="drop the default gates: 'any increase' on exact page counts, the tolerance"
    " (+25 %) on timings",
)
@_pair_any_option
@_format_option
def check(
    baseline: str,
    current: str,
    fail_on: tuple[str, ...],
    no_default_thresholds: bool,
    pair_any: bool,
    fmt: str,
) -> None:
    """The regression gate: print the whole comparison, then every threshold that failed;
    exit 1 if any did.  Exact page counts (zv_page_count, pages_held, ...) fail on any
    increase unless a --fail-on names them; timings (`make bench`'s JSON) fail when they
    get worse by more than 25 %."""
    from xcfbench.results.compare import check as run_check
    from xcfbench.results.compare import load_sources, thresholds_for

    thresholds = thresholds_for(fail_on, defaults=not no_default_thresholds)
    base, cur = load_sources([baseline, current])
    report = run_check(base, cur, thresholds, pair_any)
    _warn(report.comparison.warnings)
    _emit_comparison(report.comparison, fmt, report)
    if report.failures:
        # SystemExit, not click's Exit: cli.main() runs the group with standalone_mode off,
        # where click turns Exit into a return value that main() does not pass on.
        sys.exit(1)


@cli.command()
@run_options(multi=True)
@click.option(
    "--jobs",
    "-j",
    type=int,
    default=1,
    show_default=True,
    help="runs at a time, each in a process of its own",
)
@click.option(
    "--results",
    "results_path",
    default="sweep.jsonl",
    show_default=True,
    metavar="FILE",
    help="JSON lines, one per finished run; run again to resume",
)
@click.option(
    "--scheduler",
    default=None,
    metavar="tcp://HOST:8786",
    help="run each configuration as a task on this Dask cluster (pip install"
    " 'xcfbench[cluster]'); without it, locally",
)
def sweep(
    alloc: str | None,
    fill: str | None,
    jobs: int,
    results_path: str,
    scheduler: str | None,
    **kw: Any,
) -> None:
    """Every combination of --alloc, --fill, --arch, --frontend, --compressor,
    --chain-size, --size and --limit (comma-separated lists), run in parallel; each
    finished run is a line of --results, and an interrupted sweep resumes where it
    stopped.  With --scheduler the runs are tasks on a Dask cluster; the results file
    and the table are the same."""
    from xcfbench.output.formats import summary
    from xcfbench.output.tables import ProgressBar, summary_table
    from xcfbench.results.compare import source_of
    from xcfbench.results.sweep import run_sweep, sweep_document
    from xcfbench.sim.config import format_size

    fmt = output_format(kw, output_inputs(kw, results_path))
    varied = ("arch", "frontend", "compressor", "chain_size", "size", "limit")
    configs = expand_runs(alloc, fill, kw, varied, "sweep")
    with ProgressBar("sweep", enabled=not kw["quiet"], delay_s=0, runs=True) as bar:
        outcome = run_sweep(
            configs,
            results_path,
            jobs,
            progress=bar,
            warn=lambda m: _warn([m]),
            scheduler=scheduler,
        )
    click.echo(
        f"{PROG}: sweep: {len(configs)} runs, {outcome.ran} run now,"
        f" {outcome.reused} already in {results_path}",
        err=True,
    )
    shown: dict[str, list[Any]] = {
        "alloc": [c.alloc for c in configs],
        "fill": [c.fill for c in configs],
        "arch": [c.arch for c in configs],
        "frontend": [c.frontend for c in configs],
        "compressor": [c.compressor for c in configs],
        "chain_size": [dict(c.alloc_options).get("chain_size") for c in configs],
        "size": [format_size(c.size_bytes) for c in configs],
        "limit": [format_size(c.limit_bytes) for c in configs],
    }
    if kw["chain_size"] is None:
        del shown["chain_size"]
    doc = sweep_document({k: list(dict.fromkeys(v)) for k, v in shown.items()}, outcome)
    source = source_of(doc)
    if fmt == "table":
        # Not through emit(): a sweep's axes make the table wider than emit() prints it.
        from xcfbench.io import write_atomic
        from xcfbench.results.document import dumps

        if kw["output"]:
            write_atomic(kw["output"], dumps(doc), output_inputs(kw, results_path))
        _print(summary_table(summary(source.entries), f"sweep of {len(configs)} runs"))
    else:
        emit(doc, fmt, kw["output"], lambda: None, output_inputs(kw, results_path))


@cli.command()
@click.argument("paths", nargs=-1, required=True, metavar="RESULTS...")
@click.option(
    "--kind",
    "-k",
    type=click.Choice(("sizes", "pool", "classes")),
    default="sizes",
    show_default=True,
    help="sizes: compressed-size distribution; pool: pool pages over the run;"
    " classes: zsmalloc per-class occupancy",
)
@click.option(
    "--out",
    "-o",
    default=None,
    metavar="FILE.png|FILE.svg",
    help="write a picture; without it, draw in the terminal",
)
@click.option("--width", type=int, default=None, help="terminal plot columns")
@click.option("--height", type=int, default=None, help="terminal plot rows")
def plot(
    paths: tuple[str, ...], kind: str, out: str | None, width: int | None, height: int | None
) -> None:
    """Pictures of results (run, compare, reproduce and sweep files): the distribution
    of compressed sizes, pool pages over the run, or zsmalloc's per-class occupancy (of
    runs or replays).  --kind sizes also draws `xcfbench pages --format json` output.
    Without --out, drawn in the terminal."""
    from xcfbench.output.plot import prepare, prepare_pages, save, terminal
    from xcfbench.results.compare import load_sources

    if out:
        from xcfbench.io import check_output

        check_output(out, paths, what="--out")
    from xcfbench.results.pages import is_pages_output, read_pages_summary

    if any(is_pages_output(p) for p in paths):  # `xcfbench pages --format json`
        if kind != "sizes" or not all(is_pages_output(p) for p in paths):
            raise InputError(
                "pages outputs draw only with --kind sizes, and not mixed with run results"
            )
        pic = prepare_pages([(p, read_pages_summary(p)) for p in paths])
    else:
        pic = prepare(kind, load_sources(paths))
    if out:
        save(pic, out, inputs=paths)
        w, h = pic.size_px
        click.echo(
            f"{PROG}: wrote {out} ({w}x{h} px)"
            if out.lower().endswith(".png")
            else f"{PROG}: wrote {out}",
            err=True,
        )
        return
    size = shutil.get_terminal_size((100, 30))
    w = width or size.columns
    h = height or max(15, min(size.lines - 4, 30))
    if w < 30 or h < 8:
        raise InputError(f"a terminal plot needs at least 30x8 characters, not {w}x{h}")
    if w > 1000 or h > 500:
        raise InputError(f"a terminal plot is at most 1000x500 characters, not {w}x{h}")
    sys.stdout.write(terminal(pic, w, h, color=sys.stdout.isatty()) + "\n")
