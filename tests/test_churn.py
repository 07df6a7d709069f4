"""Churn in `run` (issue 11 item 5): --ops accesses after the initial write, swap-ins and
re-evictions through the page-trace operations, deterministic from --seed; --emit-trace
writes a page trace whose replay gives the run's front-end and allocator figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from xcfbench.cli import cli
from xcfbench.errors import InputError
from xcfbench.sim.churn import access_sampler, parse_access, parse_dirty
from xcfbench.sim.config import RunConfig
from xcfbench.sim.engine import run

SMALL = {"size_bytes": 8 << 20, "limit_bytes": 4 << 20, "arch": "x86_64"}


def _zram(**kw) -> RunConfig:
    return RunConfig(alloc="zsmalloc", compressor="lzo-rle", frontend="zram", **SMALL, **kw)


def test_zipf_churn_is_deterministic_and_frees_and_reallocates():
    cfg = _zram(ops=200_000, access="zipf:1.1", seed=3)
    a, b = run(cfg).to_dict(), run(cfg).to_dict()
    assert a == b
    churn = a["churn"]
    assert churn["swapins"] > 10_000
    assert churn["allocator_frees"] > 10_000 and churn["allocator_mallocs"] > 10_000
    other = run(_zram(ops=200_000, access="zipf:1.1", seed=4)).to_dict()
    assert other["churn"] != churn  # the seed decides the accesses


def test_compaction_makes_the_churned_pool_smaller():
    base = run(_zram(ops=100_000, access="zipf:1.1"))
    compacted = run(_zram(ops=100_000, access="zipf:1.1", compact="every:1000"))
    assert compacted.pages_compacted > 0
    assert compacted.pool_pages_after_compact < base.zv_page_count


def test_samples_carry_pool_stored_and_live_pages_over_the_accesses():
    r = run(_zram(ops=5_000, access="uniform", samples=64))
    steps = [s[0] for s in r.samples]
    assert steps == sorted(steps) and steps[-1] == 2048 + 5_000
    for _step, stored, pool, live in r.samples:
        assert stored >= 0 and pool >= live - 1 >= -1


def test_without_ops_the_result_has_no_churn_and_the_config_is_unchanged():
    cfg = _zram()
    assert "churn" not in run(cfg).to_dict()
    assert "ops" not in cfg.to_dict()


@pytest.mark.parametrize(
    "frontend, alloc, compressor, arch",
    [
        ("zcache", "xvmalloc", "lzo1x-1", "i386"),
        ("zcache", "xcfmalloc", "lzo1x-1", "i386"),
        ("zram", "zsmalloc", "lzo-rle", "x86_64"),
        ("zswap", "zsmalloc", "zstd", "x86_64"),
    ],
)
def test_replaying_the_emitted_trace_gives_the_run_figures(
    tmp_path: Path, frontend, alloc, compressor, arch
):
    trace = tmp_path / "run.ptrace.zst"
    common = ["-a", alloc, "-c", compressor, "--arch", arch, "--frontend", frontend]
    r = CliRunner().invoke(
        cli,
        ["run", *common, "--fill", "text", "--size", "4M", "--limit", "2M", "--ops", "6000"]
        + ["--access", "zipf:1.1", "--dirty", "0.2", "-q", "--json"]
        + ([] if alloc == "xvmalloc" else ["--compact", "every:500"])
        + ["--emit-trace", str(trace)],
    )
    assert r.exit_code == 0, r.output
    ran = json.loads(r.stdout)["results"]
    fe_opts = []
    if frontend == "zcache":  # run's zcache knobs are the seed's, not the kernel defaults
        fe_opts = ["--totalram", "4G"]
    args = ["replay", "--frontend", frontend, "-a", alloc, "-c", compressor, "--arch", arch]
    r = CliRunner().invoke(
        cli, [*args, *fe_opts, "--pages", f"{trace}.pages", str(trace), "-q", "--json"]
    )
    if frontend == "zcache":
        # replay has no zcache knob flags: replay through the library with the run's
        from xcfbench.sim.engine import frontend_options
        from xcfbench.sim.pagetrace import iter_trace_lines, read_pages, replay_pages

        cfg = RunConfig(
            alloc=alloc,
            compressor=compressor,
            arch=arch,
            frontend=frontend,
            size_bytes=4 << 20,
            limit_bytes=2 << 20,
        )
        replayed = replay_pages(
            iter_trace_lines(str(trace)),
            read_pages(f"{trace}.pages"),
            frontend=frontend,
            compressor=compressor,
            alloc=alloc,
            arch=arch,
            options=frontend_options(cfg),
        )
    else:
        assert r.exit_code == 0, r.output
        replayed = json.loads(r.stdout)["results"]
    fe = dict(ran["frontend_stats"])
    fe.pop("memcg", None)
    assert fe == replayed["frontend_stats"]
    assert ran["allocator_stats"] == replayed["allocator_stats"]
    assert ran["curr_pages"] == replayed["stored_pages"]
    assert ran["peak_pool_pages"] == replayed["peak_pool_pages"]
    end_pool = ran["pool_pages_after_compact"]
    assert (ran["zv_page_count"] if end_pool is None else end_pool) == replayed["pool_pages"]
    assert ran["churn"]["swapins"] > 0 and ran["churn"]["dirty_accesses"] > 0


def test_access_specs():
    assert parse_access("zipf:1.1") == ("zipf", 0, 1.1)
    assert parse_access("phases:4:1.2") == ("phases", 4, 1.2)
    assert parse_dirty("25%") == 0.25
    for bad in ("zipf", "zipf:0", "phases:0", "lru", "uniform:2"):
        with pytest.raises(InputError):
            parse_access(bad)
    with pytest.raises(InputError):
        parse_dirty("1.5")
    import random

    draw = access_sampler("phases:4", 100, 400, random.Random(0))
    pages = [draw(j) for j in range(400)]
    assert all(0 <= p < 25 for p in pages[:100]) and all(75 <= p < 100 for p in pages[300:])
    seq = access_sampler("sequential", 10, 25, random.Random(0))
    assert [seq(j) for j in range(12)] == [*range(10), 0, 1]


def test_churn_flags_are_checked():
    with pytest.raises(InputError):
        RunConfig(access="zipf:1.1")  # without --ops
    r = CliRunner().invoke(cli, ["run", "--ops", "10", "--access", "lru", "-q"])
    assert r.exit_code == 2 and "--access" in r.stderr
