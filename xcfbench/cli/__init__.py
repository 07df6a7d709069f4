"""The command line: the click group and one module per command family."""

from __future__ import annotations

import sys

import click

from xcfbench.cli import pages, report, run  # noqa: F401  (register their commands)
from xcfbench.cli.common import PROG, cli, usage_line
from xcfbench.errors import InputError

__all__ = ["cli", "main"]


def main(argv: list[str] | None = None) -> None:
    """Entry point: bad input is one line on stderr and exit status 2, never a traceback."""
    try:
        # Without standalone mode click returns an Exit's code instead of raising it.
        code = cli.main(args=argv, prog_name=PROG, standalone_mode=False)
    except InputError as e:
        _fail(str(e))
    except click.UsageError as e:               # the group's own options
        _fail(usage_line(e))
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
