"""The command line: the click group and one module per command family."""

from __future__ import annotations

import errno
import os
import signal
import sys

import click

from xcfbench.cli import images, pages, report, run  # noqa: F401  (register their commands)
from xcfbench.cli.common import PROG, cli, usage_line
from xcfbench.errors import InputError

__all__ = ["cli", "main"]


class Terminated(SystemExit):
    """SIGTERM, raised in the main thread so that temporary files are removed and the
    worker pool is shut down on the way out, as on Ctrl-C."""


def _on_sigterm(signum, frame) -> None:
    raise Terminated(128 + signal.SIGTERM)


def main(argv: list[str] | None = None) -> None:
    """Entry point: bad input is one line on stderr and exit status 2, never a traceback."""
    if sys.stdout is None:
        _fail("standard output is closed; redirect it to a file or /dev/null")
    try:
        signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread (an embedding program)
        pass
    try:
        # Without standalone mode click returns an Exit's code instead of raising it.
        code = cli.main(args=argv, prog_name=PROG, standalone_mode=False)
        sys.stdout.flush()
    except InputError as e:
        _fail(str(e))
    except click.UsageError as e:  # the group's own options
        _fail(usage_line(e))
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        _fail("interrupted", 130)
    except click.ClickException as e:
        _fail(e.format_message(), e.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except Terminated:
        _fail("terminated", 128 + signal.SIGTERM)
    except BrokenPipeError:
        _silence_stdout()
        sys.exit(0)
    except OSError as e:
        _silence_stdout()
        if e.errno == errno.EPIPE:
            sys.exit(0)
        where = f" {e.filename!r}" if e.filename else " standard output"
        _fail(
            f"cannot write{where}: {e.strerror or e}"
            if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO)
            else f"{e.strerror or e}" + (f": {e.filename!r}" if e.filename else "")
        )
    except RecursionError:
        _fail("input nested too deeply")
    except MemoryError as e:  # a live set past the machine's memory or a twin's limits
        _silence_stdout()
        _fail(f"out of memory{f' ({e})' if str(e) else ''}: the run holds more than fits")
    sys.exit(code if isinstance(code, int) else 0)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's last flush of what is still
    buffered does not print a second error."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def _fail(message: str, status: int = 2) -> None:
    if sys.stderr is not None:
        try:
            sys.stderr.write(f"{PROG}: error: {message}\n")
            sys.stderr.flush()
        except OSError:
            pass
    sys.exit(status)
