"""A slow, plain Python model of the kernel's software 842, to check the C extension's bytes.

The reference set holds the kernel's 842 *lengths*; this model checks the *bytes* the C
encoder writes, from a second reading of lib/842 (842_compress.c, 842_decompress.c, 842.h)
with other data structures: the decoder follows the kernel's decoder table, indexed by
template code, and its ring arithmetic; the encoder keeps, per value, the table slots that
hold it in the order they were written (the kernel's hash chains put the newest node first,
so its lookup finds the slot most recently written with the value); the CRC is zlib's
reflected CRC-32 turned into crc32_be by reversing bits.  Strings of '0'/'1' stand for the
bitstream, most significant bit first.
"""

from __future__ import annotations

import zlib

OP_BITS, REPEAT_BITS, SHORT_BITS, CRC_BITS = 5, 6, 3, 32
REPEAT, ZEROS, SHORT_DATA, END = 0x1B, 0x1C, 0x1D, 0x1E
INDEX_BITS = {2: 8, 4: 9, 8: 8}

# 842_decompress.c decomp_ops: the operands of each template, by template code 0x00..0x19.
DECODE_OPS: list[tuple[str, ...]] = [
    ("D8",),
    ("D4", "D2", "I2"),
    ("D4", "I2", "D2"),
    ("D4", "I2", "I2"),
    ("D4", "I4"),
    ("D2", "I2", "D4"),
    ("D2", "I2", "D2", "I2"),
    ("D2", "I2", "I2", "D2"),
    ("D2", "I2", "I2", "I2"),
    ("D2", "I2", "I4"),
    ("I2", "D2", "D4"),
    ("I2", "D4", "I2"),
    ("I2", "D2", "I2", "D2"),
    ("I2", "D2", "I2", "I2"),
    ("I2", "D2", "I4"),
    ("I2", "I2", "D4"),
    ("I2", "I2", "D2", "I2"),
    ("I2", "I2", "I2", "D2"),
    ("I2", "I2", "I2", "I2"),
    ("I2", "I2", "I4"),
    ("I4", "D4"),
    ("I4", "D2", "I2"),
    ("I4", "I2", "D2"),
    ("I4", "I2", "I2"),
    ("I4", "I4"),
    ("I8",),
]

# 842_compress.c comp_ops: the order the encoder tries them in (the last always fits).
ENCODE_ORDER: list[tuple[str, ...]] = [
    ("I8",),
    ("I4", "I4"),
    ("I4", "I2", "I2"),
    ("I2", "I2", "I4"),
    ("I2", "I2", "I2", "I2"),
    ("I4", "I2", "D2"),
    ("I4", "D2", "I2"),
    ("I2", "D2", "I4"),
    ("D2", "I2", "I4"),
    ("I2", "I2", "I2", "D2"),
    ("I2", "I2", "D2", "I2"),
    ("I2", "D2", "I2", "I2"),
    ("D2", "I2", "I2", "I2"),
    ("I4", "D4"),
    ("D4", "I4"),
    ("I2", "I2", "D4"),
    ("I2", "D2", "I2", "D2"),
    ("I2", "D4", "I2"),
    ("D2", "I2", "I2", "D2"),
    ("D2", "I2", "D2", "I2"),
    ("D4", "I2", "I2"),
    ("I2", "D2", "D4"),
    ("D2", "I2", "D4"),
    ("D4", "I2", "D2"),
    ("D4", "D2", "I2"),
    ("D8",),
]

_REVERSE = bytes(int(f"{b:08b}"[::-1], 2) for b in range(256))


def crc32_be(data: bytes) -> int:
    """lib/crc32.c crc32_be(0, data): polynomial 0x04c11db7, MSB first, no inversion."""
    raw = zlib.crc32(data.translate(_REVERSE), 0xFFFFFFFF) ^ 0xFFFFFFFF
    return int(f"{raw:032b}"[::-1], 2)


def _operands(ops: tuple[str, ...]):
    """(kind, width, byte offset in the group) of each operand."""
    at = 0
    for op in ops:
        width = int(op[1:])
        yield op[0], width, at
        at += width


def encode(data: bytes) -> bytes:
    """sw842_compress(data), written out as the kernel's encoder goes."""
    bits: list[str] = []

    def put(value: int, n: int) -> None:
        bits.append(format(value, f"0{n}b"))

    sizes = (8, 4, 2)
    slots = {w: [None] * (1 << INDEX_BITS[w]) for w in sizes}
    holders: dict[int, dict[bytes, list[int]]] = {w: {} for w in sizes}

    def write(width: int, slot: int, value: bytes) -> None:
        old = slots[width][slot]
        if old is not None:
            holders[width][old].remove(slot)
        slots[width][slot] = value
        holders[width].setdefault(value, []).append(slot)

    def find(width: int, value: bytes) -> int | None:
        held = holders[width].get(value)
        return held[-1] if held else None

    full = len(data) - len(data) % 8
    last = None
    repeat = 0
    for pos in range(0, full, 8):
        group = data[pos : pos + 8]
        coded = False
        if group == last:
            repeat += 1
            coded = repeat <= 63
        if not coded and repeat:
            put(REPEAT, OP_BITS)
            put(repeat - 1, REPEAT_BITS)
            repeat = 0
            coded = group == last  # a full REPEAT takes this group in
        if not coded:
            if group == bytes(8):
                put(ZEROS, OP_BITS)
            else:
                for ops in ENCODE_ORDER:
                    found = [
                        find(w, group[at : at + w]) for kind, w, at in _operands(ops) if kind == "I"
                    ]
                    if None not in found:
                        break
                put(DECODE_OPS.index(ops), OP_BITS)
                indices = iter(found)
                for kind, w, at in _operands(ops):
                    if kind == "D":
                        put(int.from_bytes(group[at : at + w], "big"), 8 * w)
                    else:
                        put(next(indices), INDEX_BITS[w])
        last = group
        for w in sizes:
            first = (pos // w) % len(slots[w])
            for k in range(8 // w):
                write(w, first + k, group[k * w : (k + 1) * w])
    if repeat:
        put(REPEAT, OP_BITS)
        put(repeat - 1, REPEAT_BITS)
    if len(data) > full:
        put(SHORT_DATA, OP_BITS)
        put(len(data) - full, SHORT_BITS)
        for b in data[full:]:
            put(b, 8)
    put(END, OP_BITS)
    put(crc32_be(data), CRC_BITS)
    stream = "".join(bits)
    stream += "0" * (-len(stream) % 64)
    return int(stream, 2).to_bytes(len(stream) // 8, "big") if stream else b""


def decode(stream: bytes, out_len: int = 4096) -> tuple[bytes, set[int]]:
    """sw842_decompress(stream) as the kernel's decoder goes, and the template codes met.
    Also checks what the kernel's encoder leaves after the CRC: zero bits to the byte and
    zero bytes to a multiple of 8.  AssertionError on anything else."""
    bits = format(int.from_bytes(stream, "big"), f"0{8 * len(stream)}b") if stream else ""
    pos = 0

    def get(n: int) -> int:
        nonlocal pos
        assert pos + n <= len(bits), "stream ends early"
        pos += n
        return int(bits[pos - n : pos], 2)

    out = bytearray()
    codes: set[int] = set()
    while (code := get(OP_BITS)) != END:
        codes.add(code)
        if code == REPEAT:
            count = get(REPEAT_BITS) + 1
            assert len(out) >= 8
            out += out[-8:] * count
        elif code == ZEROS:
            out += bytes(8)
        elif code == SHORT_DATA:
            n = get(SHORT_BITS)
            assert n
            out += bytes(get(8) for _ in range(n))
        else:
            assert code < len(DECODE_OPS), code
            for kind, w, _ in _operands(DECODE_OPS[code]):
                if kind == "D":
                    out += get(8 * w).to_bytes(w, "big")
                    continue
                offset = get(INDEX_BITS[w]) * w
                fifo = w << INDEX_BITS[w]
                total = len(out) // 8 * 8
                if total > fifo:
                    section = total - total % fifo
                    if offset >= total % fifo:
                        section -= fifo
                    offset += section
                assert offset + w <= total
                out += out[offset : offset + w]
        assert len(out) <= out_len
    assert get(CRC_BITS) == crc32_be(bytes(out)), "CRC"
    assert set(bits[pos:]) <= {"0"} and len(stream) % 8 == 0 and len(bits) - pos < 64
    return bytes(out), codes
