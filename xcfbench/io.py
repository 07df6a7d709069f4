"""Reading a user's inputs and writing outputs safely: bounded, atomic, one-line errors.

Every layer may use it; it imports nothing of xcfbench but the error type.

Inputs, by kind
---------------
* A **stream** (a trace): a regular file, a pipe, `<(zcat big.trace.gz)`, or `-` for
  standard input.  It is read a line at a time (open_stream), so its length is not bounded;
  a line is (MAX_LINE_BYTES).
* A **document** (a result file, a corpus): a regular file read whole (read_input), under
  a size bound (MAX_DOCUMENT_BYTES, MAX_CORPUS_BYTES), refused naming the bound.
* A directory or a device is refused in one line, whatever the kind.

Outputs
-------
check_output() refuses, before a command runs, an output path that is a directory, not a
regular file, an input of the same command (same inode), a name too long, a file with
other hard links, or in a directory that does not exist.  atomic_open() writes a temporary
file beside the target and renames it over the target: a symlink is written through (its
target is replaced, the link kept), an existing file keeps its mode.  A temporary file
left by a process killed with SIGKILL is removed by the next write into its directory.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from typing import IO, BinaryIO, Literal, overload

from xcfbench.errors import InputError

MiB = 1 << 20
MAX_DOCUMENT_BYTES = 256 * MiB  # a result file: diff, check, plot, sweep --results
MAX_CORPUS_BYTES = 64 * MiB  # a corpus: --corpus
MAX_LINE_BYTES = 4096  # a line of a trace

# .xcfbench-PID-HEX.tmp: the pid says whether the writer is still alive.
_TMP_NAME = re.compile(r"^\.xcfbench-(\d+)-[0-9a-f]{32}\.tmp$")
STALE_TMP_SECONDS = 60


def _size(n: int) -> str:
    return f"{n // MiB} MiB" if n % MiB == 0 else f"{n} bytes"


def _open_error(path: str, what: str, e: OSError) -> InputError:
    if isinstance(e, FileNotFoundError):
        return InputError(f"{what} {path!r} does not exist")
    if isinstance(e, PermissionError):
        return InputError(f"{what} {path!r} is not readable (permission denied)")
    if isinstance(e, IsADirectoryError):
        return InputError(f"{what} {path!r} is a directory, not a file")
    return InputError(f"{what} {path!r} cannot be read: {e.strerror or e}")


def _kind_error(path: str, what: str, mode: int, allow_fifo: bool) -> InputError | None:
    if stat.S_ISREG(mode) or (allow_fifo and stat.S_ISFIFO(mode)):
        return None
    if stat.S_ISDIR(mode):
        return InputError(f"{what} {path!r} is a directory, not a file")
    kind = (
        "a character device"
        if stat.S_ISCHR(mode)
        else "a block device"
        if stat.S_ISBLK(mode)
        else "a FIFO"
        if stat.S_ISFIFO(mode)
        else "a socket"
        if stat.S_ISSOCK(mode)
        else "not a regular file"
    )
    need = "a regular file or a pipe" if allow_fifo else "a regular file"
    return InputError(f"{what} {path!r} is {kind}; it must be {need}")


def _open_checked(path: str, what: str, allow_fifo: bool) -> int:
    """A read-only descriptor of path, refused unless it is a regular file (or a pipe).
    O_NONBLOCK so that opening a FIFO nobody writes to does not hang before the check."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise _open_error(path, what, e) from None
    try:
        mode = os.fstat(fd).st_mode
        error = _kind_error(path, what, mode, allow_fifo)
        if error is not None:
            raise error
        if stat.S_ISFIFO(mode):
            # A FIFO opened without blocking reads as empty until a writer comes: open
            # the same FIFO again, waiting for its writer as `cat FIFO` does.
            again = f"/proc/self/fd/{fd}" if os.path.exists("/proc/self/fd") else path
            try:
                blocking = os.open(again, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            except OSError as e:
                raise _open_error(path, what, e) from None
            os.close(fd)
            fd = blocking
    except BaseException:
        os.close(fd)
        raise
    return fd


@overload
def read_input(
    path: str,
    what: str,
    binary: Literal[False] = False,
    limit: int = MAX_DOCUMENT_BYTES,
    allow_fifo: bool = False,
) -> str: ...


@overload
def read_input(
    path: str,
    what: str,
    binary: Literal[True],
    limit: int = MAX_DOCUMENT_BYTES,
    allow_fifo: bool = False,
) -> bytes: ...


@overload
def read_input(
    path: str,
    what: str,
    binary: bool = False,
    limit: int = MAX_DOCUMENT_BYTES,
    allow_fifo: bool = False,
) -> str | bytes: ...


def read_input(
    path: str,
    what: str,
    binary: bool = False,
    limit: int = MAX_DOCUMENT_BYTES,
    allow_fifo: bool = False,
) -> str | bytes:
    """The whole of a user's input document (a regular file of at most limit bytes, or
    with allow_fifo a pipe), or an InputError that names the file and says what is wrong
    with it (what: "corpus", "result file")."""
    fd = _open_checked(path, what, allow_fifo=allow_fifo)
    try:
        with os.fdopen(fd, "rb") as f:
            data = f.read(limit + 1)
    except OSError as e:
        raise InputError(f"{what} {path!r} cannot be read: {e.strerror or e}") from None
    if len(data) > limit:
        raise too_large(path, what, limit)
    if binary:
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{what} {path!r} is not UTF-8 text (byte {e.start})") from None


def too_large(path: str, what: str, limit: int) -> InputError:
    return InputError(
        f"{what} {path!r} is larger than {_size(limit)}, the most xcfbench reads as a {what}"
    )


def check_input_file(path: str, what: str) -> None:
    """An InputError now unless path ('-' is stdin) can be read as a stream of bytes: a
    regular file that is not empty, or a pipe.  Nothing is opened: a pipe's writer must
    not see its reader come and go."""
    if path == "-":
        return
    try:
        st = os.stat(path)
    except OSError as e:
        raise _open_error(path, what, e) from None
    error = _kind_error(path, what, st.st_mode, allow_fifo=True)
    if error is not None:
        raise error
    if not os.access(path, os.R_OK):
        raise InputError(f"{what} {path!r} is not readable (permission denied)")
    if stat.S_ISREG(st.st_mode) and st.st_size == 0:
        raise InputError(f"{what} {path!r} is empty")


def iter_chunks(path: str, what: str, size: int) -> Iterator[bytes]:
    """path ('-': stdin) as consecutive chunks of size bytes, the last one shorter if the
    input ends there; read one chunk at a time, so any length takes constant memory.  A
    regular file or a pipe (a directory or a device is refused, as everywhere); an input
    that turns out empty is refused too."""
    if path == "-":
        if sys.stdin is None:
            raise InputError(f"{what} '-': standard input is closed")
        f: BinaryIO = sys.stdin.buffer
    else:
        f = os.fdopen(_open_checked(path, what, allow_fifo=True), "rb")
    try:
        first = True
        while True:
            try:
                chunk = f.read(size)  # a buffered read: whole chunks from pipes too
            except OSError as e:
                raise InputError(f"{what} {path!r} cannot be read: {e.strerror}") from None
            if not chunk:
                if first:
                    raise InputError(f"{what} {path!r} is empty")
                return
            first = False
            yield chunk
    finally:
        if path != "-":
            f.close()


def iter_pages(path: str, what: str, page_size: int = 4096) -> Iterator[bytes]:
    """The pages of path, the last one padded with zeros (iter_chunks)."""
    for chunk in iter_chunks(path, what, page_size):
        yield chunk if len(chunk) == page_size else chunk + bytes(page_size - len(chunk))


@contextlib.contextmanager
def open_stream(path: str, what: str) -> Iterator[BinaryIO]:
    """A binary stream of path, read a line at a time: a regular file, a pipe, a process
    substitution, or '-' for standard input; a directory or a device is refused."""
    if path == "-":
        stdin = sys.stdin
        if stdin is None:
            raise InputError(f"{what} '-': standard input is closed")
        yield stdin.buffer
        return
    fd = _open_checked(path, what, allow_fifo=True)
    with os.fdopen(fd, "rb") as f:
        yield f


def input_identities(paths: Iterable[str | None]) -> set[tuple[int, int]]:
    """(device, inode) of every input path that exists ('-' and None skipped)."""
    out = set()
    for p in paths:
        if p and p != "-":
            try:
                st = os.stat(p)
            except OSError:
                continue
            out.add((st.st_dev, st.st_ino))
    return out


def _name_max(directory: str) -> int:
    try:
        return os.pathconf(directory, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        return 255


def check_output(path: str, inputs: Iterable[str | None] = (), what: str = "--output") -> str:
    """The real file an output path will replace (a symlink resolved), checked before the
    command runs; InputError in one line when the path cannot or must not be written."""
    if not path:
        raise InputError(f"{what}: empty file name")
    if os.path.isdir(path):
        raise InputError(f"cannot write {what} {path!r}: it is a directory; name a file")
    if path.endswith(("/", os.sep)):
        raise InputError(f"cannot write {what} {path!r}: it ends in '/'; name a file")
    target = os.path.realpath(path)
    directory, name = os.path.split(target)
    if not os.path.isdir(directory):
        raise InputError(f"cannot write {path!r}: directory {directory!r} does not exist")
    limit = _name_max(directory)
    if len(os.fsencode(name)) > limit:
        raise InputError(f"cannot write {path!r}: the file name is longer than {limit} bytes")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise InputError(f"cannot write {path!r}: directory {directory!r} is not writable")
    try:
        st = os.stat(target)
    except FileNotFoundError:
        return target
    except OSError as e:
        raise InputError(f"cannot write {path!r}: {e.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"cannot write {what} {path!r}: it exists and is not a regular file")
    if (st.st_dev, st.st_ino) in input_identities(inputs):
        raise InputError(f"cannot write {what} {path!r}: it is also an input of this command")
    if st.st_nlink > 1:
        raise InputError(
            f"cannot write {what} {path!r}: it has {st.st_nlink} hard links, and"
            " replacing it would break them; write elsewhere"
        )
    return target


def check_output_dir(path: str) -> str:
    """The directory path will be written in (see check_output)."""
    return os.path.dirname(check_output(path))


def remove_stale_temps(directory: str, now: float | None = None) -> int:
    """Remove our temporary files in directory that a killed process left behind: older
    than STALE_TMP_SECONDS and named after a process that no longer exists."""
    now = time.time() if now is None else now
    removed = 0
    try:
        names = os.listdir(directory)
    except OSError:
        return 0
    for name in names:
        m = _TMP_NAME.match(name)
        if not m:
            continue
        full = os.path.join(directory, name)
        try:
            st = os.lstat(full)
            if not stat.S_ISREG(st.st_mode) or now - st.st_mtime < STALE_TMP_SECONDS:
                continue
            if _alive(int(m.group(1))):
                continue
            os.unlink(full)
            removed += 1
        except OSError:
            continue
    return removed


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True
    return True


@contextlib.contextmanager
def atomic_open(
    path: str, mode: str = "w", inputs: Iterable[str | None] = (), perms: int | None = None
) -> Iterator[IO]:
    """Open a temporary file beside path's target and rename it over the target when the
    block ends without an exception: a reader sees the old file or the whole new one,
    never half.  A symlink is written through; an existing file keeps its mode, unless
    perms sets one exactly (0o600 for files that hold memory contents)."""
    target = check_output(path, inputs)
    directory = os.path.dirname(target)
    remove_stale_temps(directory)
    tmp = os.path.join(directory, f".xcfbench-{os.getpid()}-{uuid.uuid4().hex}.tmp")
    try:
        old_mode = stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        old_mode = None
    try:
        # Not mkstemp: its 0600 would stick to the result; 0666 lets the umask decide.
        # A private file (perms 0600) is private from its creation, never wider.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 if perms is None else perms)
    except OSError as e:
        raise InputError(f"cannot write {path!r}: {e.strerror}") from None
    try:
        try:
            if perms is not None:
                os.fchmod(fd, perms)  # exactly perms, whatever the umask or old file
            elif old_mode is not None:
                os.fchmod(fd, old_mode)
            with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as f:
                yield f
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except OSError as e:
            if e.errno in (
                errno.ENOSPC,
                errno.EDQUOT,
                errno.EFBIG,
                errno.EIO,
                errno.EROFS,
                errno.EACCES,
                errno.EPERM,
            ):
                raise InputError(f"cannot write {path!r}: {e.strerror}") from None
            raise
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_atomic(path: str, text: str, inputs: Iterable[str | None] = ()) -> None:
    with atomic_open(path, inputs=inputs) as f:
        f.write(text)
