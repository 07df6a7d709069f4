"""Today's kernel compressors against the kernel: the length Linux 6.12.117 produces for each
of the 1990 reference pages, as zram calls it and as zswap calls it (null = the call fails,
a zswap rejection), and a round trip of every page (tests/reference/compressors/README.md)."""

from __future__ import annotations

import hashlib
import json
import lzma
from pathlib import Path

import pytest

from xcfbench.errors import InputError
from xcfbench.sim.compressors import COMPRESSORS, create_compressor
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
