"""Page images and page profiles: the on-disk formats, streamed in and out.

Both are one container (README, "Page images"):

    0     8  magic: b"XCFBIMG\\n" (image) or b"XCFBPRF\\n" (profile)
    8     4  format version, u32 little-endian (VERSION)
    12    4  length of the metadata JSON, u32
    16   32  SHA-256 of bytes 48..4095 (the metadata area, JSON padded with spaces)
    48 4048  metadata JSON; it holds body_sha256, the SHA-256 of the body
  4096  ...  body: one zstd frame (with its own content checksum) of records

The header is written last (the writer seeks back), so the body streams out while the
process is read.  A reader checks the header digest, then the whole body against
body_sha256, and only then parses: a truncated or corrupted file is refused, never half-read.

Image records (u64/u32 little-endian):
    b"P" u32 len, JSON      a process: pid, comm (the executable's name only), complete
    b"R" u32 len, JSON      a region of /proc/PID/maps: start, end, perms, offset, name
    b"N" u64 addr, 4096 B   a page whose contents were not seen before (distinct index n)
    b"D" u64 addr, u64 dig  a page equal to an earlier page with that 64-bit content digest
    b"E"                    the end
Profile records:
    b"U" 16 B keyed hash, u8 flags, u16 length per compressor call   a new distinct page
    b"Q" u32 index                                                   a repeat of page index
    b"E"                                                             the end
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from xcfbench.errors import InputError
from xcfbench.sim.arch import PAGE_SIZE

IMAGE_MAGIC = b"XCFBIMG\n"
PROFILE_MAGIC = b"XCFBPRF\n"
VERSION = 1
HEADER = 4096
META_AREA = HEADER - 48
ZSTD_LEVEL = 3
_U64 = struct.Struct("<Q")
_ADDR_DIGEST = struct.Struct("<QQ")
NO_LENGTH = 0xFFFF  # a profile's length of a call that fails
FLAG_ZERO, FLAG_SAME = 1, 2


def _zstd():
    try:
        import zstandard
    except ImportError:
        raise InputError("the zstandard package is missing: pip install zstandard") from None
    return zstandard


def digest8(page: bytes) -> int:
    """The 64-bit content digest images deduplicate by (BLAKE2b-64)."""
    return int.from_bytes(hashlib.blake2b(page, digest_size=8).digest(), "little")


class DigestSet:
    """A set of 64-bit digests in 10.7 to 16 bytes each, however many.

    4096 shards (by the digest's low bits), each an open-addressed array('Q') of prime size
    with double hashing, grown by half when 75% full: a shard's load stays in 0.5..0.75, so
    8 bytes a slot cost at most 16 bytes a digest, and a growth copies one shard only.
    0 marks an empty slot, so the digest 0 is stored as 1."""

    SHARDS = 4096
    FIRST = 67

    def __init__(self) -> None:
        self.shards = [array("Q", bytes(8 * self.FIRST)) for _ in range(self.SHARDS)]
        self.used = [0] * self.SHARDS
        self.count = 0

    @staticmethod
    def _find(slots: array, d: int) -> int:
        n = len(slots)
        i = (d >> 12) % n
        step = 1 + (d >> 40) % (n - 1)
        while True:
            v = slots[i]
            if v == d or v == 0:
                return i
            i = (i + step) % n

    def add(self, d: int) -> bool:
        """Add d; False if it was already there."""
        d = d or 1
        s = d & (self.SHARDS - 1)
        slots = self.shards[s]
        i = self._find(slots, d)
        if slots[i] == d:
            return False
        slots[i] = d
        self.count += 1
        used = self.used[s] = self.used[s] + 1
        if used * 4 > len(slots) * 3:
            bigger = array("Q", bytes(8 * _next_prime(len(slots) * 3 // 2)))
            for v in slots:
                if v:
                    bigger[self._find(bigger, v)] = v
            self.shards[s] = bigger
        return True

    @property
    def nbytes(self) -> int:
        return sum(8 * len(s) for s in self.shards)


def _next_prime(n: int) -> int:
    n |= 1
    while any(n % p == 0 for p in range(3, int(n**0.5) + 1, 2)):
        n += 2
    return n


class _HashingFile:
    def __init__(self, f: IO[bytes]) -> None:
        self.f, self.sha, self.n = f, hashlib.sha256(), 0

    def write(self, data: bytes) -> None:
        if data:
            self.sha.update(data)
            self.n += len(data)
            self.f.write(data)


class ContainerWriter:
    """Writes the body as a zstd stream into f (a seekable binary file opened by the
    caller, e.g. io.atomic_open), then the header in front of it."""

    def __init__(self, f: IO[bytes], magic: bytes) -> None:
        self.f, self.magic = f, magic
        f.write(bytes(HEADER))
        self.out = _HashingFile(f)
        self.cobj = _zstd().ZstdCompressor(level=ZSTD_LEVEL, write_checksum=True).compressobj()
        self._buf: list[bytes] = []
        self._buffered = 0

    def write(self, data: bytes) -> None:
        self._buf.append(data)
        self._buffered += len(data)
        if self._buffered >= 1 << 20:
            self._drain()

    def _drain(self) -> None:
        self.out.write(self.cobj.compress(b"".join(self._buf)))
        self._buf.clear()
        self._buffered = 0

    def record(self, tag: bytes, obj: dict[str, Any]) -> None:
        data = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
        self.write(tag + struct.pack("<I", len(data)) + data)

    def finish(self, meta: dict[str, Any]) -> str:
        """End the body, write the header; the image's checksum (hex) is returned."""
        self.write(b"E")
        self._drain()
        self.out.write(self.cobj.flush())
        meta = {**meta, "body_sha256": self.out.sha.hexdigest(), "body_bytes": self.out.n}
        data = json.dumps(meta, sort_keys=True, separators=(",", ":")).encode()
        if len(data) > META_AREA:
            raise InputError(f"metadata of {len(data)} bytes does not fit the header")
        area = data + b" " * (META_AREA - len(data))
        digest = hashlib.sha256(area).digest()
        self.f.seek(0)
        self.f.write(self.magic + struct.pack("<II", VERSION, len(data)) + digest + area)
        self.f.seek(0, os.SEEK_END)
        return digest.hex()


@dataclass
class Container:
    path: str
    kind: str  # "image" or "profile"
    meta: dict[str, Any]
    checksum: str  # hex SHA-256 of the metadata area, which holds the body's


def open_container(path: str, what: str = "image") -> Container:
    """Check the header and the whole body; an InputError in one line if anything is off."""
    if os.path.isdir(path):
        raise InputError(f"{what} {path!r} is a directory, not a file")
    try:
        with open(path, "rb") as f:
            head = f.read(HEADER)
            if len(head) < 8 or head[:8] not in (IMAGE_MAGIC, PROFILE_MAGIC):
                raise InputError(f"{what} {path!r} is not an xcfbench page image or profile")
            kind = "image" if head[:8] == IMAGE_MAGIC else "profile"
            if len(head) < HEADER:
                raise InputError(f"{what} {path!r} is truncated (header of {len(head)} bytes)")
            version, mlen = struct.unpack_from("<II", head, 8)
            if version > VERSION:
                raise InputError(
                    f"{what} {path!r} is format version {version}; this xcfbench"
                    f" reads version {VERSION}: upgrade xcfbench"
                )
            if version != VERSION:
                raise InputError(f"{what} {path!r} has unknown format version {version}")
            area = head[48:]
            if hashlib.sha256(area).digest() != head[16:48] or mlen > META_AREA:
                raise InputError(f"{what} {path!r} is corrupted (header checksum mismatch)")
            meta = json.loads(area[:mlen])
            sha, n = hashlib.sha256(), 0
            while chunk := f.read(1 << 20):
                sha.update(chunk)
                n += len(chunk)
    except FileNotFoundError:
        raise InputError(f"{what} {path!r} does not exist") from None
    except PermissionError:
        raise InputError(f"{what} {path!r} is not readable (permission denied)") from None
    except (OSError, ValueError) as e:
        if isinstance(e, InputError):
            raise
        raise InputError(f"{what} {path!r} cannot be read: {e}") from None
    if n != meta.get("body_bytes"):
        raise InputError(
            f"{what} {path!r} is truncated ({n} of {meta.get('body_bytes')} body bytes)"
        )
    if sha.hexdigest() != meta.get("body_sha256"):
        raise InputError(f"{what} {path!r} is corrupted (body checksum mismatch)")
    return Container(path, kind, meta, head[16:48].hex())


def _body(c: Container) -> Iterator[bytes]:
    dobj = _zstd().ZstdDecompressor().decompressobj()
    with open(c.path, "rb") as f:
        f.seek(HEADER)
        while chunk := f.read(1 << 20):
            yield dobj.decompress(chunk)


class _Reader:
    """Exact reads from the decompressed body stream."""

    def __init__(self, c: Container) -> None:
        self.it, self.buf, self.pos, self.path = _body(c), b"", 0, c.path

    def read(self, n: int) -> bytes:
        while len(self.buf) - self.pos < n:
            try:
                more = next(self.it)
            except StopIteration:
                raise InputError(
                    f"{self.path!r} is truncated (body ends inside a record)"
                ) from None
            self.buf = self.buf[self.pos :] + more
            self.pos = 0
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out

    def json(self) -> dict[str, Any]:
        (n,) = struct.unpack("<I", self.read(4))
        return json.loads(self.read(n))


def iter_image(c: Container) -> Iterator[tuple]:
    """("P", dict) | ("R", dict) | ("N", addr, page) | ("D", addr, digest), in file order."""
    r = _Reader(c)
    while True:
        tag = r.read(1)
        if tag == b"N":
            (addr,) = _U64.unpack(r.read(8))
            yield ("N", addr, r.read(PAGE_SIZE))
        elif tag == b"D":
            yield ("D", *_ADDR_DIGEST.unpack(r.read(16)))
        elif tag in (b"P", b"R"):
            yield (tag.decode(), r.json())
        elif tag == b"E":
            return
        else:
            raise InputError(f"image {c.path!r} is corrupted (record tag {tag!r})")


@dataclass
class PageSet:
    """A file's pages in order as keys (distinct page numbers), and what each key holds."""

    container: Container
    keys: array = field(default_factory=lambda: array("I"))
    pages: list[bytes] = field(default_factory=list)  # images: the distinct pages
    addresses: array = field(default_factory=lambda: array("Q"))
    regions: list[dict] = field(default_factory=list)
    processes: list[dict] = field(default_factory=list)
    hashes: list[bytes] = field(default_factory=list)  # profiles: keyed hashes
    flags: bytearray = field(default_factory=bytearray)  # profiles
    lengths: list[array] = field(default_factory=list)  # profiles: per call, per key


def load_image(c: Container) -> PageSet:
    ps = PageSet(c)
    index: dict[int, int] = {}
    for rec in iter_image(c):
        if rec[0] == "N":
            d = digest8(rec[2]) or 1
            index.setdefault(d, len(ps.pages))
            ps.keys.append(len(ps.pages))
            ps.pages.append(rec[2])
            ps.addresses.append(rec[1])
        elif rec[0] == "D":
            k = index.get(rec[2] or 1)
            if k is None:
                raise InputError(
                    f"image {c.path!r} is corrupted (a page refers to an unknown digest)"
                )
            ps.keys.append(k)
            ps.addresses.append(rec[1])
        elif rec[0] == "R":
            ps.regions.append(rec[1])
        else:
            ps.processes.append(rec[1])
    if len(ps.keys) != c.meta.get("pages"):
        raise InputError(f"image {c.path!r} is corrupted (page count)")
    return ps


def is_container(path: str) -> bool:
    """path is a regular file that starts like an image or a profile."""
    try:
        if not os.path.isfile(path):
            return False
        with open(path, "rb") as f:
            return f.read(8) in (IMAGE_MAGIC, PROFILE_MAGIC)
    except OSError:
        return False


def image_pages(path: str) -> Iterator[bytes]:
    """The pages of an image in address order (checked whole first, so a damaged image
    yields nothing); a profile holds no bytes and is refused in one line."""
    c = open_container(path)
    if c.kind != "image":
        raise InputError(
            f"profile {path!r} holds compressed lengths, not pages: run `pages` on its image"
        )
    ps = load_image(c)
    pages = ps.pages
    for key in ps.keys:
        yield pages[key]


def profile_calls(c: Container) -> list[tuple[str, str, int | None]]:
    return [(x["name"], x["call"], x["level"]) for x in c.meta["compressors"]]


def load_profile(c: Container) -> PageSet:
    ps = PageSet(c)
    ncalls = len(c.meta["compressors"])
    ps.lengths = [array("H") for _ in range(ncalls)]
    fmt = struct.Struct(f"<16sB{ncalls}H")
    r = _Reader(c)
    while True:
        tag = r.read(1)
        if tag == b"U":
            h, fl, *lens = fmt.unpack(r.read(fmt.size))
            ps.keys.append(len(ps.hashes))
            ps.hashes.append(h)
            ps.flags.append(fl)
            for a, n in zip(ps.lengths, lens, strict=False):
                a.append(n)
        elif tag == b"Q":
            (k,) = struct.unpack("<I", r.read(4))
            if k >= len(ps.hashes):
                raise InputError(f"profile {c.path!r} is corrupted (page index)")
            ps.keys.append(k)
        elif tag == b"E":
            break
        else:
            raise InputError(f"profile {c.path!r} is corrupted (record tag {tag!r})")
    if len(ps.keys) != c.meta.get("pages"):
        raise InputError(f"profile {c.path!r} is corrupted (page count)")
    return ps


def same_filled_word(page: bytes) -> int | None:
    """zram's page_same_filled: every 64-bit word equal -> that word, else None."""
    word = page[:8]
    return int.from_bytes(word, "little") if page == word * (len(page) // 8) else None


def write_profile(
    c: Container, out: IO[bytes], compressors: list, key: bytes, progress=None
) -> tuple[str, dict[str, Any]]:
    """Stream the image c into a profile on out: per distinct page its flags, its length
    under each compressor (built for its call and level) and its hash keyed with key."""
    w = ContainerWriter(out, PROFILE_MAGIC)
    fmt = struct.Struct(f"<16sB{len(compressors)}H")
    index: dict[int, int] = {}
    pages = distinct = 0
    total = c.meta.get("pages", 0)
    for rec in iter_image(c):
        if rec[0] == "N":
            page = rec[2]
            index.setdefault(digest8(page) or 1, distinct)
            word = same_filled_word(page)
            flags = (FLAG_SAME if word is not None else 0) | (FLAG_ZERO if word == 0 else 0)
            lens = []
            for comp in compressors:
                n = comp.size(page)
                if n is not None and n >= NO_LENGTH:
                    raise InputError(f"{comp.name}: a length of {n} does not fit a profile")
                lens.append(NO_LENGTH if n is None else n)
            h = hashlib.blake2b(page, digest_size=16, key=key).digest()
            w.write(b"U" + fmt.pack(h, flags, *lens))
            distinct += 1
        elif rec[0] == "D":
            w.write(b"Q" + struct.pack("<I", index[rec[2] or 1]))
        else:
            continue
        pages += 1
        if progress is not None and pages % 4096 == 0:
            progress(pages, total)
    src = c.meta
    meta = {
        "format": "xcfbench page profile",
        "version": VERSION,
        "pages": pages,
        "distinct_pages": distinct,
        "hash": "BLAKE2b-128 keyed with a random 32-byte key that is not stored",
        "compressors": [
            {"name": x.name, "call": x.call, "level": x.level, "version": x.version()}
            for x in compressors
        ],
        "source": {
            "image": os.path.basename(c.path),
            "image_checksum": c.checksum,
            "kernel": src.get("kernel"),
            "time": src.get("time"),
            "executables": src.get("executables"),
        },
    }
    return w.finish(meta), meta
