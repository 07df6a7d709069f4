"""The commands of real memory and recorded kernel traces: capture, profile, record, import.

Page images hold memory contents: they are written with mode 0600, and tests capture only
processes they start themselves with an empty environment.
"""

from __future__ import annotations

import os
import sys

import click

from xcfbench.cli.common import cli
from xcfbench.errors import InputError


def _note(message: str) -> None:
    sys.stderr.write(f"xcfbench: {message}\n")


@cli.command()
@click.argument("pids", nargs=-1, type=int)
@click.option(
    "--output",
    "-o",
    required=True,
    metavar="IMAGE",
    help="the page image to write (mode 0600, atomically)",
)
@click.option(
    "--freeze", is_flag=True, help="SIGSTOP the processes during the capture (always resumed)"
)
@click.option(
    "--all",
    "all_",
    is_flag=True,
    help="every process you may read (holds their memory: handle with care)",
)
@click.option("--quiet", "-q", is_flag=True, help="no summary on stderr")
def capture(pids: tuple[int, ...], output: str, freeze: bool, all_: bool, quiet: bool) -> None:
    """Write the pages of PID... that would go to swap (private anonymous memory, including
    copy-on-write copies of private file mappings) into a page image.

    The image holds memory contents and is written with mode 0600."""
    from xcfbench.io import atomic_open, check_output_dir
    from xcfbench.sim.capture import all_pids, check_process
    from xcfbench.sim.capture import capture as do_capture

    if all_ == bool(pids):
        raise InputError("give PIDs or --all, not both or neither")
    check_output_dir(output)
    if all_:
        targets = all_pids()
    else:
        targets = list(dict.fromkeys(pids))
        for pid in targets:  # no such process, or not permitted: before any write
            if pid <= 0:
                raise InputError(f"no process {pid}")
            check_process(pid)
    with atomic_open(output, "wb", perms=0o600) as f:
        checksum, meta, stats = do_capture(targets, f, freeze=freeze, skip_unreadable=all_)
    if stats.incomplete:
        _note(
            f"process {', '.join(stats.incomplete)} exited during the capture;"
            f" the image keeps the {stats.pages} pages read before"
        )
    if not quiet:
        _note(
            f"{output}: {stats.pages} pages ({stats.distinct} distinct, {stats.zero_pages}"
            f" zero) from {meta['processes']} process(es); {stats.swapped_out} swapped out"
            f" (counted, not read); mode 0600, holds memory contents;"
            f" checksum {checksum[:16]}"
        )


@cli.command()
@click.argument("image")
@click.option(
    "--output", "-o", required=True, metavar="PROFILE", help="the profile to write (atomically)"
)
@click.option(
    "--compressor",
    "-c",
    "only",
    multiple=True,
    help="record only these compressors (repeatable) [default: every registered]",
)
@click.option(
    "--level",
    "levels",
    multiple=True,
    metavar="NAME=N",
    help="also record compressor NAME at level N (repeatable)",
)
@click.option("--quiet", "-q", is_flag=True, help="no summary on stderr")
def profile(
    image: str, output: str, only: tuple[str, ...], levels: tuple[str, ...], quiet: bool
) -> None:
    """Write a shareable profile of IMAGE: per page its flags (zero, same-filled), its
    compressed length under every registered compressor and call, and a hash keyed with a
    random key that is not kept. No byte of memory."""
    from xcfbench.io import atomic_open, check_output_dir
    from xcfbench.sim.images import open_container, write_profile

    comps = profile_compressors(only, levels)
    check_output_dir(output)
    c = open_container(image)
    if c.kind != "image":
        raise InputError(f"{image!r} is a profile already; profile reads a page image")
    with atomic_open(output, "wb") as f:
        checksum, meta = write_profile(c, f, comps, os.urandom(32))
    if not quiet:
        _note(
            f"{output}: {meta['pages']} pages, {meta['distinct_pages']} distinct,"
            f" {len(comps)} compressor calls; checksum {checksum[:16]}"
        )


def profile_compressors(only: tuple[str, ...], levels: tuple[str, ...]) -> list:
    """Every registered compressor (or only those named), for each call it models, at its
    default level and each level asked for."""
    from xcfbench.sim.compressors import COMPRESSORS, canonical_compressor

    names = [canonical_compressor(n) for n in only] or list(COMPRESSORS)
    extra: dict[str, list[int]] = {}
    for item in levels:
        name, sep, raw = item.partition("=")
        try:
            extra.setdefault(canonical_compressor(name.strip()), []).append(int(raw))
        except ValueError:
            raise InputError(f"bad --level {item!r}: expected NAME=N") from None
    comps = []
    for name in names:
        cls = COMPRESSORS[name]
        for call in cls.calls:
            for level in dict.fromkeys([None, *extra.get(name, [])]):
                comps.append(cls(level=level, call=call))
    return comps


@cli.command()
@click.option(
    "--print-bpftrace",
    "print_bpftrace",
    is_flag=True,
    help="print the bpftrace program that records zs_malloc and zs_free",
)
def record(print_bpftrace: bool) -> None:
    """Record a kernel's zsmalloc calls: prints the bpftrace program to run as root;
    `xcfbench import` turns its output into a trace."""
    from xcfbench.sim.kimport import BPFTRACE

    if not print_bpftrace:
        raise InputError(
            "record runs nowhere by itself: use --print-bpftrace, run the"
            " program with bpftrace as root, then `xcfbench import`"
        )
    sys.stdout.write(BPFTRACE)


@cli.command("import")
@click.argument("raw")
@click.option(
    "--output",
    "-o",
    required=True,
    metavar="TRACE",
    help="the trace v1 to write (atomically; .gz, .xz or .zst compress it)",
)
@click.option("--quiet", "-q", is_flag=True, help="no summary on stderr")
def import_(raw: str, output: str, quiet: bool) -> None:
    """Turn the output of `record --print-bpftrace`'s program (plain, .gz, .xz or .zst)
    into trace v1, streaming: handles become ids, what cannot be converted is counted."""
    from xcfbench.compressed_io import atomic_text_output, close_text_stream, open_text_stream
    from xcfbench.io import check_output_dir
    from xcfbench.sim.kimport import convert

    check_output_dir(output)
    src = open_text_stream(raw, "recording")
    name = os.path.basename(raw)
    try:
        with atomic_text_output(output) as out:
            out.write(
                f"# xcfbench trace v1\n# {name}\n# imported by xcfbench import from a"
                " bpftrace recording of zs_malloc/zs_free\n"
            )
            ops, stats = convert(src, name)
            for line in ops:
                out.write(line + "\n")
            out.write("".join(f"# {c}\n" for c in stats.comments()))
    except _DECODE_ERRORS() as e:
        raise InputError(f"recording {raw!r} cannot be read: {e}") from None
    finally:
        close_text_stream(src)
    if not quiet:
        dropped = {
            k: v
            for k, v in vars(stats).items()
            if k not in ("allocs", "frees", "swap_events") and v
        }
        _note(
            f"{output}: {stats.allocs} allocations, {stats.frees} frees"
            + (f"; {', '.join(f'{k} {v}' for k, v in dropped.items())}" if dropped else "")
        )


def _DECODE_ERRORS() -> tuple[type[BaseException], ...]:
    """What reading a damaged compressed or non-UTF-8 stream raises."""
    import lzma
    import zlib

    errors: tuple[type[BaseException], ...] = (
        UnicodeDecodeError,
        EOFError,
        OSError,
        lzma.LZMAError,
        zlib.error,
    )
    try:
        import zstandard

        errors += (zstandard.ZstdError,)
    except ImportError:
        pass
    return errors
