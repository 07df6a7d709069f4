"""What every command shares: the click group, its one error path, the run options.

Exactly one artifact goes to stdout (a table, or JSON); progress and warnings go to
stderr.  Exit status: 0 ok, 1 a regression gate failed, 2 bad input.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from xcfbench import __version__
from xcfbench.errors import InputError
from xcfbench.output import FORMATS
from xcfbench.sim.allocators import twins
from xcfbench.sim.config import RunConfig, parse_alloc_options, parse_size

if TYPE_CHECKING:
    from rich.console import Console

PROG = "xcfbench"


def stdout_console() -> Console:
    from rich.console import Console  # here, not at the top: --help stays fast

    console = Console(soft_wrap=False)
    if not console.is_terminal:
        # A pipe or a file gets a table wide enough to need no wrapping.
        console = Console(soft_wrap=False, width=max(console.width, 160))
    return console


def split_list(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def run_options(multi: bool = False) -> Callable:
    """Options shared by run, compare and reproduce; they become a RunConfig."""

    def decorate(f: Callable) -> Callable:
        opts = [
            click.option(
                "--alloc",
                "-a",
                default=None if multi else "xcfmalloc",
                help="allocator (xv, xcf, ...; see `xcfbench list`)"
                + ("; comma-separated list" if multi else ""),
            ),
            click.option(
                "--fill",
                "-f",
                default=None if multi else "text",
                help="page contents: zero, text, zero-tagged, random, image:FILE"
                + ("; comma-separated list" if multi else ""),
            ),
            click.option(
                "--arch",
                default="i386",
                show_default=True,
                help="struct sizes of i386 (the letter's machine) or x86_64",
            ),
            click.option(
                "--compressor",
                "-c",
                default="lzo1x-1",
                show_default=True,
                help="lzo1x-1 (python-lzo), lzo1x-1-linux31 (exact 2011 sizes), or"
                " today's lzo, lzo-rle, lz4, lz4hc, zstd, deflate, 842"
                + ("; comma-separated list" if multi else ""),
            ),
            click.option(
                "--comp-opt",
                "comp_opts",
                multiple=True,
                metavar="NAME=VALUE",
                help="compressor option, e.g. level=9 (repeatable)",
            ),
            click.option(
                "--frontend",
                default="zcache",
                show_default=True,
                help="the kernel path pushed-out pages take (see `xcfbench list`)"
                + ("; comma-separated list" if multi else ""),
            ),
            click.option(
                "--size",
                "size",
                default="512M",
                show_default=True,
                help="bytes the program writes (K/M/G suffixes)",
            ),
            click.option(
                "--limit",
                default="256M",
                show_default=True,
                help="memory cgroup limit (memory.limit_in_bytes)",
            ),
            click.option(
                "--overhead-pages",
                type=int,
                default=None,
                help="cgroup pages charged besides the workload's [default: 352]",
            ),
            click.option(
                "--reclaim-batch",
                type=int,
                default=None,
                help="pages reclaimed at a time [default: 32, SWAP_CLUSTER_MAX]",
            ),
            click.option(
                "--zv-max-zsize",
                type=int,
                default=3584,
                show_default=True,
                help="reject pages compressing past this (1..3584)",
            ),
            click.option(
                "--zv-max-mean-zsize",
                type=int,
                default=3584,
                show_default=True,
                help="reject poor pages while the pool mean exceeds this (1..3584)",
            ),
            click.option(
                "--policy-percent",
                type=int,
                default=75,
                show_default=True,
                help="zv_page_count_policy_percent of totalram",
            ),
            click.option(
                "--totalram", default="4G", show_default=True, help="machine RAM for the policy cap"
            ),
            click.option(
                "--no-sentinel",
                is_flag=True,
                help="zv_hdr without its debug sentinel (32 bytes on i386)",
            ),
            click.option(
                "--corpus",
                type=str,
                default=None,
                help="text fill: use this file instead of corpora/english.txt",
            ),
            click.option(
                "--seed", type=int, default=0, show_default=True, help="seed for the workload"
            ),
            click.option(
                "--shuffle",
                is_flag=True,
                help="--fill image:FILE: its pages in a random order (by --seed)",
            ),
            click.option("--compact", default=None, help="run compaction: 'end' or 'every:N' puts"),
            click.option(
                "--ops",
                type=int,
                default=0,
                show_default=True,
                help="churn: page accesses after the initial write (swap-ins, re-evictions)",
            ),
            click.option(
                "--access",
                default=None,
                help="churn draw: sequential, uniform, zipf:S, phases:K[:S] [default: uniform]",
            ),
            click.option(
                "--dirty",
                default=None,
                help="churn: share of accesses that write new content (0..1 or N%) [default: 0]",
            ),
            click.option(
                "--verify",
                is_flag=True,
                help="store real bytes; read back and decompress every page",
            ),
            click.option(
                "--opt",
                "opts",
                multiple=True,
                metavar="NAME=VALUE",
                help="allocator option, e.g. rule=v1 (repeatable)",
            ),
            click.option(
                "--chain-size",
                type=str if multi else int,
                default=None,
                help="zsmalloc pages per zspage at most, 4..16 [default: 8]"
                + ("; comma-separated list" if multi else ""),
            ),
            click.option(
                "--classes",
                is_flag=True,
                help="also print the allocator's size-class table (zsmalloc)",
            ),
            click.option("--json", "as_json", is_flag=True, help="print one JSON document"),
            click.option(
                "--format",
                "fmt",
                type=click.Choice(FORMATS),
                default=None,
                help="stdout: table (default), json (= --json), csv or markdown",
            ),
            click.option(
                "--output",
                "-o",
                "output",
                default=None,
                metavar="FILE",
                help="also write the JSON document to FILE (atomically)",
            ),
            click.option("--quiet", "-q", is_flag=True, help="no progress bar"),
            *frontend_flags(),
        ]
        for opt in reversed(opts):
            f = opt(f)
        return f

    return decorate


# Front-end options on the command line: (flag, option key, parser, help).  Each becomes
# RunConfig.frontend_options[key]; a flag the chosen front end has no option for is an
# error (one line, exit 2), checked against the front end class's `options`.
def _int(flag: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            return int(text)
        except ValueError:
            raise InputError(f"bad {flag} {text!r}: expected an integer") from None

    return parse


def _bytes(flag: str, zero: bool = True) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if zero and str(text).strip() == "0":
            return 0
        return parse_size(text, flag)

    return parse


FRONTEND_FLAGS: tuple[tuple[str, str, Callable[[str], Any], str], ...] = (
    ("--zram-mode", "mode", str, "zram: swap (6.12 swap layer, default) or block"),
    ("--mem-limit", "mem_limit", _bytes("--mem-limit"), "zram mem_limit (K/M/G; 0 none)"),
    (
        "--recompress",
        "recompress",
        str,
        "zram: 'ALGO [type=huge|idle|huge_idle] [threshold=N] [max_pages=N]'",
    ),
    ("--writeback", "writeback", str, "zram writeback: huge, idle, huge_idle, incompressible"),
    (
        "--writeback-limit",
        "writeback_limit",
        _int("--writeback-limit"),
        "zram writeback_limit in pages (enables writeback_limit_enable)",
    ),
    ("--cpus", "cpus", _int("--cpus"), "zram swap mode: online CPUs (free-cache threshold)"),
    (
        "--swap-size",
        "swap_size",
        _bytes("--swap-size"),
        "zram swap mode: swap device size [default: --totalram]",
    ),
    (
        "--max-pool-percent",
        "max_pool_percent",
        _int("--max-pool-percent"),
        "zswap max_pool_percent of --totalram [default: 20]",
    ),
    (
        "--accept-threshold",
        "accept_threshold_percent",
        _int("--accept-threshold"),
        "zswap accept_threshold_percent [default: 90]",
    ),
    (
        "--zswap-max",
        "zswap_max",
        _bytes("--zswap-max"),
        "zswap: the cgroup's memory.zswap.max (K/M/G; 0 refuses all) [default: max]",
    ),
    (
        "--shrink-worker",
        "shrink_worker",
        str,
        "zswap: when the shrink worker runs: 'sync' (at the rejecting store, default) or 'off'",
    ),
)
FRONTEND_SWITCHES: tuple[tuple[str, str, Any, str], ...] = (
    (
        "--immediate-free",
        "free_batch",
        False,
        "zram swap mode: frees reach zram at once (6.15+), no 64-slot batches",
    ),
)


def frontend_flags() -> list[Callable]:
    out = [
        click.option(flag, flag.lstrip("-").replace("-", "_"), default=None, help=h)
        for flag, _, _, h in FRONTEND_FLAGS
    ]
    out += [
        click.option(flag, flag.lstrip("-").replace("-", "_"), is_flag=True, help=h)
        for flag, _, _, h in FRONTEND_SWITCHES
    ]
    return out


def frontend_options_of(
    frontend: str, kw: dict[str, Any], strict: bool = True
) -> tuple[tuple[str, Any], ...]:
    """The front-end flags given, as the front end's options; another front end's flag
    is an InputError naming it.  Not strict (a comparison of several front ends): a flag
    applies to the front ends that have it (check_frontend_flags says none has it)."""
    from xcfbench.sim.frontends import FRONTENDS, get_frontend_class

    cls = get_frontend_class(frontend)
    out: dict[str, Any] = {}
    given = [
        (flag, key, kw.get(flag.lstrip("-").replace("-", "_")), parse)
        for flag, key, parse, _ in FRONTEND_FLAGS
    ]
    given += [
        (flag, key, value if kw.get(flag.lstrip("-").replace("-", "_")) else None, lambda v: v)
        for flag, key, value, _ in FRONTEND_SWITCHES
    ]
    for flag, key, value, parse in given:
        if value is None:
            continue
        if key not in cls.options:
            if not strict:
                continue
            owners = [n for n, c in FRONTENDS.items() if key in c.options]
            raise InputError(
                f"{flag} is an option of {' and '.join(owners) or 'no front end'},"
                f" not of --frontend {cls.name}"
            )
        out[key] = parse(value)
    return tuple(sorted(out.items()))


def with_chain_size(alloc: str, options: tuple, chain_size: int | None, strict: bool) -> tuple:
    """Add --chain-size to the options of an allocator that has one.  In a comparison of
    several allocators it applies to those with size classes; alone, it must apply."""
    from xcfbench.sim.allocators import get_allocator_class

    if chain_size is None:
        return options
    cls = get_allocator_class(alloc)
    if "chain_size" not in cls.options:
        if strict:
            raise InputError(f"--chain-size applies to zsmalloc, not {cls.name}")
        return options
    return tuple(sorted(dict(options, chain_size=chain_size).items()))


def parse_chain_sizes(text: str | None) -> list[int | None]:
    """--chain-size of compare and sweep: a comma list of integers; none given: [None]."""
    if text is None:
        return [None]
    out: list[int | None] = []
    for item in split_list(str(text)):
        try:
            out.append(int(item))
        except ValueError:
            raise InputError(f"bad --chain-size {item!r}: expected an integer") from None
    if not out:
        raise InputError("--chain-size names nothing to compare")
    return out


def check_multi_options(frontends: list[str], configs: list[RunConfig], kw: dict[str, Any]) -> None:
    """Several front ends or allocators at once: each front-end flag, and --chain-size,
    must apply to at least one of them (the others run without it)."""
    from xcfbench.sim.frontends import FRONTENDS, get_frontend_class

    classes = [get_frontend_class(f) for f in frontends]
    given = [
        (flag, key)
        for flag, key, *_ in FRONTEND_FLAGS + FRONTEND_SWITCHES
        if kw.get(flag.lstrip("-").replace("-", "_")) not in (None, False)
    ]
    for flag, key in given:
        if not any(key in c.options for c in classes):
            owners = [n for n, c in FRONTENDS.items() if key in c.options]
            raise InputError(
                f"{flag} is an option of {' and '.join(owners) or 'no front end'},"
                f" not of --frontend {','.join(c.name for c in classes)}"
            )
    if kw.get("chain_size") is not None and not any(
        dict(c.alloc_options).get("chain_size") for c in configs
    ):
        raise InputError("--chain-size applies to zsmalloc, which is not in --alloc")


def expand_runs(
    alloc: str | None, fill: str | None, kw: dict[str, Any], varied: tuple[str, ...], verb: str
) -> list[RunConfig]:
    """compare's and sweep's configurations: every combination of --alloc, --fill and the
    options named in varied (comma-separated lists), in that order, which is the order of
    the axes a sweep's results file records."""
    from xcfbench.results.sweep import expand

    axes: dict[str, list[Any]] = {
        "alloc": split_list(alloc or "xvmalloc,xcfmalloc"),
        "fill": split_list(fill or "zero,text"),
    }
    for name in varied:
        axes[name] = parse_chain_sizes(kw[name]) if name == "chain_size" else split_list(kw[name])
    for name, values in axes.items():
        if not values:
            raise InputError(f"--{name.replace('_', '-')} names nothing to {verb}")

    def make(a: dict[str, Any]) -> RunConfig:
        return build_config(
            a["alloc"], a["fill"], {**kw, **{k: a[k] for k in varied}}, strict=False
        )

    configs = expand(axes, make)
    check_multi_options(axes["frontend"], configs, kw)
    return configs


def build_config(alloc: str, fill: str, kw: dict[str, Any], strict: bool = True) -> RunConfig:
    from xcfbench.sim.churn import parse_dirty

    extra = {}
    if kw["overhead_pages"] is not None:
        extra["overhead_pages"] = kw["overhead_pages"]
    if kw["reclaim_batch"] is not None:
        extra["reclaim_batch"] = kw["reclaim_batch"]
    return RunConfig(
        alloc=alloc,
        fill=fill,
        arch=kw["arch"],
        compressor=kw["compressor"],
        frontend=kw["frontend"],
        compressor_options=parse_alloc_options(kw["comp_opts"]),
        size_bytes=parse_size(kw["size"], "--size"),
        limit_bytes=parse_size(kw["limit"], "--limit"),
        zv_max_zsize=kw["zv_max_zsize"],
        zv_max_mean_zsize=kw["zv_max_mean_zsize"],
        zv_page_count_policy_percent=kw["policy_percent"],
        totalram_bytes=parse_size(kw["totalram"], "--totalram"),
        zv_hdr_sentinel=not kw["no_sentinel"],
        corpus=kw["corpus"],
        seed=kw["seed"],
        shuffle=kw.get("shuffle", False),
        ops=kw.get("ops") or 0,
        access=kw.get("access") or "uniform",
        dirty=parse_dirty(kw["dirty"]) if kw.get("dirty") is not None else 0.0,
        compact=kw["compact"],
        verify=kw["verify"],
        frontend_options=frontend_options_of(kw["frontend"], kw, strict),
        alloc_options=with_chain_size(
            alloc, parse_alloc_options(kw["opts"]), kw.get("chain_size"), strict
        ),
        **extra,
    )


def output_inputs(kw: dict[str, Any], *more: str | None) -> tuple[str | None, ...]:
    """The files a command reads, which its --output must not be."""
    return (kw.get("corpus"),) + more


def output_format(kw: dict[str, Any], inputs: tuple[str | None, ...] | None = None) -> str:
    """--format, with --json as its older spelling; checks --output before the run: its
    directory, its name, and that it is not one of the command's inputs."""
    from xcfbench.io import check_output

    if kw.get("output"):
        check_output(kw["output"], output_inputs(kw) if inputs is None else inputs)
    fmt = kw.get("fmt")
    if kw.get("as_json"):
        if fmt not in (None, "json"):
            raise InputError(f"--json and --format {fmt} ask for different outputs; use one")
        return "json"
    return fmt or "table"


def emit(
    doc: dict[str, Any],
    fmt: str,
    output: str | None,
    table: Callable[[], Any],
    inputs: tuple[str | None, ...] = (),
) -> None:
    """The JSON document to --output (atomically), and one artifact in fmt on stdout."""
    from xcfbench.io import write_atomic
    from xcfbench.output.formats import render_document
    from xcfbench.results.document import dumps

    if output:
        write_atomic(output, dumps(doc), inputs)
    if fmt == "json":
        sys.stdout.write(dumps(doc))
    elif fmt == "table":
        stdout_console().print(table())
    else:
        sys.stdout.write(render_document(doc, fmt))


def check_classes(alloc: str, wanted: bool) -> None:
    from xcfbench.sim.allocators import get_allocator_class

    if wanted and not get_allocator_class(alloc).has_size_classes:
        raise InputError(f"--classes: {alloc} has no size-class table (zsmalloc has)")


def run_many(configs: list[RunConfig], quiet: bool, trace_out: Any = None):
    from xcfbench.output.tables import ProgressBar
    from xcfbench.sim.engine import run

    results = []
    for n, cfg in enumerate(configs, 1):
        label = f"{cfg.alloc} {cfg.fill}" + (f" ({n}/{len(configs)})" if len(configs) > 1 else "")
        with ProgressBar(label, enabled=not quiet) as bar:
            results.append(run(cfg, progress=bar, trace_out=trace_out))
    return results


def config_doc(cfg: RunConfig, result) -> dict[str, Any]:
    return {**cfg.to_dict(), **result.provenance}


class BadInput(click.ClickException):
    """Bad input as click carries it: one line on stderr and exit status 2."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"{PROG}: error: {self.format_message()}", err=True)


def usage_line(e: click.UsageError) -> str:
    """click's usage error as one line, pointing at the command's help."""
    message = " ".join(e.format_message().split())
    path = e.ctx.command_path if e.ctx is not None else PROG
    return f"{message} (see '{path} -h')"


class Group(click.Group):
    """The group turns every InputError, and every usage error, into BadInput, so that
    the console script and a program invoking the group (CliRunner, an embedding tool)
    see the same one line and the same status."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except InputError as e:
            raise BadInput(str(e)) from None
        except click.UsageError as e:
            raise BadInput(usage_line(e)) from None


@click.group(
    PROG,
    cls=Group,
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, prog_name=PROG)
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Exact page accounting for compressed-page allocators.

    Re-runs the 2011 xcfmalloc experiment (zcache over frontswap in a 256 MB cgroup) and
    replays allocation traces through faithful models of the kernel's allocators."""
    if ctx.invoked_subcommand is None:  # bare `xcfbench`: the help, status 0
        click.echo(ctx.get_help())
        return
    problem = twins.native_problem()
    if problem is not None and not twins.pure_forced():
        click.echo(
            f"{PROG}: the compiled allocators are not built ({problem}); the pure-Python"
            " path runs: the same numbers, slower",
            err=True,
        )
