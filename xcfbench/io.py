"""Reading a user's inputs and writing outputs safely: bounded, atomic, one-line errors.

Every layer may use it; it imports nothing of xcfbench but the error type.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
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


def check_input_file(path: str, what: str) -> None:
    """An InputError now unless path ('-' is stdin) can be read as a stream of bytes: a
    regular file that is not empty, or a pipe.  Directories and devices are refused."""
    if path == "-":
        return
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputError(f"{what} {path!r} does not exist") from None
    except OSError as e:
        raise InputError(f"{what} {path!r} cannot be read: {e.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{what} {path!r} is a directory, not a file")
    if stat.S_ISBLK(st.st_mode) or stat.S_ISCHR(st.st_mode):
        raise InputError(f"{what} {path!r} is a device, not a file")
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISFIFO(st.st_mode)):
        raise InputError(f"{what} {path!r} is not a regular file or a pipe")
    if stat.S_ISREG(st.st_mode) and st.st_size == 0:
        raise InputError(f"{what} {path!r} is empty")
    if not os.access(path, os.R_OK):
        raise InputError(f"{what} {path!r} is not readable (permission denied)")


def iter_chunks(path: str, what: str, size: int) -> Iterator[bytes]:
    """path ('-': stdin) as consecutive chunks of size bytes, the last one shorter if the
    input ends there; read one chunk at a time, so any length takes constant memory.  A
    pipe is read as a stream.  InputError for what check_input_file refuses, and for an
    input that turns out empty."""
    check_input_file(path, what)
    try:
        f = sys.stdin.buffer if path == "-" else open(path, "rb")
    except PermissionError:
        raise InputError(f"{what} {path!r} is not readable (permission denied)") from None
    except OSError as e:
        raise InputError(f"{what} {path!r} cannot be read: {e.strerror}") from None
    try:
        first = True
        while True:
            try:
                chunk = f.read(size)        # a buffered read: whole chunks from pipes too
            except OSError as e:
                raise InputError(f"{what} {path!r} cannot be read: {e.strerror}") from None
            if not chunk:
                if first:
                    raise InputError(f"{what} {path!r} is empty")
                return
            first = False
            yield chunk
    finally:
        if f is not sys.stdin.buffer:
            f.close()


def iter_pages(path: str, what: str, page_size: int = 4096) -> Iterator[bytes]:
    """The pages of path, the last one padded with zeros (iter_chunks)."""
    for chunk in iter_chunks(path, what, page_size):
        yield chunk if len(chunk) == page_size else chunk + bytes(page_size - len(chunk))


def check_output_dir(path: str) -> str:
    """The directory path will be written in; an InputError now if it does not exist, so
    that a long run does not fail at its very end."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise InputError(f"cannot write {path!r}: directory {directory!r} does not exist")
    return directory


@contextlib.contextmanager
def atomic_open(path: str, mode: str = "w") -> Iterator[IO]:
    """Open a temporary file beside path and rename it over path when the block ends
    without an exception: a reader sees the old file or the whole new one, never half."""
    directory = check_output_dir(path)
    tmp = os.path.join(directory, f".xcfbench-{uuid.uuid4().hex}.tmp")
    try:
        # Not mkstemp: its 0600 would stick to the result; 0666 lets the umask decide.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as e:
        raise InputError(f"cannot write {path!r}: {e.strerror}") from None
    try:
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
