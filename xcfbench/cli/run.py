"""The commands that simulate: run, compare, reproduce, replay, gen-trace, list.

Thin: parse options, build a config, call the simulation, hand the result to a renderer.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from xcfbench.cli.common import (
    FORMATS,
    build_config,
    check_classes,
    cli,
    config_doc,
    emit,
    expand_runs,
    output_format,
    output_inputs,
    run_many,
    run_options,
    stdout_console,
    with_chain_size,
)
from xcfbench.errors import InputError
from xcfbench.sim.config import RunConfig, parse_alloc_options

# The config fields a comparison varies besides the allocator and the fill; a compare
# document lists them per result (config "runs") when any of them varies.
RUN_FIELDS = ("frontend", "compressor", "alloc_options", "frontend_options")


def run_fields(configs: list[RunConfig]) -> list[dict[str, Any]]:
    """Each config's RUN_FIELDS, or [] when they are the same in every config."""
    rows = [{k: c.to_dict()[k] for k in RUN_FIELDS} for c in configs]
    varying = [k for k in RUN_FIELDS if len({repr(r[k]) for r in rows}) > 1]
    if not varying:
        return []
    return [{k: r[k] for k in varying} for r in rows]


@cli.command()
@run_options()
@click.option(
    "--emit-trace",
    default=None,
    metavar="TRACE",
    help="write the page trace the run performed to TRACE (.gz/.xz/.zst compress it) and"
    " the pages it refers to to TRACE.pages: replay --frontend ... --pages TRACE.pages TRACE",
)
def run(alloc: str, fill: str, emit_trace: str | None, **kw: Any) -> None:
    """One run: write --size of --fill pages in a --limit cgroup; zcache stores what is
    pushed out through --alloc.  --ops N then accesses N pages (swap-ins, re-evictions)."""
    from xcfbench.output.tables import run_table, with_classes, with_frontend
    from xcfbench.results.document import document

    cfg = build_config(alloc, fill, kw)
    fmt = output_format(kw)
    check_classes(cfg.alloc, kw["classes"])
    if emit_trace is None:
        (result,) = run_many([cfg], kw["quiet"])
    else:
        result = _run_emitting(cfg, emit_trace, kw)
    emit(
        document("run", config_doc(cfg, result), result.to_dict()),
        fmt,
        kw["output"],
        lambda: with_frontend(
            with_classes(run_table(result), result.allocator_stats, kw["classes"]),
            result.frontend_stats,
        ),
        output_inputs(kw),
    )


def _run_emitting(cfg: Any, path: str, kw: dict[str, Any]) -> Any:
    """A run that writes its page trace to path and the pages it names to path.pages,
    both atomically, after the run: a header comment names the replay's options."""
    from xcfbench.compressed_io import atomic_text_output
    from xcfbench.io import atomic_open, check_output
    from xcfbench.sim.engine import frontend_options, pages_file

    pages_path = path + ".pages"
    for out in (path, pages_path):
        check_output(out, output_inputs(kw), "--emit-trace")
    for _ in pages_file(cfg, 1):  # a profile has no bytes: refused before the run
        pass
    with atomic_text_output(path) as text:
        fe_opts = " ".join(f"{k}={v}" for k, v in sorted({**frontend_options(cfg)}.items()))
        text.write(
            f"# xcfbench page trace of `run`: frontend {cfg.frontend}, alloc {cfg.alloc},"
            f" arch {cfg.arch}, compressor {cfg.compressor}, frontend options: {fe_opts or '-'}\n"
        )
        (result,) = run_many([cfg], kw["quiet"], trace_out=text)
    n = result.churn["content_pages"] if result.churn else result.pages_written
    with atomic_open(pages_path, "wb", perms=0o600) as f:  # an image's pages are memory
        for page in pages_file(cfg, n):
            f.write(page)
    return result


@cli.command()
@run_options(multi=True)
def compare(alloc: str | None, fill: str | None, **kw: Any) -> None:
    """The letter's table: every --alloc × every --fill (× every --frontend, -c and
    --chain-size: comma lists), deltas against the first allocator in percentage points
    (lower is better)."""
    from xcfbench.output.formats import summary
    from xcfbench.output.tables import summary_table
    from xcfbench.results.compare import source_of
    from xcfbench.results.document import document

    configs = expand_runs(alloc, fill, kw, ("frontend", "compressor", "chain_size"), "compare")
    fmt = output_format(kw)
    results = run_many(configs, kw["quiet"])
    common = {
        **configs[0].to_dict(),
        **results[0].provenance,
        "alloc": list(dict.fromkeys(c.alloc for c in configs)),
        "fill": list(dict.fromkeys(c.fill for c in configs)),
    }
    per_run = run_fields(configs)
    if per_run:  # front ends, compressors or chain sizes vary: each result's own values
        for k in ("frontend", "compressor"):
            if k in per_run[0]:
                common[k] = list(dict.fromkeys(r[k] for r in per_run))
        common["runs"] = per_run
    doc = document("compare", common, [r.to_dict() for r in results])
    emit(
        doc,
        fmt,
        kw["output"],
        lambda: summary_table(summary(source_of(doc).entries)),
        output_inputs(kw),
    )


@cli.command()
@run_options(multi=True)
def reproduce(alloc: str | None, fill: str | None, **kw: Any) -> None:
    """The letter's four cases, published and measured side by side, with why each
    row differs."""
    from xcfbench.output.tables import reproduce_table
    from xcfbench.results.document import document
    from xcfbench.results.published import SEED_ROWS, compare_to_seed, curr_pages_note

    if alloc or fill:
        raise InputError("reproduce runs the letter's four cases; use compare for others")
    configs = [build_config(row.alloc, row.fill, kw) for row in SEED_ROWS]
    fmt = output_format(kw)
    results = run_many(configs, kw["quiet"])
    rows = [
        compare_to_seed(row, res, cfg)
        for row, res, cfg in zip(SEED_ROWS, results, configs, strict=True)
    ]
    common = {**configs[0].to_dict(), **results[0].provenance, "alloc": None, "fill": None}
    emit(
        document("reproduce", common, rows),
        fmt,
        kw["output"],
        lambda: reproduce_table(rows, curr_pages_note(configs[0])),
        output_inputs(kw),
    )


def _frontend_flags(f):
    from xcfbench.cli.common import frontend_flags

    for opt in reversed(frontend_flags()):
        f = opt(f)
    return f


@cli.command()
@click.option(
    "--alloc",
    "-a",
    default=None,
    help="allocator (see `xcfbench list`); with --pages [default: zsmalloc]",
)
@click.option("--arch", default=None, help="i386 or x86_64 [default: i386; x86_64 with --pages]")
@click.option(
    "--frontend",
    default=None,
    help="with --pages: replay a page trace through zram, zswap or zcache",
)
@click.option(
    "--pages",
    "pages_path",
    default=None,
    metavar="FILE",
    help="the pages a page trace writes (raw 4096-byte pages, or .xz)",
)
@click.option(
    "--compressor",
    "-c",
    default=None,
    help="with --pages: compressor [default: lzo-rle if registered, else lzo1x-1]",
)
@click.option(
    "--comp-opt",
    "comp_opts",
    multiple=True,
    metavar="NAME=VALUE",
    help="compressor option, e.g. level=9 (repeatable)",
)
@click.option(
    "--totalram",
    default="4G",
    show_default=True,
    help="with --pages: machine RAM (zswap's pool limit, zram's swap size)",
)
@_frontend_flags
@click.option("--verify", is_flag=True, help="store real bytes; check every object")
@click.option("--compact", default=None, help="'end' or 'every:N' operations")
@click.option("--opt", "opts", multiple=True, metavar="NAME=VALUE", help="allocator option")
@click.option(
    "--chain-size",
    type=int,
    default=None,
    help="zsmalloc pages per zspage at most, 4..16 [default: 8]",
)
@click.option("--classes", is_flag=True, help="also print the size-class table (zsmalloc)")
@click.option("--json", "as_json", is_flag=True, help="print one JSON document")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default=None,
    help="stdout: table (default), json (= --json), csv or markdown",
)
@click.option(
    "--output",
    "-o",
    default=None,
    metavar="FILE",
    help="also write the JSON document to FILE (atomically)",
)
@click.option("--quiet", "-q", is_flag=True, help="no progress bar")
@click.argument("trace_path", metavar="TRACE")
def replay(
    alloc: str | None,
    arch: str | None,
    frontend: str | None,
    pages_path: str | None,
    compressor: str | None,
    comp_opts: tuple[str, ...],
    totalram: str,
    verify: bool,
    compact: str | None,
    opts: tuple[str, ...],
    chain_size: int | None,
    classes: bool,
    as_json: bool,
    fmt: str | None,
    output: str | None,
    quiet: bool,
    trace_path: str,
    **fe_kw: Any,
) -> None:
    """Replay a trace v1 file through an allocator and report its page accounting; with
    --frontend and --pages, replay a page trace (w/r/d/c/i/R/B) through a front end."""
    from xcfbench.cli.common import FRONTEND_FLAGS, FRONTEND_SWITCHES

    if frontend is not None or pages_path is not None:
        return _replay_pages(click.get_current_context().params)
    given = [
        flag
        for flag, *_ in FRONTEND_FLAGS + FRONTEND_SWITCHES
        if fe_kw.get(flag.lstrip("-").replace("-", "_"))
    ]
    if given or compressor or comp_opts:
        raise InputError(f"{(given or ['-c'])[0]} needs --frontend and --pages (a page trace)")
    if alloc is None:
        raise InputError("replay needs --alloc (a trace v1), or --frontend and --pages")
    arch = arch or "i386"
    from xcfbench.output.tables import ProgressBar, replay_table, with_classes
    from xcfbench.results.document import document
    from xcfbench.sim.allocators import canonical_name, create
    from xcfbench.sim.arch import get_arch
    from xcfbench.sim.trace import open_trace, parse_compact
    from xcfbench.sim.trace import replay as do_replay

    name = canonical_name(alloc)
    arch_info = get_arch(arch)
    options = dict(with_chain_size(name, parse_alloc_options(opts), chain_size, strict=True))
    check_classes(name, classes)
    create(name, arch_info, **options)  # bad option values fail before the trace is read
    parse_compact(compact)
    fmt = output_format({"fmt": fmt, "as_json": as_json, "output": output}, inputs=(trace_path,))
    with (
        open_trace(trace_path) as trace,
        ProgressBar(f"replay {trace.name}", enabled=not quiet) as bar,
    ):
        result = do_replay(
            trace, name, arch_info, verify=verify, compact=compact, options=options, progress=bar
        )
    config = {
        "alloc": name,
        "arch": arch_info.name,
        "trace": trace.name,
        "verify": verify,
        "compact": compact,
        "alloc_options": options,
    }
    emit(
        document("replay", config, result.to_dict()),
        fmt,
        output,
        lambda: with_classes(replay_table(result), result.allocator_stats, classes),
        (trace_path,),
    )
    if verify and result.verify_errors:
        raise click.exceptions.Exit(1)


def _replay_pages(params: dict[str, Any]) -> None:
    """replay --frontend --pages: a page trace through a front end (sim/pagetrace.py).
    params are the command's, as click parsed them; the front-end flags among them."""
    import os

    from xcfbench.cli.common import frontend_options_of
    from xcfbench.output.tables import frontend_table, with_classes
    from xcfbench.results.document import document
    from xcfbench.sim.allocators import canonical_name
    from xcfbench.sim.compressors import COMPRESSORS, canonical_compressor
    from xcfbench.sim.config import parse_size
    from xcfbench.sim.frontends import get_frontend_class
    from xcfbench.sim.pagetrace import iter_trace_lines, read_pages, replay_pages

    alloc = params["alloc"] or "zsmalloc"
    arch = params["arch"] or "x86_64"
    frontend, pages_path = params["frontend"], params["pages_path"]
    trace_path, compressor = params["trace_path"], params["compressor"]
    opts, chain_size, classes = params["opts"], params["chain_size"], params["classes"]
    fe_kw = params  # the front-end flags are among them (frontend_options_of)
    if frontend is None or pages_path is None:
        raise InputError("a page trace needs both --frontend and --pages")
    if params["verify"] or params["compact"]:
        raise InputError(
            "--verify and --compact are for trace v1; a page trace compacts with its 'c' lines"
        )
    fe_cls = get_frontend_class(frontend)
    name = canonical_name(alloc)
    options = dict(with_chain_size(name, parse_alloc_options(opts), chain_size, strict=True))
    check_classes(name, classes)
    comp = canonical_compressor(
        compressor or ("lzo-rle" if "lzo-rle" in COMPRESSORS else "lzo1x-1")
    )
    fe_options = dict(frontend_options_of(fe_cls.name, fe_kw))
    output = params["output"]
    out_fmt = output_format({"fmt": params["fmt"], "as_json": params["as_json"], "output": output})
    if out_fmt not in ("table", "json"):
        raise InputError("a page-trace replay prints a table or JSON")
    data = read_pages(pages_path)
    result = replay_pages(
        iter_trace_lines(trace_path),
        data,
        frontend=fe_cls.name,
        compressor=comp,
        alloc=name,
        arch=arch,
        options=fe_options,
        alloc_options=options,
        compressor_options=dict(parse_alloc_options(params["comp_opts"])),
        totalram_pages=parse_size(params["totalram"], "--totalram") // 4096,
        name="<stdin>" if trace_path == "-" else os.path.basename(trace_path),
    )
    config = {
        "frontend": fe_cls.name,
        "alloc": name,
        "arch": arch,
        "compressor": comp,
        "trace": result["trace"],
        "pages": os.path.basename(pages_path),
        "frontend_options": fe_options,
        "alloc_options": options,
        "kernel_allocators": list(fe_cls.kernel_allocators),
    }

    def table():
        from rich.console import Group
        from rich.table import Table

        t = Table(
            title=f"{fe_cls.name} · {name} · {arch} · {comp} · {result['trace']}",
            title_justify="left",
        )
        t.add_column("figure")
        t.add_column("value", justify="right")
        for key in (
            "stored_pages",
            "succ_puts",
            "failed_puts",
            "compr_data_size",
            "pool_pages",
            "peak_pool_pages",
            "kernel_pairing",
        ):
            t.add_row(key, str(result[key]))
        for reason, count in result["rejects"].items():
            if count:
                t.add_row(f"  rejected: {reason}", str(count))
        extra = frontend_table(result["frontend_stats"])
        body = with_classes(t, result["allocator_stats"], classes)
        return body if extra is None else Group(body, extra)

    emit(document("page-replay", config, result), out_fmt, output, table)


@cli.command("gen-trace")
@click.argument("kind")
@click.option(
    "--param",
    "-p",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="generator parameter, e.g. count=1000 (repeatable)",
)
@click.option(
    "--output",
    "-o",
    default=None,
    metavar="FILE",
    help="write the trace to FILE (atomically; .gz, .xz or .zst compress it) instead of stdout",
)
def gen_trace(kind: str, params: tuple[str, ...], output: str | None) -> None:
    """Write a synthetic trace v1: constant, gauss, uniform, churn or phase-change.

    With no --param, constant, gauss, uniform and churn give the reference traces byte
    for byte.  `xcfbench list` shows each kind's parameters."""
    from xcfbench.compressed_io import atomic_text_output
    from xcfbench.io import check_output
    from xcfbench.sim.trace import format_trace
    from xcfbench.sim.tracegen import generate

    if output:
        check_output(output)
    trace = generate(kind, **dict(parse_alloc_options(params)))
    text = format_trace(trace.ops, (f"{trace.name}",) + trace.comments)
    if output:
        with atomic_text_output(output) as f:  # .gz, .xz, .zst: compressed
            f.write(text)
    else:
        sys.stdout.write(text)


@cli.command("list")
def list_() -> None:
    """The allocators, fills and compressors, one line each."""
    from xcfbench.output.tables import listing
    from xcfbench.sim.allocators import REGISTRY
    from xcfbench.sim.compressors import COMPRESSORS
    from xcfbench.sim.frontends import FRONTENDS
    from xcfbench.sim.tracegen import GENERATORS, parameters
    from xcfbench.sim.workloads import WORKLOADS

    allocs = [
        (n + (f" ({', '.join(c.aliases)})" if c.aliases else ""), c.summary)
        for n, c in REGISTRY.items()
    ]
    stdout_console().print(
        listing(
            {
                "allocators": allocs,
                "front ends": [(n, f.summary) for n, f in FRONTENDS.items()],
                "fills": [(n, w.summary) for n, w in WORKLOADS.items()],
                "compressors": [
                    (n, c.summary + (f"; {c.speed}" if c.speed else ""))
                    for n, c in COMPRESSORS.items()
                ],
                "trace kinds (gen-trace)": [
                    (n, " ".join(f"{k}={v}" for k, v in parameters(n).items())) for n in GENERATORS
                ],
            }
        )
    )
