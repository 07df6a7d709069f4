"""replay reads trace v1 and page traces compressed with gzip, xz or zstd, streaming;
a corrupt or truncated one is one line on stderr and exit 2."""

from __future__ import annotations

import gzip
import json
import lzma
from pathlib import Path

import pytest
import zstandard
from click.testing import CliRunner

from xcfbench.cli import cli
from xcfbench.sim.trace import format_trace
from xcfbench.sim.tracegen import generate

COMPRESS = {
    ".gz": lambda b: gzip.compress(b, mtime=0),
    ".xz": lzma.compress,
    ".zst": lambda b: zstandard.ZstdCompressor().compress(b),
}


def _invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def _results(r) -> dict:
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    doc["config"].pop("trace", None)
    doc["results"].pop("trace", None)
    return doc


@pytest.fixture(scope="module")
def trace_text() -> bytes:
    t = generate("uniform", count=3000)
    return format_trace(t.ops).encode()


@pytest.mark.parametrize("ext", sorted(COMPRESS))
def test_compressed_trace_v1_replays_like_the_plain_one(tmp_path: Path, trace_text, ext):
    plain = tmp_path / "t.trace"
    plain.write_bytes(trace_text)
    packed = tmp_path / f"t.trace{ext}"
    packed.write_bytes(COMPRESS[ext](trace_text))
    args = ("replay", "--alloc", "zsmalloc", "-q", "--json")
    assert _results(_invoke(*args, str(packed))) == _results(_invoke(*args, str(plain)))


@pytest.mark.parametrize("ext", sorted(COMPRESS))
@pytest.mark.parametrize("damage", ["truncated", "corrupt"])
def test_damaged_compressed_trace_is_one_line(tmp_path: Path, trace_text, ext, damage):
    data = COMPRESS[ext](trace_text)
    if damage == "truncated":
        data = data[: len(data) // 2]
    else:
        cut = len(data) // 2
        data = data[:cut] + bytes(b ^ 0x55 for b in data[cut : cut + 64]) + data[cut + 64 :]
    path = tmp_path / f"bad.trace{ext}"
    path.write_bytes(data)
    r = _invoke("replay", "--alloc", "zsmalloc", "-q", "--json", str(path))
    assert r.exit_code == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("xcfbench: error: bad.trace"), r.stderr


@pytest.mark.parametrize("ext", sorted(COMPRESS))
def test_compressed_page_trace_replays_like_the_plain_one(tmp_path: Path, ext):
    pages = tmp_path / "p.pages"
    pages.write_bytes(b"".join(bytes([i]) * 2048 + bytes(2048) for i in range(8)))
    text = "".join(f"w {i + 1} {i}\n" for i in range(8)) + "r 3\nd 4\nc\n"
    plain = tmp_path / "p.ptrace"
    plain.write_text(text)
    packed = tmp_path / f"p.ptrace{ext}"
    packed.write_bytes(COMPRESS[ext](text.encode()))
    args = ("replay", "--frontend", "zswap", "--pages", str(pages), "-q", "--json")
    assert _results(_invoke(*args, str(packed))) == _results(_invoke(*args, str(plain)))
    packed.write_bytes(COMPRESS[ext](text.encode())[:-9])
    r = _invoke(*args, str(packed))
    assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
