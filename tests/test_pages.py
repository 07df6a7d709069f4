"""xcfbench pages, --fill file:, and the one-line refusals of bad input (issue 9)."""

from __future__ import annotations

import json
import lzma
import os
import subprocess
import sys
from pathlib import Path

import pytest

from xcfbench.cli import main
from xcfbench.sim.config import RunConfig
from xcfbench.sim.engine import run
from xcfbench.sim.pagestats import PageStats, same_filled
from xcfbench.sim.workloads import create_workload

REF = Path(__file__).parent / "reference" / "compressors"
CORPUS = Path(__file__).resolve().parents[1] / "corpora" / "english.txt"


def run_main(capsys, args):
    with pytest.raises(SystemExit) as exc:
        main(args)
    out, err = capsys.readouterr()
    return exc.value.code, out, err


@pytest.fixture(scope="module")
def ref_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("ref") / "pages.bin"
    path.write_bytes(lzma.decompress((REF / "pages.bin.xz").read_bytes()))
    return path


def test_flags_as_zram_tests_them():
    assert same_filled(bytes(4096))
    assert same_filled(b"\x01\x02\x03\x04\x05\x06\x07\x08" * 512)
    assert same_filled(b"\x01\x02\x03\x04" * 1024)  # its 8-byte words are equal
    assert not same_filled(b"\x01\x02\x03\x04\x05\x06\x07\x08" * 511 + bytes(8))


def test_summary_matches_the_kernel_on_the_reference(ref_file):
    meta = json.loads((REF / "sizes.json").read_text())["pages"]
    names = ["lzo", "lzo-rle", "lz4", "zstd", "deflate", "842"]
    stats = PageStats(names)
    raw = ref_file.read_bytes()
    for i in range(0, len(raw), 4096):
        row = stats.add(raw[i : i + 4096])
        ref = meta[row["page"]]
        assert row["zero"] == ref["zero"] and row["same_filled"] == ref["same_filled"]
        assert all(row[n] == ref["zram"][n] for n in names)
    s = stats.summary()
    assert s["pages"] == 1990 and s["huge_class_size"] == 3625
    assert s["zero"] == sum(r["zero"] for r in meta)
    assert s["same_filled"] == sum(r["same_filled"] for r in meta)
    for c in s["compressors"]:
        n = c["compressor"]
        assert c["zswap_rejected"] == sum(r["zswap"][n] is None for r in meta)
        assert c["huge"] == sum(r["zram"][n] >= 3625 for r in meta)
        assert sum(c["histogram"]) == 1990
        assert c["compressed_bytes"] == sum(r["zram"][n] for r in meta)


def test_json_lines_and_plot(capsys, tmp_path):
    code, out, err = run_main(capsys, ["pages", str(CORPUS), "-c", "lzo,lz4", "--format", "json"])
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) == 513
    assert set(lines[0]) == {"page", "zero", "same_filled", "lzo", "lz4"}
    assert lines[-1]["kind"] == "pages"
    assert [c["compressor"] for c in lines[-1]["summary"]["compressors"]] == ["lzo", "lz4"]
    path = tmp_path / "p.jsonl"
    path.write_text(out)
    code, out, err = run_main(capsys, ["plot", str(path), "--width", "60", "--height", "15"])
    assert code == 0, err
    assert "lz4" in out


def test_csv_rows_and_zswap_call(capsys, ref_file):
    code, out, err = run_main(
        capsys, ["pages", str(ref_file), "-c", "deflate", "--call", "zswap", "--format", "csv"]
    )
    assert code == 0, err
    rows = out.splitlines()
    assert rows[0] == "page,zero,same_filled,deflate" and len(rows) == 1991
    assert sum(r.endswith(",") for r in rows[1:]) == 92  # deflate's zswap rejections


def test_table_and_levels(capsys):
    code, out, err = run_main(
        capsys, ["pages", str(CORPUS), "-c", "zstd", "--comp-opt", "level=19"]
    )
    assert code == 0, err
    assert "zstd" in out and "huge_class_size 3625" in out


def test_chain_size_changes_huge_class(capsys):
    code, out, _ = run_main(capsys, ["pages", str(CORPUS), "-c", "lzo", "--chain-size", "4"])
    assert code == 0 and "huge_class_size 3257" in out


def test_stdin_is_a_stream():
    data = CORPUS.read_bytes()[:10000]
    res = subprocess.run(
        [sys.executable, "-m", "xcfbench", "pages", "-", "-c", "lzo", "--format", "csv"],
        input=data,
        capture_output=True,
    )
    assert res.returncode == 0, res.stderr
    assert len(res.stdout.decode().splitlines()) == 1 + 3  # 2 pages and a padded one


@pytest.mark.parametrize(
    "args, message",
    [
        (["-c", "nope"], "unknown compressor"),
        (["-c", "lzo", "--comp-opt", "level=3"], "takes no level"),
        (["-c", "lz4hc", "--comp-opt", "level=12"], "not reproducible"),
        (["-c", "zstd", "--comp-opt", "level=99"], "out of range"),
    ],
)
def test_bad_compressor_input_is_one_line(capsys, args, message):
    code, out, err = run_main(capsys, ["pages", str(CORPUS), *args])
    assert code == 2 and out == ""
    assert message in err and err.count("\n") == 1


@pytest.mark.parametrize("what", ["empty", "missing", "directory", "device", "unreadable"])
def test_bad_files_are_one_line(capsys, tmp_path, what):
    path = {
        "empty": tmp_path / "empty",
        "missing": tmp_path / "missing",
        "directory": tmp_path,
        "device": Path("/dev/null"),
        "unreadable": tmp_path / "secret",
    }[what]
    if what == "empty":
        path.write_bytes(b"")
    if what == "unreadable":
        if os.geteuid() == 0:
            pytest.skip("root reads everything")
        path.write_bytes(b"x")
        path.chmod(0)
    for args in (
        ["pages", str(path)],
        [
            "run",
            "--alloc",
            "ideal",
            "--fill",
            f"file:{path}",
            "--size",
            "1M",
            "--limit",
            "512K",
            "--quiet",
        ],
    ):
        code, out, err = run_main(capsys, args)
        assert code == 2 and out == "", (args, err)
        assert err.count("\n") == 1 and str(path) in err


def test_file_fill_shares_the_text_fill_pages(tmp_path):
    text = create_workload("text", seed=3)
    same = create_workload(f"file:{CORPUS}", seed=3)
    assert same.pages == text.pages and same.start == text.start
    assert same.describe()["corpus_sha256"] == text.describe()["corpus_sha256"]
    a = tmp_path / "a.bin"
    b = tmp_path / "b.bin"
    a.write_bytes(b"\x01" * 5000)
    b.write_bytes(b"\x02" * 10)
    two = create_workload(f"file:{a},{b}")
    assert len(two.pages) == 3
    assert two.pages[1] == b"\x01" * 904 + bytes(3192)
    assert two.pages[2] == b"\x02" * 10 + bytes(4086)
    assert two.describe()["corpus_bytes"] == 5010


def test_file_fill_runs_and_verifies(tmp_path, ref_file):
    for comp in ("lzo-rle", "lz4", "zstd", "deflate", "842"):
        cfg = RunConfig(
            alloc="zsmalloc",
            fill=f"file:{ref_file}",
            arch="x86_64",
            compressor=comp,
            size_bytes=4 << 20,
            limit_bytes=2 << 20,
            verify=True,
            overhead_pages=0,
        )
        res = run(cfg)
        assert res.verify_errors == 0 and res.curr_pages > 0


@pytest.mark.parametrize("frontend", ["zcache", "zram"])
def test_verify_842(capsys, ref_file, frontend):
    # zcache's --verify decompresses every stored page; zram's check() counts nothing yet
    # (it returns 0), so there the run only shows that 842 stores and reports.
    args = ["run", "--verify", "-c", "842", "--frontend", frontend, "--alloc", "zs"]
    args += ["--fill", f"file:{ref_file}", "--size", "4M", "--limit", "2M", "--quiet"]
    code, out, err = run_main(capsys, [*args, "--format", "json"])
    assert code == 0, err
    res = json.loads(out)["results"]
    assert res["compressor"] == "842" and res["verified"] is True
    assert res["verify_errors"] == 0 and res["curr_pages"] > 0


def test_verify_842_goes_through_its_decoder(monkeypatch, ref_file):
    # A decoder that gives nothing back: zcache's check counts every stored page.
    from xcfbench.sim.compressors.kernel_lzo import Sw842

    monkeypatch.setattr(Sw842, "decompress", lambda self, data: b"")
    cfg = RunConfig(
        alloc="zsmalloc",
        fill=f"file:{ref_file}",
        arch="x86_64",
        compressor="842",
        size_bytes=4 << 20,
        limit_bytes=2 << 20,
        verify=True,
        overhead_pages=0,
    )
    res = run(cfg)
    assert res.curr_pages > 0 and res.verify_errors == res.curr_pages


@pytest.mark.parametrize("frontend", ["zcache", "zram", "zswap"])
def test_a_compaction_line_with_an_allocator_that_has_none_does_nothing(tmp_path, runner, frontend):
    """A page trace's c line on zbud (no compaction): no traceback, nothing freed."""
    import json

    from xcfbench.cli import cli

    (tmp_path / "p.bin").write_bytes(b"abcd" * 2048)
    args = ["replay", "--pages", str(tmp_path / "p.bin"), "--frontend", frontend, "--alloc"]
    results = {}
    for lines, name in (("w 1 0\nw 2 1\nd 1\n", "plain"), ("w 1 0\nw 2 1\nd 1\nc\n", "c")):
        (tmp_path / f"{name}.trace").write_text(lines)
        r = runner.invoke(
            cli, [*args, "zbud", "-c", "lzo", str(tmp_path / f"{name}.trace"), "--json"]
        )
        assert r.exit_code == 0, r.stderr
        results[name] = json.loads(r.stdout)
    assert (
        results["c"]["results"]["frontend_stats"] == results["plain"]["results"]["frontend_stats"]
    )


@pytest.mark.parametrize(
    "trace,message",
    [
        ("w 1_0 0\n", "malformed page-trace line"),
        ("w +1 0\n", "malformed page-trace line"),
        ("w \u0661 0\n", "malformed page-trace line"),  # an Arabic-Indic digit
        ("w " + "1" * 21 + " 0\n", "malformed page-trace line"),
        (" " * 4097 + "\n", "line longer than 4096 bytes"),
    ],
)
def test_page_trace_lines_are_bounded_and_ascii(tmp_path, runner, trace, message):
    from xcfbench.cli import cli

    (tmp_path / "p.bin").write_bytes(bytes(4096))
    (tmp_path / "t.trace").write_text(trace, encoding="utf-8")
    pages = ["--frontend", "zram", "--pages", str(tmp_path / "p.bin")]
    r = runner.invoke(cli, ["replay", *pages, str(tmp_path / "t.trace")])
    assert r.exit_code == 2 and message in r.stderr and r.stderr.count("\n") == 1


def test_a_pages_file_is_a_bounded_regular_file_or_pipe(tmp_path, runner, monkeypatch):
    import lzma

    from xcfbench.cli import cli
    from xcfbench.sim import pagetrace

    (tmp_path / "t.trace").write_text("w 1 0\n")
    args = ["replay", str(tmp_path / "t.trace"), "--frontend", "zram", "--pages"]
    r = runner.invoke(cli, [*args, "/dev/zero"])
    assert r.exit_code == 2 and "character device" in r.stderr
    monkeypatch.setattr(pagetrace, "MAX_PAGES_BYTES", 8 * 4096)
    (tmp_path / "big.xz").write_bytes(lzma.compress(bytes(9 * 4096)))  # a small bomb
    r = runner.invoke(cli, [*args, str(tmp_path / "big.xz")])
    assert r.exit_code == 2 and "larger than" in r.stderr
    (tmp_path / "cut.xz").write_bytes(lzma.compress(bytes(4 * 4096))[:-8])
    r = runner.invoke(cli, [*args, str(tmp_path / "cut.xz")])
    assert r.exit_code == 2 and "not xz data" in r.stderr
    (tmp_path / "ok.xz").write_bytes(lzma.compress(bytes(8 * 4096)))
    assert runner.invoke(cli, [*args, str(tmp_path / "ok.xz")]).exit_code == 0
