"""LZO1X-1 compression exactly as Linux 3.1 compiled it (lib/lzo/lzo1x_compress.c).

zcache in 2011 compressed every page with the kernel's lzo1x_1_compress(): the
"LZO1X Compressor from MiniLZO" ported from LZO 2.02 in 2.6.23 and used until 3.6.
Its output is not what liblzo2 2.10 (python-lzo) produces for the same page: the
2.02 encoder makes different match choices, so a zero page is 28 bytes here and 44
there, and text comes out about 1% smaller (spec lzo1x-linux31.md §4.3).  Allocator
accounting depends on those sizes, so this module reproduces the kernel byte for
byte, in pure Python.

Stream format (LZO1X, as the decompressor reads it)
---------------------------------------------------
The output alternates literal runs and matches and ends with the marker 11 00 00.
A literal run of t bytes is announced before it: t <= 3 is ORed into the spare low
two bits of the byte two positions back (the previous match's last-but-one byte);
t <= 18 is a byte t - 3; longer runs are 00 followed by the length extension of
t - 18.  An input in which no match was found is one run, announced by the single
byte 17 + t if t <= 238.  A match of length L at distance off is one of
  M2  off <= 0x800,  L <= 8:  (L-1)<<5 | ((off-1)&7)<<2, (off-1)>>3
  M3  off <= 0x4000:          32 | (L-2)                  , ((off-1)&63)<<2, (off-1)>>6
  M4  off <= 0xbfff:          16 | (o&0x4000)>>11 | (L-2) , (o&63)<<2, (o>>6)&255
                                                              (o = off-0x4000)
where a length that does not fit the first byte's bits (M3 beyond 33, M4 beyond 9)
leaves them 0 and follows with the extension: a 00 byte per 255, then the rest.
The M4 distance's bit 14 travels in the first byte; the kernel stores o>>6 into an
unsigned char, dropping it there.  A page never has distances over 0x4000, so pages
use only M2 and M3.

How the 2.02 encoder chooses
----------------------------
It walks the input from position 4, one byte at a time, with a dictionary of 16384
input positions indexed by a hash of the next four bytes.  At each position it
looks the hash up; a candidate is usable only if it is at most 0xbfff back, and is
tried only if it is at most 0x800 back (an M2 can carry any length) or its fourth
byte also agrees (an M3/M4 must be worth its extra byte).  If the first slot is
usable but not worth trying, a second slot (hash2) gets the same test.  A tried
candidate whose first three bytes match is taken -- no longest-match search: the
first hit wins.  The slot last looked at then records the current position.  A
match is extended over bytes 3..8 and, if all of those agree, on to the end of the
input.  The search stops 13 bytes before the end; whatever follows the last match
is the final literal run.  Inputs of 13 bytes or fewer are one literal run.

Clean dictionary, not the kernel's stale one
--------------------------------------------
Every call here starts from an empty dictionary.  The kernel never cleared its
per-CPU workspace, and on 32-bit HIGHMEM every page was mapped at the same
address, so entries left by the previous page could point *ahead* of the current
position; the kernel's signed distance test then accepted them and emitted an
undecodable stream (zero pages alternate between 28 and 28-or-29 bytes, spec
§4.4).  We do not model that: sizes barely change and the spec recommends
clean-dictionary semantics, which is what the spec's measured sizes use.

Making it fast in pure Python
-----------------------------
Most of the time goes to positions that end up literals, so the per-position work
is kept to a few lookups.  Before the walk, the 4-byte little-endian word and
the dictionary hash of every position are computed at once with big-integer lane
arithmetic (one 32-bit lane per input byte, see _words_and_hashes()), which runs in
C.  Comparing two positions is then one XOR of their words: the low three bytes
decide "match", the top byte is the fourth-byte test, and the lowest set bit of
the XOR gives the first differing byte.  Long matches are extended by comparing
slices of doubling size.  The walk is a for loop over (position, hash) pairs;
a match skips the positions it covers with islice.  About 1.2 ms per 4 KiB text
page on CPython 3.11, 0.2 ms per zero page.
"""

from __future__ import annotations

import sys
from array import array
from itertools import islice

__all__ = ["compress", "compressed_size"]

D_MASK = 0x3FFF  # 2^14 dictionary slots
M2_MAX_OFFSET = 0x0800
M3_MAX_OFFSET = 0x4000
M4_MAX_OFFSET = 0xBFFF
M3_MARKER = 32
M4_MARKER = 16
MIN_SEARCH_LEN = 14  # shorter inputs are a single literal run
END_MARKER = b"\x11\x00\x00"  # an M4 with distance 0x4000 and length 3

# A slot nobody has written: every position is more than M4_MAX_OFFSET past it.
_EMPTY = -(M4_MAX_OFFSET + 1)

# array typecode of a 4-byte unsigned lane, and whether its byte order needs swapping.
_U32 = "I" if array("I").itemsize == 4 else "L"
_SWAP = sys.byteorder != "little"


def _lane_mask(lane: bytes, n: int) -> int:
    return int.from_bytes(lane * n, "little")


# The lane masks for the common page size, built once (immutable ints).
_PAGE = 4096
_PAGE_LOW27 = _lane_mask(b"\xff\xff\xff\x07", _PAGE)
_PAGE_HASH = _lane_mask(b"\xff\x3f\x00\x00", _PAGE)


def _words_and_hashes(src: bytes, n: int) -> tuple[array, array]:
    """Per position p: the 4-byte little-endian word at p, and the dictionary hash of p.

    The kernel hashes p as ((0x21 * DX3) >> 5) & D_MASK with
    DX3 = b[p+3]<<16 ^ b[p+2]<<10 ^ b[p+1]<<5 ^ b[p].  0x21 * x >> 5 equals
    x + (x >> 5), and x < 2^24, so with one 32-bit lane per position all positions
    are hashed by a handful of big-integer operations: no carry leaves its lane, and
    the bits x >> 5 drags in from the next lane land at 27..31 and are masked off.
    Lanes of the last three positions see zeros past the end; they are never used.
    """
    spread = bytearray(4 * n)
    spread[::4] = src
    b0 = int.from_bytes(spread, "little")
    b1 = b0 >> 32
    b2 = b0 >> 64
    b3 = b0 >> 96
    words = b0 | b1 << 8 | b2 << 16 | b3 << 24
    x = b0 ^ b1 << 5 ^ b2 << 10 ^ b3 << 16
    if n == _PAGE:
        low27, hash_mask = _PAGE_LOW27, _PAGE_HASH
    else:
        low27 = _lane_mask(b"\xff\xff\xff\x07", n)
        hash_mask = _lane_mask(b"\xff\x3f\x00\x00", n)
    hashes = (x + (x >> 5 & low27)) & hash_mask
    word_lanes = array(_U32, words.to_bytes(4 * n, "little"))
    hash_lanes = array(_U32, hashes.to_bytes(4 * n, "little"))
    if _SWAP:
        word_lanes.byteswap()
        hash_lanes.byteswap()
    return word_lanes, hash_lanes


def _emit_run_length(out: bytearray, t: int) -> None:
    """Announce a literal run of t bytes that follows at least one match (rule R)."""
    if t <= 3:
        out[-2] |= t  # the previous match's spare low bits
    elif t <= 18:
        out.append(t - 3)
    else:
        out.append(0)
        _emit_extension(out, t - 18)


def _emit_extension(out: bytearray, r: int) -> None:
    while r > 255:
        out.append(0)
        r -= 255
    out.append(r)


def _compress_matches(src: bytes, n: int, out: bytearray) -> int:
    """The kernel's _lzo1x_1_do_compress(): emit everything up to the last match.

    Returns where the final literal run starts.  Requires n >= MIN_SEARCH_LEN.
    """
    words, hashes = _words_and_hashes(src, n)
    ip_end = n - (MIN_SEARCH_LEN - 1)
    table = [_EMPTY] * (D_MASK + 1)
    append = out.append
    ii = 0  # first pending literal
    positions = zip(range(4, ip_end), islice(hashes, 4, ip_end), strict=False)

    for ip, h in positions:
        c = table[h]
        off = ip - c
        if off > M4_MAX_OFFSET:
            table[h] = ip
            continue
        word = words[ip]
        diff = words[c] ^ word
        if off > M2_MAX_OFFSET and diff > 0xFFFFFF:
            # Too far for an M2 and the 4th byte differs: not worth a try; probe hash2.
            h = (h & 0x7FF) ^ 0x201F
            c = table[h]
            off = ip - c
            if off > M4_MAX_OFFSET:
                table[h] = ip
                continue
            diff = words[c] ^ word
            if off > M2_MAX_OFFSET and diff > 0xFFFFFF:
                table[h] = ip
                continue
        table[h] = ip
        if diff & 0xFFFFFF:
            continue

        # A match of at least 3 bytes at distance off.  Flush the pending literals.
        t = ip - ii
        if t:
            _emit_run_length(out, t)
            out += src[ii:ip]

        if diff:
            length = 3
        else:
            diff = words[c + 4] ^ words[ip + 4]
            if diff:
                length = 4 + (((diff & -diff).bit_length() - 1) >> 3)
            elif src[c + 8] != src[ip + 8]:
                length = 8
            else:
                length = _extend(src, n, c, ip)
                if off <= M3_MAX_OFFSET:
                    off -= 1
                    if length <= 33:
                        append(M3_MARKER | (length - 2))
                    else:
                        append(M3_MARKER)
                        _emit_extension(out, length - 33)
                else:
                    off -= 0x4000
                    if length <= 9:
                        append(M4_MARKER | (off & 0x4000) >> 11 | (length - 2))
                    else:
                        append(M4_MARKER | (off & 0x4000) >> 11)
                        _emit_extension(out, length - 9)
                append((off & 63) << 2)
                append(off >> 6 & 0xFF)
                ii = ip + length
                next(islice(positions, length - 1, length - 1), None)
                continue

        # Short match, 3..8 bytes.
        if off <= M2_MAX_OFFSET:
            off -= 1
            append((length - 1) << 5 | (off & 7) << 2)
            append(off >> 3)
        else:
            if off <= M3_MAX_OFFSET:
                off -= 1
                append(M3_MARKER | (length - 2))
            else:
                off -= 0x4000
                append(M4_MARKER | (off & 0x4000) >> 11 | (length - 2))
            append((off & 63) << 2)
            append(off >> 6 & 0xFF)
        ii = ip + length
        next(islice(positions, length - 1, length - 1), None)

    return ii


def _extend(src: bytes, n: int, c: int, ip: int) -> int:
    """Length of the match at ip against c, known to be >= 9, up to the end of input."""
    length = 9
    chunk = 32
    while True:
        p = ip + length
        m = n - p
        if m <= 0:
            return length
        if m > chunk:
            m = chunk
        ahead = src[p : p + m]
        behind = src[c + length : c + length + m]
        if ahead != behind:
            x = int.from_bytes(ahead, "little") ^ int.from_bytes(behind, "little")
            return length + (((x & -x).bit_length() - 1) >> 3)
        length += m
        chunk <<= 1


def compress(data: bytes) -> bytes:
    """Compress data as Linux 3.1's lzo1x_1_compress() does with a cleared workspace.

    Byte-identical to the kernel whenever the kernel's dictionary is clean (the first
    call after clearing wrkmem).  The kernel never cleared it: on 32-bit HIGHMEM a
    stale entry could point ahead of the page and be taken as a match, giving an
    undecodable stream (a zero page then comes out 28 or 29 bytes, alternating).
    That quirk is not modelled; see the module comment.  The result decompresses
    with any LZO1X decompressor, e.g. lzo.decompress(out, False, len(data)).
    """
    src = bytes(data)
    n = len(src)
    out = bytearray()
    ii = _compress_matches(src, n, out) if n >= MIN_SEARCH_LEN else 0
    t = n - ii
    if t:
        if not out and t <= 238:
            out.append(17 + t)
        else:
            _emit_run_length(out, t)
        out += src[ii:]
    out += END_MARKER
    return bytes(out)


def compressed_size(data: bytes) -> int:
    """len(compress(data)).  There is no separate size-only path: emitting the output
    costs little next to the match search, and one encoder cannot disagree with itself."""
    return len(compress(data))
