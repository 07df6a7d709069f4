"""The command line: parse options, build a config, call the engine, render.  Thin.

Exactly one artifact goes to stdout (a table, or JSON); progress and warnings go to
stderr.  Exit status: 0 ok, 1 a regression gate failed, 2 bad input.
"""

from __future__ import annotations

import functools
import sys
from typing import Any, Callable

import click
from rich.console import Console

from . import __version__
from .config import RunConfig, format_size, parse_alloc_options, parse_size
from .errors import InputError
from .formats import FORMATS

PROG = "xcfbench"


def _stdout() -> Console:
    console = Console(soft_wrap=False)
    if not console.is_terminal:
        # A pipe or a file gets a table wide enough to need no wrapping.
        console = Console(soft_wrap=False, width=max(console.width, 160))
    return console


def _split(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def run_options(multi: bool = False) -> Callable:
    """Options shared by run, compare and reproduce; they become a RunConfig."""
    def decorate(f: Callable) -> Callable:
        opts = [
            click.option("--alloc", "-a", default=None if multi else "xcfmalloc",
                         help="allocator (xv, xcf, ...; see `xcfbench list`)"
                         + ("; comma-separated list" if multi else "")),
            click.option("--fill", "-f", default=None if multi else "text",
                         help="page contents: zero, text, zero-tagged, random"
                         + ("; comma-separated list" if multi else "")),
            click.option("--arch", default="i386", show_default=True,
                         help="struct sizes of i386 (the letter's machine) or x86_64"),
            click.option("--compressor", "-c", default="lzo1x-1", show_default=True,
                         help="lzo1x-1 (python-lzo) or lzo1x-1-linux31 (exact 2011 sizes)"),
            click.option("--size", "size", default="512M", show_default=True,
                         help="bytes the program writes (K/M/G suffixes)"),
            click.option("--limit", default="256M", show_default=True,
                         help="memory cgroup limit (memory.limit_in_bytes)"),
            click.option("--overhead-pages", type=int, default=None,
                         help="cgroup pages charged besides the workload's [default: 352]"),
            click.option("--reclaim-batch", type=int, default=None,
                         help="pages reclaimed at a time [default: 32, SWAP_CLUSTER_MAX]"),
            click.option("--zv-max-zsize", type=int, default=3584, show_default=True,
                         help="reject pages compressing past this (1..3584)"),
            click.option("--zv-max-mean-zsize", type=int, default=3584, show_default=True,
                         help="reject poor pages while the pool mean exceeds this (1..3584)"),
            click.option("--policy-percent", type=int, default=75, show_default=True,
                         help="zv_page_count_policy_percent of totalram"),
            click.option("--totalram", default="4G", show_default=True,
                         help="machine RAM for the policy cap"),
            click.option("--no-sentinel", is_flag=True,
                         help="zv_hdr without its debug sentinel (32 bytes on i386)"),
            click.option("--corpus", type=str, default=None,
                         help="text fill: use this file instead of corpora/english.txt"),
            click.option("--seed", type=int, default=0, show_default=True,
                         help="seed for the workload"),
            click.option("--compact", default=None,
                         help="run compaction: 'end' or 'every:N' puts"),
            click.option("--verify", is_flag=True,
                         help="store real bytes; read back and decompress every page"),
            click.option("--opt", "opts", multiple=True, metavar="NAME=VALUE",
                         help="allocator option, e.g. rule=v1 (repeatable)"),
            click.option("--chain-size", type=int, default=None,
                         help="zsmalloc pages per zspage at most, 4..16 [default: 8]"),
            click.option("--classes", is_flag=True,
                         help="also print the allocator's size-class table (zsmalloc)"),
            click.option("--json", "as_json", is_flag=True, help="print one JSON document"),
            click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
                         help="stdout: table (default), json (= --json), csv or markdown"),
            click.option("--output", "-o", "output", default=None, metavar="FILE",
                         help="also write the JSON document to FILE (atomically)"),
            click.option("--quiet", "-q", is_flag=True, help="no progress bar"),
        ]
        for opt in reversed(opts):
            f = opt(f)
        return f
    return decorate


def with_chain_size(alloc: str, options: tuple, chain_size: int | None,
                    strict: bool) -> tuple:
    """Add --chain-size to the options of an allocator that has one.  In a comparison of
    several allocators it applies to those with size classes; alone, it must apply."""
    from .allocators import get_allocator_class
    if chain_size is None:
        return options
    cls = get_allocator_class(alloc)
    if "chain_size" not in cls.options:
        if strict:
            raise InputError(f"--chain-size applies to zsmalloc, not {cls.name}")
        return options
    return tuple(sorted(dict(options, chain_size=chain_size).items()))


def build_config(alloc: str, fill: str, kw: dict[str, Any], strict: bool = True) -> RunConfig:
    extra = {}
    if kw["overhead_pages"] is not None:
        extra["overhead_pages"] = kw["overhead_pages"]
    if kw["reclaim_batch"] is not None:
        extra["reclaim_batch"] = kw["reclaim_batch"]
    return RunConfig(
        alloc=alloc, fill=fill, arch=kw["arch"], compressor=kw["compressor"],
        size_bytes=parse_size(kw["size"], "--size"), limit_bytes=parse_size(kw["limit"], "--limit"),
        zv_max_zsize=kw["zv_max_zsize"], zv_max_mean_zsize=kw["zv_max_mean_zsize"],
        zv_page_count_policy_percent=kw["policy_percent"],
        totalram_bytes=parse_size(kw["totalram"], "--totalram"),
        zv_hdr_sentinel=not kw["no_sentinel"], corpus=kw["corpus"], seed=kw["seed"],
        compact=kw["compact"], verify=kw["verify"],
        alloc_options=with_chain_size(alloc, parse_alloc_options(kw["opts"]),
                                      kw.get("chain_size"), strict), **extra)


def output_format(kw: dict[str, Any]) -> str:
    """--format, with --json as its older spelling; checks --output's directory too."""
    from .results import check_output_dir
    if kw.get("output"):
        check_output_dir(kw["output"])
    fmt = kw.get("fmt")
    if kw.get("as_json"):
        if fmt not in (None, "json"):
            raise InputError(f"--json and --format {fmt} ask for different outputs; use one")
        return "json"
    return fmt or "table"


def emit(doc: dict[str, Any], fmt: str, output: str | None, table: Callable[[], Any]) -> None:
    """The JSON document to --output (atomically), and one artifact in fmt on stdout."""
    from .formats import render_document
    from .results import dumps, write_atomic
    if output:
        write_atomic(output, dumps(doc))
    if fmt == "json":
        sys.stdout.write(dumps(doc))
    elif fmt == "table":
        _stdout().print(table())
    else:
        sys.stdout.write(render_document(doc, fmt))


def check_classes(alloc: str, wanted: bool) -> None:
    from .allocators import get_allocator_class
    if wanted and not get_allocator_class(alloc).has_size_classes:
        raise InputError(f"--classes: {alloc} has no size-class table (zsmalloc has)")


def _run_many(configs: list[RunConfig], quiet: bool):
    from .engine import run
    from .render import ProgressBar
    results = []
    for n, cfg in enumerate(configs, 1):
        label = f"{cfg.alloc} {cfg.fill}" + (f" ({n}/{len(configs)})" if len(configs) > 1 else "")
        with ProgressBar(label, enabled=not quiet) as bar:
            results.append(run(cfg, progress=bar))
    return results


def _config_doc(cfg: RunConfig, result) -> dict[str, Any]:
    return {**cfg.to_dict(), **result.provenance}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name=PROG)
def cli() -> None:
    """Exact page accounting for compressed-page allocators.

    Re-runs the 2011 xcfmalloc experiment (zcache over frontswap in a 256 MB cgroup) and
    replays allocation traces through faithful models of the kernel's allocators."""


@cli.command()
@run_options()
def run(alloc: str, fill: str, **kw: Any) -> None:
    """One run: write --size of --fill pages in a --limit cgroup; zcache stores what is
    pushed out through --alloc."""
    from .render import run_table, with_classes
    from .results import document
    cfg = build_config(alloc, fill, kw)
    fmt = output_format(kw)
    check_classes(cfg.alloc, kw["classes"])
    (result,) = _run_many([cfg], kw["quiet"])
    emit(document("run", _config_doc(cfg, result), result.to_dict()), fmt, kw["output"],
         lambda: with_classes(run_table(result), result.allocator_stats, kw["classes"]))


@cli.command()
@run_options(multi=True)
def compare(alloc: str | None, fill: str | None, **kw: Any) -> None:
    """The letter's table: every --alloc × every --fill, deltas against the first
    allocator in percentage points (lower is better)."""
    from .render import compare_table
    from .results import document
    allocs = _split(alloc or "xvmalloc,xcfmalloc")
    fills = _split(fill or "zero,text")
    configs = [build_config(a, f, kw, strict=False) for a in allocs for f in fills]
    if kw["chain_size"] is not None and not any(dict(c.alloc_options).get("chain_size")
                                                for c in configs):
        raise InputError("--chain-size applies to zsmalloc, which is not in --alloc")
    fmt = output_format(kw)
    results = _run_many(configs, kw["quiet"])
    common = {**configs[0].to_dict(), **results[0].provenance,
              "alloc": [c.alloc for c in configs[::len(fills)]], "fill": fills}
    emit(document("compare", common, [r.to_dict() for r in results]), fmt, kw["output"],
         lambda: compare_table(results))


@cli.command()
@run_options(multi=True)
def reproduce(alloc: str | None, fill: str | None, **kw: Any) -> None:
    """The letter's four cases, published and measured side by side, with why each
    row differs."""
    from .published import SEED_ROWS, compare_to_seed, curr_pages_note
    from .render import reproduce_table
    from .results import document
    if alloc or fill:
        raise InputError("reproduce runs the letter's four cases; use compare for others")
    configs = [build_config(row.alloc, row.fill, kw) for row in SEED_ROWS]
    fmt = output_format(kw)
    results = _run_many(configs, kw["quiet"])
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
    from .allocators import canonical_name, create
    from .arch import get_arch
    from .render import ProgressBar, replay_table, with_classes
    from .results import document
    from .trace import parse_compact, read_trace
    from .trace import replay as do_replay
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
    from .results import write_atomic
    from .trace import format_trace
    from .tracegen import generate
    trace = generate(kind, **dict(parse_alloc_options(params)))
    text = format_trace(trace.ops, (f"{trace.name}",) + trace.comments)
    if output:
        write_atomic(output, text)
    else:
        sys.stdout.write(text)


@cli.command("list")
def list_() -> None:
    """The allocators, fills and compressors, one line each."""
    from .allocators import REGISTRY
    from .compressors import COMPRESSORS
    from .render import listing
    from .tracegen import GENERATORS, parameters
    from .workloads import WORKLOADS
    allocs = [(n + (f" ({', '.join(c.aliases)})" if c.aliases else ""), c.summary)
              for n, c in REGISTRY.items()]
    _stdout().print(listing({
        "allocators": allocs,
        "fills": [(n, w.summary) for n, w in WORKLOADS.items()],
        "compressors": [(n, c.summary) for n, c in COMPRESSORS.items()],
        "trace kinds (gen-trace)": [
            (n, " ".join(f"{k}={v}" for k, v in parameters(n).items())) for n in GENERATORS],
    }))


def main(argv: list[str] | None = None) -> None:
    """Entry point: bad input is one line on stderr and exit status 2, never a traceback."""
    try:
        # Without standalone mode click returns an Exit's code instead of raising it.
        code = cli.main(args=argv, prog_name=PROG, standalone_mode=False)
    except InputError as e:
        _fail(str(e))
    except click.UsageError as e:
        _fail(e.format_message())
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        _fail("aborted", 130)
    except click.ClickException as e:
        _fail(e.format_message())
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except BrokenPipeError:
        sys.exit(0)
    sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str, status: int = 2) -> None:
    sys.stderr.write(f"{PROG}: error: {message}\n")
    sys.exit(status)


from . import cli_report  # noqa: E402,F401  (registers diff, check, sweep, plot)
