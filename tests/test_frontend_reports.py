"""Issue 10's reports: compare and sweep vary --frontend, -c and --chain-size; diff and
check gate on the front ends' dotted metrics; --verify of zram and zswap runs; plot --kind
pool of a front end's pool."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from xcfbench.cli import cli
from xcfbench.results.compare import load_source

SMALL = ["--fill", "text", "--size", "8M", "--limit", "4M", "--totalram", "64M", "-q"]


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_compare_varies_frontend_compressor_and_chain_size(tmp_path):
    out = tmp_path / "cmp.json"
    res = invoke(
        "compare",
        "--alloc",
        "zsmalloc,xvmalloc",
        "--frontend",
        "zram,zswap",
        "-c",
        "lz4,zstd",
        "--chain-size",
        "4,8",
        *SMALL,
        "-o",
        str(out),
    )
    assert res.exit_code == 0, res.output
    header = res.stdout.splitlines()[1]
    for column in ("allocator", "fill", "chain_size", "compressor", "frontend"):
        assert column in header
    doc = json.loads(out.read_text())
    # zsmalloc × 2 front ends × 2 compressors × 2 chain sizes, xvmalloc (no chain size)
    # × 2 × 2: the chain sizes collapse into one run each
    assert len(doc["results"]) == 12
    assert doc["config"]["frontend"] == ["zram", "zswap"]
    assert doc["config"]["compressor"] == ["lz4", "zstd"]
    entries = load_source(str(out)).entries
    seen = {
        (
            e.config["alloc"],
            e.config["frontend"],
            e.config["compressor"],
            e.config["alloc_options"].get("chain_size"),
        )
        for e in entries
    }
    assert len(seen) == 12
    for e in entries:  # each result carries its own front end and compressor
        assert e.result["frontend"] == e.config["frontend"]
        assert e.result["compressor"] == e.config["compressor"]
    pools = {
        (
            e.config["frontend"],
            e.config["compressor"],
            e.config["alloc_options"].get("chain_size"),
        ): e.result["zv_page_count"]
        for e in entries
        if e.config["alloc"] == "zsmalloc"
    }
    # a longer chain wastes fewer tail bytes; zstd compresses text better than lz4
    assert pools[("zram", "lz4", 8)] < pools[("zram", "lz4", 4)]
    assert pools[("zram", "zstd", 8)] < pools[("zram", "lz4", 8)]


def test_compare_frontend_flag_applies_to_its_front_end(tmp_path):
    out = tmp_path / "cmp.json"
    res = invoke(
        "compare",
        "--alloc",
        "zsmalloc",
        "--frontend",
        "zram,zswap",
        "--zram-mode",
        "block",
        *SMALL,
        "--format",
        "markdown",
        "-o",
        str(out),
    )
    assert res.exit_code == 0, res.output
    assert "| allocator | fill | frontend | mode |" in res.stdout
    assert "| zsmalloc | text | zram | block |" in res.stdout
    assert "| zsmalloc | text | zswap | - |" in res.stdout
    runs = json.loads(out.read_text())["config"]["runs"]
    assert [r["frontend_options"] for r in runs] == [{"mode": "block"}, {}]


def test_compare_option_of_no_front_end_compared_is_one_line_exit_2():
    res = invoke(
        "compare",
        "--alloc",
        "zsmalloc",
        "--frontend",
        "zswap,zcache",
        "--recompress",
        "lz4",
        *SMALL,
    )
    assert res.exit_code == 2
    assert res.stderr.strip().splitlines() == [
        "xcfbench: error: --recompress is an option of zram, not of --frontend zswap,zcache"
    ]
    res = invoke(
        "compare", "--alloc", "xvmalloc", "--frontend", "zram", "--chain-size", "4,x", *SMALL
    )
    assert res.exit_code == 2 and "bad --chain-size 'x'" in res.stderr


def test_sweep_resumes_with_new_axes(tmp_path):
    results = str(tmp_path / "sweep.jsonl")
    base = ["sweep", "--alloc", "zsmalloc", *SMALL, "--results", results, "--format", "markdown"]
    first = invoke(*base, "--frontend", "zram", "-c", "lz4")
    assert first.exit_code == 0, first.output
    assert "1 runs, 1 run now, 0 already in" in first.stderr
    wider = invoke(*base, "--frontend", "zram,zswap", "-c", "lz4,zstd", "--chain-size", "4")
    assert wider.exit_code == 0, wider.output
    assert "4 runs, 4 run now, 0 already in" in wider.stderr  # chain 4: all new
    again = invoke(*base, "--frontend", "zram,zswap", "-c", "lz4,zstd")
    assert "4 runs, 3 run now, 1 already in" in again.stderr
    assert "frontend: zram, zswap · compressor: lz4, zstd" in again.stdout
    assert "| allocator | fill | compressor | frontend |" in again.stdout
    both = invoke(*base, "--frontend", "zram,zswap", "-c", "lz4,zstd", "--chain-size", "4,8")
    # chain 8 given explicitly is a configuration of its own (alloc_options chain_size=8)
    assert "8 runs, 4 run now, 4 already in" in both.stderr
    assert "| allocator | fill | chain_size | compressor | frontend |" in both.stdout
    assert len(load_source(results).entries) == 1 + 4 + 3 + 4  # one line per run done


def _zram_run(path, *extra: str) -> None:
    res = invoke(
        "run",
        "--alloc",
        "zsmalloc",
        "--frontend",
        "zram",
        "-c",
        "lz4",
        *SMALL,
        *extra,
        "-o",
        str(path),
    )
    assert res.exit_code == 0, res.output


def test_check_gates_on_mm_stat_mem_used_total(tmp_path):
    current = tmp_path / "current.json"
    _zram_run(current)
    doc = json.loads(current.read_text())
    used = doc["results"]["frontend_stats"]["mm_stat"]["mem_used_total"]
    assert used == doc["results"]["zv_page_count"] * 4096
    baseline = tmp_path / "baseline.json"
    doc["results"]["frontend_stats"]["mm_stat"]["mem_used_total"] = used - 4096
    baseline.write_text(json.dumps(doc))

    # by default (a pool size in bytes fails on any increase) and named with --fail-on
    for extra in ([], ["--no-default-thresholds", "--fail-on", "mm_stat.mem_used_total:+0"]):
        res = invoke("check", "-b", str(baseline), str(current), *extra)
        assert res.exit_code == 1, res.output
        assert f"mm_stat.mem_used_total {used - 4096} -> {used} (+4096" in res.stdout, res.stdout
        same = invoke("check", "-b", str(current), str(current), *extra)
        assert same.exit_code == 0, same.output
    # a 1 % allowance lets one page through
    res = invoke(
        "check",
        "-b",
        str(baseline),
        str(current),
        "--no-default-thresholds",
        "--fail-on",
        "mm_stat.mem_used_total:+1%",
    )
    assert res.exit_code == 0, res.output
    res = invoke("diff", str(baseline), str(current), "--format", "csv")
    assert res.exit_code == 0
    assert f"mm_stat.mem_used_total,bytes,lower,{used - 4096},{used},4096," in res.stdout
    bad = invoke("check", "-b", str(baseline), str(current), "--fail-on", "mm_stat.nothing:+0")
    assert bad.exit_code == 2 and "unknown metric 'mm_stat.nothing'" in bad.stderr


def test_check_gates_on_zswap_written_back_pages(tmp_path):
    current = tmp_path / "current.json"
    res = invoke(
        "run",
        "--alloc",
        "zsmalloc",
        "--frontend",
        "zswap",
        "-c",
        "lz4",
        *SMALL,
        "--max-pool-percent",
        "2",
        "-o",
        str(current),
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(current.read_text())
    wb = doc["results"]["frontend_stats"]["zswap"]["written_back_pages"]
    assert wb > 0
    doc["results"]["frontend_stats"]["zswap"]["written_back_pages"] = wb - 1
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps(doc))
    gate = ["--fail-on", "zswap.written_back_pages:+0"]
    assert invoke("check", "-b", str(baseline), str(current), *gate).exit_code == 1
    assert invoke("check", "-b", str(current), str(current), *gate).exit_code == 0


def _verified(*args: str) -> dict:
    res = invoke(
        "run",
        "--alloc",
        "zsmalloc",
        "--verify",
        "--json",
        "-q",
        "--size",
        "4M",
        "--limit",
        "2M",
        "--totalram",
        "32M",
        *args,
    )
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)["results"]


@pytest.mark.parametrize("comp", ["lz4", "zstd"])
@pytest.mark.parametrize("frontend", ["zram", "zswap"])
def test_verify_reads_every_stored_page_back(frontend, comp):
    r = _verified("--frontend", frontend, "-c", comp, "--fill", "text")
    # zswap charges the compressed bytes to the cgroup, so more of its pages go out
    assert r["verified"] and r["verify_errors"] == 0
    assert r["curr_pages"] == {"zram": 864, "zswap": 1023}[frontend]
    if frontend == "zram":
        huge = _verified("--frontend", "zram", "-c", comp, "--fill", "random")
        assert huge["verify_errors"] == 0
        assert huge["frontend_stats"]["mm_stat"]["huge_pages"] == 864  # stored raw
        same = _verified("--frontend", "zram", "-c", comp, "--fill", "zero", "--zram-mode", "block")
        assert same["verify_errors"] == 0
        assert same["frontend_stats"]["mm_stat"]["same_pages"] == 864  # the fill compared


@pytest.mark.parametrize("frontend", ["zram", "zswap"])
def test_verify_through_842(frontend):
    """842 has a decoder: every stored page decompresses back through it."""
    res = invoke(
        "run",
        "--frontend",
        frontend,
        "--alloc",
        "zsmalloc",
        "-c",
        "842",
        "--verify",
        "--json",
        *SMALL,
    )
    assert res.exit_code == 0, res.output
    result = json.loads(res.stdout)["results"]
    assert result["verified"] and result["verify_errors"] == 0 and result["curr_pages"] > 0


@pytest.mark.parametrize("frontend", ["zram", "zswap"])
def test_check_counts_a_corrupt_object(frontend):
    """check() reads the allocator's bytes: a page whose object is overwritten, a huge
    page changed, a same-filled page with another fill, each count once."""
    import os

    from xcfbench.sim.allocators import create
    from xcfbench.sim.arch import X86_64
    from xcfbench.sim.compressors import create_compressor
    from xcfbench.sim.frontends import create_frontend
    from xcfbench.sim.pages import PageCache

    text = (b"the quick brown fox jumps over the lazy dog " * 100)[:4096]
    data = {0: text, 1: os.urandom(4096), 2: (7).to_bytes(8, "little") * 512}
    alloc = create("zsmalloc", X86_64, store=True)
    pages = PageCache(data.__getitem__, create_compressor("lz4", call=frontend), True)
    options = {"mode": "block"} if frontend == "zram" else {}
    fe = create_frontend(frontend, alloc, X86_64, pages, totalram_pages=1 << 16, **options)
    for slot, key in ((1, 0), (2, 1), (3, 2), (4, 0)):
        # zswap refuses the random page (reject_compress_poor: lz4 output over a page)
        assert fe.store(slot, key) == (frontend == "zram" or key != 1)
    assert fe.check() == 0
    if frontend == "zram":
        row = fe.row_of.get
        handle, size = fe.words[row(1)], fe.sizes[row(1)]
        fe.words[row(3)] = 8  # the slot now claims another fill word
        alloc.write(fe.words[row(2)], bytes(4096))  # the raw huge page changed
        expected = 3
    else:
        handle, size = fe.entry(1)
        expected = 1
    alloc.write(handle, bytes(size))
    assert fe.check() == expected


def test_plot_pool_shows_zswap_written_back_pages(tmp_path):
    from xcfbench.output.plot import prepare, terminal

    paths = []
    for fe, extra in (("zram", []), ("zswap", ["--max-pool-percent", "2"])):
        path = tmp_path / f"{fe}.json"
        res = invoke(
            "run",
            "--alloc",
            "zsmalloc",
            "--frontend",
            fe,
            "-c",
            "lz4",
            *SMALL,
            *extra,
            "-o",
            str(path),
        )
        assert res.exit_code == 0, res.output
        paths.append(str(path))
    zram, zswap = (json.loads(Path(p).read_text())["results"] for p in paths)
    assert all(len(s) == 4 for s in zram["samples"])  # zram (and zcache): no fifth field
    assert len(zswap["samples"]) <= 257  # bounded: --samples points and the last page
    last = zswap["samples"][-1]
    assert last[:3] + last[4:] == [
        2048,
        zswap["curr_pages"],
        zswap["zv_page_count"],
        zswap["frontend_stats"]["zswap"]["written_back_pages"],
    ]
    assert last[4] > 0
    pic = prepare("pool", [load_source(p) for p in paths])
    assert pic.series[0].y3 == () and pic.series[1].y3 == tuple(s[4] for s in zswap["samples"])
    assert "written back by zswap" in pic.title
    text = terminal(pic, 100, 25)
    assert "written back" in text


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["run", "--frontend", "zswap", "-c", "zstd", "--recompress", "lz4"],
            "--recompress is an option of zram, not of --frontend zswap",
        ),
        (
            ["run", "--frontend", "zram", "-c", "lzo-rle", "--max-pool-percent", "5"],
            "--max-pool-percent is an option of zswap, not of --frontend zram",
        ),
        (
            ["run", "--frontend", "zram", "-c", "zstd", "--comp-opt", "level=99"],
            "compressor zstd: level 99 is out of range",
        ),
        (
            ["run", "--frontend", "zswap", "-c", "lz4", "--max-pool-percent", "101"],
            "bad --max-pool-percent 101: a percentage 0..100",
        ),
        (
            ["compare", "--alloc", "zsmalloc", "--frontend", "zram,nope", "-c", "lz4"],
            "unknown front end 'nope'",
        ),
        (
            [
                "sweep",
                "--alloc",
                "zsmalloc",
                "--frontend",
                "zswap",
                "-c",
                "lz4,zstd",
                "--zram-mode",
                "block",
            ],
            "--zram-mode is an option of zram, not of --frontend zswap",
        ),
    ],
)
def test_bad_input_with_the_new_compressors_is_one_line_exit_2(tmp_path, args, message):
    res = invoke(
        *args,
        *SMALL,
        "--results" if args[0] == "sweep" else "--quiet",
        *([str(tmp_path / "s.jsonl")] if args[0] == "sweep" else []),
    )
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("xcfbench: error: ") and message in lines[0]
    assert not (tmp_path / "s.jsonl").exists()


def test_page_trace_streams_from_stdin_and_equals_the_run(tmp_path, runner):
    """A run's emitted page trace, piped in on standard input, replays to the run's own
    pool; a vertical tab does not split a page-trace line (only newlines end lines)."""
    trace = tmp_path / "churn.trace"
    args = ["--frontend", "zram", "--alloc", "zs", "-c", "lz4", "--arch", "i386"]
    res = runner.invoke(
        cli, ["run", *args, *SMALL, "--ops", "2000", "--emit-trace", str(trace), "--json"]
    )
    assert res.exit_code == 0, res.output
    run = json.loads(res.stdout)["results"]
    pages = f"{trace}.pages"
    res = runner.invoke(
        cli, ["replay", *args, "--pages", pages, "-", "--json"], input=trace.read_bytes()
    )
    assert res.exit_code == 0, res.output
    replayed = json.loads(res.stdout)["results"]
    assert (replayed["stored_pages"], replayed["pool_pages"]) == (
        run["curr_pages"],
        run["zv_page_count"],
    )
    res = runner.invoke(cli, ["replay", *args, "--pages", pages, "-"], input=b"w 1 0\x0bw 2 0\n")
    assert res.exit_code == 2 and "<stdin>:1: malformed page-trace line" in res.stderr
