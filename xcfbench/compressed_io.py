"""Text files that may be compressed: .gz, .xz and .zst, streamed both ways.

Reading recognises the compression by its magic bytes (a .trace that is really gzip reads
fine); writing chooses it by the file's extension.  Like io.py, every layer may use it.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import lzma
from collections.abc import Iterator
from typing import IO, TextIO

from xcfbench.errors import InputError
from xcfbench.io import atomic_open

GZIP_MAGIC = b"\x1f\x8b"
XZ_MAGIC = b"\xfd7zXZ\x00"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def compression_of(path: str) -> str | None:
    for ext, kind in ((".gz", "gz"), (".xz", "xz"), (".zst", "zst")):
        if path.endswith(ext):
            return kind
    return None


def _zstd():
    try:
        import zstandard
    except ImportError:
        raise InputError("the zstandard package is missing: pip install zstandard") from None
    return zstandard


def open_text_stream(path: str, what: str = "trace") -> TextIO:
    """A UTF-8 text stream over path, decompressed on the fly if it is gzip, xz or zstd.
    Errors opening it are one-line InputErrors; decoding errors surface as the caller reads
    (UnicodeDecodeError, EOFError, lzma.LZMAError, zstandard.ZstdError)."""
    import os

    if os.path.isdir(path):
        raise InputError(f"{what} {path!r} is a directory, not a file")
    try:
        raw: IO[bytes] = open(path, "rb")
    except FileNotFoundError:
        raise InputError(f"{what} {path!r} does not exist") from None
    except PermissionError:
        raise InputError(f"{what} {path!r} is not readable (permission denied)") from None
    except OSError as e:
        raise InputError(f"{what} {path!r} cannot be read: {e.strerror}") from None
    head = raw.read(6)
    raw.seek(0)
    stream: IO[bytes] | gzip.GzipFile  # GzipFile is a BufferedIOBase, not an IO[bytes]
    if head.startswith(GZIP_MAGIC):
        stream = gzip.GzipFile(fileobj=raw, mode="rb")
    elif head.startswith(XZ_MAGIC):
        stream = lzma.LZMAFile(raw, "rb")
    elif head.startswith(ZSTD_MAGIC):
        stream = io.BufferedReader(_ZstdReader(raw))
    else:
        stream = raw
    text = io.TextIOWrapper(stream, encoding="utf-8", newline=None)
    if stream is not raw:
        text._xcfbench_raw = raw  # type: ignore[attr-defined]
    return text


class _ZstdReader(io.RawIOBase):
    """zstd frames one after another, decoded as read; a stream that ends inside a frame
    raises EOFError, as gzip and xz do (zstandard's stream_reader would just stop)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw, self.dctx = raw, _zstd().ZstdDecompressor()
        self.dobj, self.buf, self.started = self.dctx.decompressobj(), b"", False

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        while not self.buf:
            chunk = self.raw.read(1 << 16)
            if not chunk:
                if self.started and not self.dobj.eof:
                    raise EOFError("zstd stream ends before the end of its frame")
                return 0
            while chunk:
                if self.dobj.eof:
                    self.dobj = self.dctx.decompressobj()
                self.started = True
                self.buf += self.dobj.decompress(chunk)
                chunk = self.dobj.unused_data if self.dobj.eof else b""
        n = min(len(b), len(self.buf))
        b[:n] = self.buf[:n]
        self.buf = self.buf[n:]
        return n


def close_text_stream(text: TextIO) -> None:
    text.close()
    raw = getattr(text, "_xcfbench_raw", None)
    if raw is not None:
        raw.close()


@contextlib.contextmanager
def atomic_text_output(path: str) -> Iterator[TextIO]:
    """A text stream to path, compressed by its extension (.gz, .xz, .zst), renamed into
    place only when the block ends without an exception (io.atomic_open)."""
    kind = compression_of(path)
    with atomic_open(path, "wb") as raw:
        if kind == "gz":
            inner: IO[bytes] | gzip.GzipFile = gzip.GzipFile(fileobj=raw, mode="wb", mtime=0)
        elif kind == "xz":
            inner = lzma.LZMAFile(raw, "wb")
        elif kind == "zst":
            inner = (
                _zstd()
                .ZstdCompressor(level=3, write_checksum=True)
                .stream_writer(raw, closefd=False)
            )
        else:
            inner = raw
        text = io.TextIOWrapper(inner, encoding="utf-8", newline="\n")
        try:
            yield text
        finally:
            if inner is raw:
                text.flush()
                text.detach()
            else:
                text.close()  # ends the compressed stream; raw stays open
