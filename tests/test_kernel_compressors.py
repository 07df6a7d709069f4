"""Today's kernel compressors against the kernel: the length Linux 6.12.117 produces for each
of the 1990 reference pages, as zram calls it and as zswap calls it (null = the call fails,
a zswap rejection), and a round trip of every page (tests/reference/compressors/README.md).
842's bytes are checked against a plain Python model of lib/842 (tests/helpers_842.py), and
its decoder is fuzzed."""

from __future__ import annotations

import hashlib
import json
import lzma
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import helpers_842
from tests.helpers_compressors import page as reference_page
from xcfbench.errors import InputError
from xcfbench.sim.compressors import COMPRESSORS, create_compressor
from xcfbench.sim.compressors import _lzokernel as lzokernel
from xcfbench.sim.pages import PageCache

REF = Path(__file__).parent / "reference" / "compressors"
KERNEL = ("lzo", "lzo-rle", "lz4", "lz4hc", "zstd", "deflate", "842")


@pytest.fixture(scope="module")
def reference():
    raw = lzma.decompress((REF / "pages.bin.xz").read_bytes())
    meta = json.loads((REF / "sizes.json").read_text())
    pages = [raw[i : i + 4096] for i in range(0, len(raw), 4096)]
    assert len(pages) == meta["count"] == len(meta["pages"]) == 1990
    return pages, meta["pages"]


def test_reference_pages_are_the_recorded_ones(reference):
    pages, rows = reference
    assert all(
        hashlib.sha256(p).hexdigest() == r["sha256"] for p, r in zip(pages, rows, strict=True)
    )


@pytest.mark.parametrize("call", ["zram", "zswap"])
@pytest.mark.parametrize("name", KERNEL)
def test_kernel_length_on_every_reference_page(reference, name, call):
    pages, rows = reference
    comp = create_compressor(name, call)
    got = [comp.size(p) for p in pages]
    want = [r[call][name] for r in rows]
    bad = [
        (i, rows[i]["kind"], g, w) for i, (g, w) in enumerate(zip(got, want, strict=True)) if g != w
    ]
    assert not bad, f"{len(bad)} of 1990 differ, first {bad[:5]}"


def test_zswap_rejects_where_the_kernel_does(reference):
    _, rows = reference
    # The set exercises rejections for every compressor (the figures of the README).
    for name in KERNEL:
        assert sum(r["zswap"][name] is None for r in rows) > 0, name


@pytest.mark.parametrize("call", ["zram", "zswap"])
@pytest.mark.parametrize("name", KERNEL)
def test_round_trip_every_reference_page(reference, name, call):
    pages, _ = reference
    comp = create_compressor(name, call)
    for i, page in enumerate(pages):
        data = comp.compress(page)
        if data is None:
            assert call == "zswap"
            continue
        assert comp.size(page) == len(data)
        assert comp.decompress(data) == page, i


@pytest.mark.parametrize("name", KERNEL)
def test_decompress_refuses_garbage_with_value_error(name):
    comp = create_compressor(name)
    with pytest.raises(ValueError):
        comp.decompress(b"\x00\x01\x02garbage")


@pytest.mark.parametrize("call", ["zram", "zswap"])
def test_842_compress_gives_the_kernels_length(reference, call):
    # size() counts bits without writing; compress() writes them: both are the kernel's.
    pages, rows = reference
    comp = create_compressor("842", call)
    got = [None if (c := comp.compress(p)) is None else len(c) for p in pages]
    want = [r[call]["842"] for r in rows]
    assert got == want
    # zswap's 4096-byte destination: null exactly where zram's output is longer.
    assert all((r["zswap"]["842"] is None) == (r["zram"]["842"] > 4096) for r in rows)


def test_842_bytes_read_back_through_the_kernels_decoder_table(reference):
    # Every page's stream, decoded by the model's reader of lib/842's decoder table; the
    # reference set meets all 26 templates and REPEAT and ZEROS.
    pages, _ = reference
    met = set()
    for i, page in enumerate(pages):
        out, codes = helpers_842.decode(lzokernel.sw842_compress(page))
        assert out == page, i
        met |= codes
    assert met == set(range(26)) | {helpers_842.REPEAT, helpers_842.ZEROS}


def test_842_bytes_equal_the_model(reference):
    # The model's encoder is slow Python: every 20th page (every kind of the set).
    pages, _ = reference
    for i in range(0, len(pages), 20):
        assert lzokernel.sw842_compress(pages[i]) == helpers_842.encode(pages[i]), i


def test_crc32_be_check_value():
    assert helpers_842.crc32_be(b"123456789") == 0x89A1897F  # ~ CRC-32/CKSUM's 0x765e7680
    stream = lzokernel.sw842_compress(b"123456789")
    assert helpers_842.decode(stream, 9)[0] == b"123456789"


def _words(seed_words):
    words, picks = seed_words
    return b"".join(words[i % len(words)] for i in picks)


# Inputs of any length: SHORT_DATA tails, REPEAT runs past 64 groups, zero groups, small
# alphabets that fill the index tables with equal values, rings that wrap (over 2 KiB).
inputs_842 = st.one_of(
    st.binary(max_size=40),
    st.tuples(
        st.lists(st.binary(min_size=1, max_size=8), min_size=1, max_size=6),
        st.lists(st.integers(0, 5), max_size=1200),
    ).map(_words),
    st.tuples(st.binary(min_size=8, max_size=8), st.integers(0, 140), st.binary(max_size=9)).map(
        lambda t: t[0] * t[1] + t[2]
    ),
    st.lists(st.sampled_from([b"\0" * 8, b"ab", b"abcd", b"\xff\x00"]), max_size=1500).map(
        b"".join
    ),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inputs_842)
def test_842_generated_inputs_equal_the_model_and_round_trip(data):
    out = lzokernel.sw842_compress(data)
    assert out == helpers_842.encode(data)
    assert lzokernel.sw842_size(data) == len(out) and len(out) % 8 == 0
    assert lzokernel.sw842_decompress(out, len(data)) == data


def _stream(page_no):
    return lzokernel.sw842_compress(reference_page(page_no))


def test_842_decoder_refuses_malformed_streams():
    good = lzokernel.sw842_compress(b"abcdefgh" * 3 + b"xyz")
    assert lzokernel.sw842_decompress(good, 27) == b"abcdefgh" * 3 + b"xyz"
    bad_crc = good[:-9] + bytes([good[-9] ^ 1]) + good[-8:]
    cases = {
        "empty": (b"", 4096),
        "no room": (good, 26),
        "truncated": (good[:4], 4096),
        "bad crc": (bad_crc, 4096),
        "repeat first": (bytes([helpers_842.REPEAT << 3, 0, 0, 0, 0, 0, 0, 0]), 4096),
        "zero-length short data": (bytes([helpers_842.SHORT_DATA << 3]) + bytes(7), 4096),
        "template 0x1a": (bytes([0x1A << 3]) + bytes(7), 4096),
        "template 0x1f": (bytes([0x1F << 3]) + bytes(7), 4096),
        "index before any output": (bytes([0x19 << 3]) + bytes(7), 4096),
    }
    for name, (data, out_len) in cases.items():
        with pytest.raises(ValueError):
            lzokernel.sw842_decompress(data, out_len)
            pytest.fail(name)
    with pytest.raises(ValueError, match="CRC"):
        lzokernel.sw842_decompress(bad_crc, 4096)
    with pytest.raises(ValueError):
        lzokernel.sw842_decompress(good, -1)


# Streams to damage: pages of several kinds (every template, REPEAT, ZEROS), a short input.
_FUZZ_PAGES = (0, 100, 400, 700, 1000, 1300, 1600, 1989)
damaged = st.tuples(
    st.sampled_from(_FUZZ_PAGES + (-1,)),
    st.lists(st.tuples(st.integers(0, 5000), st.integers(0, 7)), max_size=6),
    st.integers(0, 5000),
    st.binary(max_size=16),
    st.sampled_from([0, 7, 8, 100, 4095, 4096, 8192]),
)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(damaged)
def test_842_decoder_on_damaged_streams_gives_bytes_or_value_error(case):
    which, flips, cut, tail, out_len = case
    data = bytearray(_stream(which) if which >= 0 else lzokernel.sw842_compress(b"hello, 842"))
    for at, bit in flips:
        if data:
            data[at % len(data)] ^= 1 << bit
    data = bytes(data[:cut]) + tail
    try:
        out = lzokernel.sw842_decompress(data, out_len)
    except ValueError:
        return
    assert isinstance(out, bytes) and len(out) <= out_len


def test_page_cache_verify_path_uses_compress():
    comp = create_compressor("lzo-rle")
    cache = PageCache(lambda k: bytes(4096), comp, keep_compressed=True)
    assert cache.clen(0) == 41
    assert comp.decompress(cache.compressed(0)) == bytes(4096)


@pytest.mark.parametrize(
    "name, level, ok",
    [
        ("lzo", 1, False),
        ("lzo-rle", 1, False),
        ("842", 1, False),
        ("lz4", 1, True),
        ("lz4", 0, False),
        ("lz4hc", 9, True),
        ("lz4hc", 1, True),
        ("lz4hc", 12, False),
        ("lz4hc", 17, False),
        ("zstd", -5, True),
        ("zstd", 22, True),
        ("zstd", 23, False),
        ("deflate", -1, True),
        ("deflate", 9, True),
        ("deflate", 10, False),
    ],
)
def test_levels(name, level, ok):
    if ok:
        assert create_compressor(name, level=level).level == level
    else:
        with pytest.raises(InputError):
            create_compressor(name, level=level)


def test_lz4hc_high_levels_are_refused_honestly():
    with pytest.raises(InputError, match="not reproducible"):
        create_compressor("lz4hc", level=12)


def test_zswap_call_takes_no_level():
    with pytest.raises(InputError, match="no level"):
        create_compressor("zstd", "zswap", level=5)


def test_levels_change_sizes():
    text = (REF / "README.md").read_bytes()[:4096]
    sizes = {lvl: create_compressor("zstd", level=lvl).size(text) for lvl in (-5, 3, 19)}
    assert sizes[-5] > sizes[3] >= sizes[19]
    assert create_compressor("deflate", level=1).size(text) >= create_compressor("deflate").size(
        text
    )


def test_registry_names():
    assert set(KERNEL) < set(COMPRESSORS)
    assert "lzo1x-1" in COMPRESSORS and "lzo1x-1-linux31" in COMPRESSORS
    assert COMPRESSORS["lzo"].__name__ == "KernelLzo"  # no longer python-lzo
