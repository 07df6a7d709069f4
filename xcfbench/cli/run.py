"""The commands that simulate: run, compare, reproduce, replay, gen-trace, list.

Thin: parse options, build a config, call the simulation, hand the result to a renderer.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from xcfbench.cli.common import (FORMATS, build_config, check_classes, cli, config_doc, emit, output_format,
                                 run_many, run_options, split_list, stdout_console,
                                 with_chain_size)
from xcfbench.errors import InputError
from xcfbench.sim.config import parse_alloc_options
@cli.command()
@run_options()
def run(alloc: str, fill: str, **kw: Any) -> None:
    """One run: write --size of --fill pages in a --limit cgroup; zcache stores what is
    pushed out through --alloc."""
    from xcfbench.output.tables import run_table, with_classes
    from xcfbench.results.document import document
    cfg = build_config(alloc, fill, kw)
    fmt = output_format(kw)
    check_classes(cfg.alloc, kw["classes"])
    (result,) = run_many([cfg], kw["quiet"])
    emit(document("run", config_doc(cfg, result), result.to_dict()), fmt, kw["output"],
         lambda: with_classes(run_table(result), result.allocator_stats, kw["classes"]))


@cli.command()
@run_options(multi=True)
def compare(alloc: str | None, fill: str | None, **kw: Any) -> None:
    """The letter's table: every --alloc × every --fill, deltas against the first
    allocator in percentage points (lower is better)."""
    from xcfbench.output.tables import compare_table
    from xcfbench.results.document import document
    allocs = split_list(alloc or "xvmalloc,xcfmalloc")
    fills = split_list(fill or "zero,text")
    configs = [build_config(a, f, kw, strict=False) for a in allocs for f in fills]
    if kw["chain_size"] is not None and not any(dict(c.alloc_options).get("chain_size")
                                                for c in configs):
        raise InputError("--chain-size applies to zsmalloc, which is not in --alloc")
    fmt = output_format(kw)
    results = run_many(configs, kw["quiet"])
    common = {**configs[0].to_dict(), **results[0].provenance,
              "alloc": [c.alloc for c in configs[::len(fills)]], "fill": fills}
    emit(document("compare", common, [r.to_dict() for r in results]), fmt, kw["output"],
         lambda: compare_table(results))


@cli.command()
@run_options(multi=True)
def reproduce(alloc: str | None, fill: str | None, **kw: Any) -> None:
    """The letter's four cases, published and measured side by side, with why each
    row differs."""
    from xcfbench.results.published import SEED_ROWS, compare_to_seed, curr_pages_note
    from xcfbench.output.tables import reproduce_table
    from xcfbench.results.document import document
    if alloc or fill:
        raise InputError("reproduce runs the letter's four cases; use compare for others")
    configs = [build_config(row.alloc, row.fill, kw) for row in SEED_ROWS]
    fmt = output_format(kw)
    results = run_many(configs, kw["quiet"])
    rows = [compare_to_seed(row, res, cfg) for row, res, cfg in zip(SEED_ROWS, results, configs)]
    common = {**configs[0].to_dict(), **results[0].provenance, "alloc": None, "fill": None}
    emit(document("reproduce", common, rows), fmt, kw["output"], lambda: reproduce_table(rows, curr_pages_note(configs[0])))


@cli.command()
@click.option("--alloc", "-a", required=True, help="allocator (see `xcfbench list`)")
@click.option("--arch", default="i386", show_default=True, help="i386 or x86_64")
@click.option("--verify", is_flag=True, help="store real bytes; check every object")
@click.option("--compact", default=None, help="'end' or 'every:N' operations")
@click.option("--opt", "opts", multiple=True, metavar="NAME=VALUE", help="allocator option")
@click.option("--chain-size", type=int, default=None,
              help="zsmalloc pages per zspage at most, 4..16 [default: 8]")
@click.option("--classes", is_flag=True, help="also print the size-class table (zsmalloc)")
@click.option("--json", "as_json", is_flag=True, help="print one JSON document")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
              help="stdout: table (default), json (= --json), csv or markdown")
@click.option("--output", "-o", default=None, metavar="FILE",
              help="also write the JSON document to FILE (atomically)")
@click.option("--quiet", "-q", is_flag=True, help="no progress bar")
@click.argument("trace_path", metavar="TRACE")
def replay(alloc: str, arch: str, verify: bool, compact: str | None, opts: tuple[str, ...],
           chain_size: int | None, classes: bool, as_json: bool, fmt: str | None,
           output: str | None, quiet: bool, trace_path: str) -> None:
    """Replay a trace v1 file through an allocator and report its page accounting."""
    from xcfbench.sim.allocators import canonical_name, create
    from xcfbench.sim.arch import get_arch
    from xcfbench.output.tables import ProgressBar, replay_table, with_classes
    from xcfbench.results.document import document
    from xcfbench.sim.trace import parse_compact, read_trace
    from xcfbench.sim.trace import replay as do_replay
    name = canonical_name(alloc)
    arch_info = get_arch(arch)
    options = dict(with_chain_size(name, parse_alloc_options(opts), chain_size, strict=True))
    check_classes(name, classes)
    create(name, arch_info, **options)        # bad option values fail before the trace is read
    parse_compact(compact)
    fmt = output_format({"fmt": fmt, "as_json": as_json, "output": output})
    trace = read_trace(trace_path)
    with ProgressBar(f"replay {trace.name}", enabled=not quiet) as bar:
        result = do_replay(trace, name, arch_info, verify=verify, compact=compact,
                           options=options, progress=bar)
    config = {"alloc": name, "arch": arch_info.name, "trace": trace.name,
              "verify": verify, "compact": compact, "alloc_options": options}
    emit(document("replay", config, result.to_dict()), fmt, output,
         lambda: with_classes(replay_table(result), result.allocator_stats, classes))
    if verify and result.verify_errors:
        raise click.exceptions.Exit(1)


@cli.command("gen-trace")
@click.argument("kind")
@click.option("--param", "-p", "params", multiple=True, metavar="NAME=VALUE",
              help="generator parameter, e.g. count=1000 (repeatable)")
@click.option("--output", "-o", default=None, metavar="FILE",
              help="write the trace to FILE (atomically) instead of stdout")
def gen_trace(kind: str, params: tuple[str, ...], output: str | None) -> None:
    """Write a synthetic trace v1: constant, gauss, uniform, churn or phase-change.

    With no --param, constant, gauss, uniform and churn give the reference traces byte
    for byte.  `xcfbench list` shows each kind's parameters."""
    from xcfbench.io import write_atomic
    from xcfbench.sim.trace import format_trace
    from xcfbench.sim.tracegen import generate
    trace = generate(kind, **dict(parse_alloc_options(params)))
    text = format_trace(trace.ops, (f"{trace.name}",) + trace.comments)
    if output:
        write_atomic(output, text)
    else:
        sys.stdout.write(text)


@cli.command("list")
def list_() -> None:
    """The allocators, fills and compressors, one line each."""
    from xcfbench.sim.allocators import REGISTRY
    from xcfbench.sim.compressors import COMPRESSORS
    from xcfbench.sim.frontends import FRONTENDS
    from xcfbench.output.tables import listing
    from xcfbench.sim.tracegen import GENERATORS, parameters
    from xcfbench.sim.workloads import WORKLOADS
    allocs = [(n + (f" ({', '.join(c.aliases)})" if c.aliases else ""), c.summary)
              for n, c in REGISTRY.items()]
    stdout_console().print(listing({
        "allocators": allocs,
        "front ends": [(n, f.summary) for n, f in FRONTENDS.items()],
        "fills": [(n, w.summary) for n, w in WORKLOADS.items()],
        "compressors": [(n, c.summary + (f"; {c.speed}" if c.speed else ""))
                        for n, c in COMPRESSORS.items()],
        "trace kinds (gen-trace)": [
            (n, " ".join(f"{k}={v}" for k, v in parameters(n).items())) for n in GENERATORS],
    }))
