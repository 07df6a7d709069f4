"""Reading a user's inputs and writing outputs safely: bounded, atomic, one-line errors.

Every layer may use it; it imports nothing of xcfbench but the error type.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from typing import IO, Iterator

from xcfbench.errors import InputError


def read_input(path: str, what: str, binary: bool = False) -> str | bytes:
    """The whole of a user's input file, or an InputError that names the file and says
    what is wrong with it (what: "trace", "corpus", "result file")."""
    import os
    if os.path.isdir(path):
        raise InputError(f"{what} {path!r} is a directory, not a file")
    try:
        if binary:
            with open(path, "rb") as f:
                return f.read()
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        raise InputError(f"{what} {path!r} does not exist") from None
    except PermissionError:
        raise InputError(f"{what} {path!r} is not readable (permission denied)") from None
    except UnicodeDecodeError as e:
        raise InputError(f"{what} {path!r} is not UTF-8 text (byte {e.start})") from None
    except OSError as e:
        raise InputError(f"{what} {path!r} cannot be read: {e.strerror}") from None


def check_output_dir(path: str) -> str:
    """The directory path will be written in; an InputError now if it does not exist, so
    that a long run does not fail at its very end."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise InputError(f"cannot write {path!r}: directory {directory!r} does not exist")
    return directory


@contextlib.contextmanager
def atomic_open(path: str, mode: str = "w", perms: int = 0o666) -> Iterator[IO]:
    """Open a temporary file beside path and rename it over path when the block ends
    without an exception: a reader sees the old file or the whole new one, never half.
    perms: the creation mode before the umask (0o600 for files that hold memory)."""
    directory = check_output_dir(path)
    tmp = os.path.join(directory, f".xcfbench-{uuid.uuid4().hex}.tmp")
    try:
        # Not mkstemp: its 0600 would stick to the result; 0666 lets the umask decide.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, perms)
    except OSError as e:
        raise InputError(f"cannot write {path!r}: {e.strerror}") from None
    try:
        if perms != 0o666:
            os.fchmod(fd, perms)        # exactly perms, whatever the umask or the old file
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_atomic(path: str, text: str) -> None:
    with atomic_open(path) as f:
        f.write(text)
